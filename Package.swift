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
        // The engines as libraries, for the benchmark package in Benchmarks/ and the fuzz targets in Fuzz/.
        .library(name: "PolicyCore", targets: ["PolicyCore"]),
        .library(name: "AuthzPolicy", targets: ["AuthzPolicy"]),
        // The YAML/JSON document readers, for the fuzz targets in Fuzz/.
        .library(name: "Documents", targets: ["Documents"]),
        .library(name: "DecisionPoint", targets: ["DecisionPoint"]),
        .library(name: "PolicyLoading", targets: ["PolicyLoading"]),
        .library(name: "Rego", targets: ["Rego"]),
        .library(name: "Identity", targets: ["Identity"]),
        .library(name: "JWKSClient", targets: ["JWKSClient"]),
        .library(name: "ExtAuthz", targets: ["ExtAuthz"]),
        .library(name: "WardenServer", targets: ["WardenServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.38.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Pure engines.
        .target(name: "PolicyCore", swiftSettings: strict),
        .target(name: "AuthzPolicy", dependencies: ["PolicyCore"], swiftSettings: strict),
        .target(name: "DecisionPoint", dependencies: ["PolicyCore", "AuthzPolicy", "Rego"], swiftSettings: strict),
        .target(
            name: "Rego",
            dependencies: [
                "PolicyCore", "Identity",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
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
            dependencies: ["PolicyCore", "AuthzPolicy", "DecisionPoint", "Documents", "Rego"],
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
            dependencies: [
                "PolicyCore", "AuthzPolicy", "DecisionPoint", "PolicyLoading", "Documents", "ExtAuthz", "Rego", "Identity",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict
        ),

        // Envoy's ext_authz API: generated messages (committed; `scripts/generate-protos`), the request mapping,
        // OPA-Envoy's input document and the typed decision.
        .target(
            name: "ExtAuthz",
            dependencies: [
                "PolicyCore",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            exclude: ["Protos"],
            swiftSettings: strict
        ),

        // The server: gRPC and HTTP listeners, reload, decision logs, metrics.
        .target(
            name: "WardenServer",
            dependencies: [
                "PolicyCore", "DecisionPoint", "PolicyLoading", "Documents", "ExtAuthz",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),

        // The command-line program.
        .executableTarget(
            name: "warden",
            dependencies: [
                "PolicyCore", "AuthzPolicy", "DecisionPoint", "Documents", "PolicyLoading", "Conformance",
                "Rego", "Identity", "JWKSClient", "WardenServer",
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
        .testTarget(name: "PolicyCoreTests", dependencies: ["PolicyCore", "WardenTesting"], swiftSettings: strict),
        .testTarget(name: "DocumentsTests", dependencies: ["Documents", "PolicyCore"], swiftSettings: strict),
        .testTarget(
            name: "AuthzPolicyTests",
            dependencies: ["AuthzPolicy", "PolicyCore", "Documents", "WardenTesting"],
            swiftSettings: strict
        ),
        .testTarget(name: "PolicyLoadingTests", dependencies: ["PolicyLoading", "PolicyCore", "WardenTesting"], swiftSettings: strict),
        .testTarget(name: "ConformanceTests", dependencies: ["Conformance", "WardenTesting"], swiftSettings: strict),
        .testTarget(
            name: "WardenCLITests",
            dependencies: [
                "PolicyCore", "WardenTesting", "ExtAuthz",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ExtAuthzTests",
            dependencies: ["ExtAuthz", "PolicyCore", "AuthzPolicy", "DecisionPoint", "PolicyLoading", "WardenTesting"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WardenServerTests",
            dependencies: [
                "WardenServer", "ExtAuthz", "PolicyCore", "DecisionPoint", "PolicyLoading", "WardenTesting",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RegoTests",
            dependencies: ["Rego", "PolicyCore", "WardenTesting"],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(
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
