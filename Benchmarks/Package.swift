// swift-tools-version: 6.1
import PackageDescription

// Warden's benchmarks, kept out of the main package so that building and testing Warden never builds the
// benchmark harness. Run from this directory: `swift package benchmark` (release builds).
let package = Package(
    name: "WardenBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "warden", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.38.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        .executableTarget(
            name: "AuthzPolicyBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "DecisionPoint", package: "warden"),
                .product(name: "PolicyLoading", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
            ],
            path: "AuthzPolicyBenchmarks",
            exclude: ["make-workload.py"],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The engine alone, without the benchmark harness or Rego, for counting instructions with callgrind.
        .executableTarget(
            name: "AuthzPolicyDecide",
            dependencies: [
                .product(name: "AuthzPolicy", package: "warden"),
                .product(name: "Documents", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
            ],
            path: "AuthzPolicyDecide"
        ),
        // The server's check without the network, for counting instructions with callgrind.
        .executableTarget(
            name: "CheckPathRun",
            dependencies: [
                .product(name: "DecisionPoint", package: "warden"),
                .product(name: "ExtAuthz", package: "warden"),
                .product(name: "Networking", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
                .product(name: "PolicyLoading", package: "warden"),
                .product(name: "WardenServer", package: "warden"),
            ],
            path: "CheckPathRun"
        ),
        .executableTarget(
            name: "RegoBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Rego", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
            ],
            path: "RegoBenchmarks",
            exclude: ["policy", "make-inputs.py", "make-jwt-inputs.py"],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "IdentityBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Identity", package: "warden"),
                .product(name: "JOSE", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "IdentityBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ExtAuthzBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ExtAuthz", package: "warden"),
                .product(name: "WardenServer", package: "warden"),
                .product(name: "DecisionPoint", package: "warden"),
                .product(name: "PolicyLoading", package: "warden"),
                .product(name: "AuthzPolicy", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "ExtAuthzBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "BundleBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PolicyLoading", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "BundleBenchmarks",
            exclude: ["make-bundle.py"],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The choice of the proxy's upstream client: async-http-client against a NIO channel with the HTTP/1.1
        // client handlers (what `UpstreamPool` is), against the same local server.
        .executableTarget(
            name: "UpstreamClientBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "UpstreamClientBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The baseline for `check-load.sh`: a Check server on the same gRPC stack that decides nothing (and, for
        // comparison, the same on grpc-swift-2's own NIO transport).
        // It lives here so it never ships in the warden binary.
        .executableTarget(
            name: "CheckNoopServer",
            dependencies: [
                .product(name: "ExtAuthz", package: "warden"),
                .product(name: "Networking", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
                .product(name: "WardenServer", package: "warden"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "CheckNoopServer"
        ),
    ]
)
