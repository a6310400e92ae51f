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
    ],
    targets: [
        .executableTarget(
            name: "AuthzPolicyBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "AuthzPolicy", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
            ],
            path: "AuthzPolicyBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "RegoBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Rego", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
            ],
            path: "RegoBenchmarks",
            exclude: ["policy", "make-inputs.py"],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "IdentityBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Identity", package: "warden"),
                .product(name: "PolicyCore", package: "warden"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "IdentityBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
