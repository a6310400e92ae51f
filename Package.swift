// swift-tools-version: 6.1
import PackageDescription

// Dependencies point only up the module table in docs/ARCHITECTURE.md: the engines stay pure,
// transport and TLS live only in the leaves.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "warden",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "warden", targets: ["warden"]),
        // The engines as libraries, for the benchmark package in Benchmarks/.
        .library(name: "PolicyCore", targets: ["PolicyCore"]),
        .library(name: "AuthzPolicy", targets: ["AuthzPolicy"]),
        .library(name: "DecisionPoint", targets: ["DecisionPoint"]),
        .library(name: "PolicyLoading", targets: ["PolicyLoading"]),
        .library(name: "Rego", targets: ["Rego"]),
        .library(name: "Identity", targets: ["Identity"]),
        .library(name: "JWKSClient", targets: ["JWKSClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // Pure engines.
        .target(name: "PolicyCore", swiftSettings: strict),
        .target(name: "AuthzPolicy", dependencies: ["PolicyCore"], swiftSettings: strict),
        .target(name: "DecisionPoint", dependencies: ["PolicyCore", "AuthzPolicy"], swiftSettings: strict),
        .target(
            name: "Rego",
            dependencies: ["PolicyCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "Identity",
            dependencies: [
                "PolicyCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),

        // Boundaries: files in, diagnostics out.
        .target(
            name: "Documents",
            dependencies: ["PolicyCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(
            name: "PolicyLoading",
            dependencies: ["PolicyCore", "AuthzPolicy", "DecisionPoint", "Documents"],
            swiftSettings: strict
        ),
        // Leaves: sockets and TLS.
        .target(
            name: "JWKSClient",
            dependencies: [
                "Identity", "PolicyCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Conformance",
            dependencies: ["PolicyCore", "AuthzPolicy", "DecisionPoint", "PolicyLoading", "Documents", "Rego", "Identity"],
            swiftSettings: strict
        ),

        // The command-line program.
        .executableTarget(
            name: "warden",
            dependencies: [
                "PolicyCore", "AuthzPolicy", "DecisionPoint", "Documents", "PolicyLoading", "Conformance", "Rego",
                "Identity", "JWKSClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        // Tests: one target per module, plus end-to-end tests of the real binary.
        .target(
            name: "WardenTesting",
            dependencies: [
                "PolicyCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/WardenTesting",
            swiftSettings: strict
        ),
        .testTarget(name: "PolicyCoreTests", dependencies: ["PolicyCore"], swiftSettings: strict),
        .testTarget(name: "DocumentsTests", dependencies: ["Documents", "PolicyCore"], swiftSettings: strict),
        .testTarget(
            name: "AuthzPolicyTests",
            dependencies: ["AuthzPolicy", "PolicyCore", "Documents", "WardenTesting"],
            swiftSettings: strict
        ),
        .testTarget(name: "PolicyLoadingTests", dependencies: ["PolicyLoading", "PolicyCore", "WardenTesting"], swiftSettings: strict),
        .testTarget(name: "ConformanceTests", dependencies: ["Conformance", "WardenTesting"], swiftSettings: strict),
        .testTarget(name: "WardenCLITests", dependencies: ["PolicyCore", "WardenTesting"], swiftSettings: strict),
        .testTarget(
            name: "RegoTests",
            dependencies: ["Rego", "PolicyCore", "WardenTesting"],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
            name: "IdentityTests",
            dependencies: [
                "Identity", "PolicyCore", "Documents", "WardenTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "JWKSClientTests",
            dependencies: [
                "JWKSClient", "Identity", "PolicyCore", "WardenTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
    ]
)
