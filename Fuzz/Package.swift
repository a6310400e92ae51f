// swift-tools-version: 6.1
// libFuzzer targets for Warden's input readers, built apart from the main package because every module they link is
// compiled with `-sanitize=fuzzer,address`. `scripts/fuzz` builds and runs them; FUZZING.md says how.
//
// Each directory `Sources/Fuzz<Name>/` holding one `main.swift` is a target: adding a target is adding a directory
// (and, optionally, seed inputs in `Corpus/Fuzz<Name>/`). Shared helpers live in `Sources/FuzzSupport` (the input's
// views, invariant checks, the check path); the targets that read the wire also get NIO and `Networking` (`wire`).
import Foundation
import PackageDescription

let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Sources").path
let names = ((try? FileManager.default.contentsOfDirectory(atPath: sources)) ?? [])
    .filter { $0.hasPrefix("Fuzz") && $0 != "FuzzSupport" }
    .sorted()

// The Warden modules a target may import.
let warden: [Target.Dependency] = [
    .product(name: "PolicyCore", package: "warden"),
    .product(name: "AuthzPolicy", package: "warden"),
    .product(name: "Documents", package: "warden"),
    .product(name: "PolicyLoading", package: "warden"),
    .product(name: "DecisionPoint", package: "warden"),
    .product(name: "Rego", package: "warden"),
    .product(name: "JOSE", package: "warden"),
    .product(name: "ExtAuthz", package: "warden"),
]

// The listeners' code and the NIO pieces that drive it on an embedded channel, for the targets that read the wire.
let wire: [String: [Target.Dependency]] = [
    // Compares its decodings' messages as swift-protobuf's text.
    "FuzzCheckRequest": [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
    "FuzzHTTPRequest": [
        .product(name: "Networking", package: "warden"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
    ],
    "FuzzGRPCFraming": [
        .product(name: "Networking", package: "warden"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOHPACK", package: "swift-nio-http2"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
    ],
]

let package = Package(
    name: "warden-fuzz",
    platforms: [.macOS(.v15)],
    products: names.map { .executable(name: $0, targets: [$0]) },
    dependencies: [
        .package(name: "warden", path: ".."),
        // The versions the main package resolves.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.38.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: warden, swiftSettings: [.enableUpcomingFeature("ExistentialAny")]),
    ] + names.map { name in
        .executableTarget(name: name, dependencies: ["FuzzSupport"] + warden + (wire[name] ?? []), swiftSettings: [.enableUpcomingFeature("ExistentialAny")])
    }
)
