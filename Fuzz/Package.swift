// swift-tools-version: 6.1
// libFuzzer targets for Warden's input readers, built apart from the main package because every module they link is
// compiled with `-sanitize=fuzzer,address`. `scripts/fuzz` builds and runs them; FUZZING.md says how.
//
// Each directory `Sources/Fuzz<Name>/` holding one `main.swift` is a target: adding a target is adding a directory
// (and, optionally, seed inputs in `Corpus/Fuzz<Name>/`). Shared helpers live in `Sources/FuzzSupport`.
import Foundation
import PackageDescription

let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Sources").path
let names = ((try? FileManager.default.contentsOfDirectory(atPath: sources)) ?? [])
    .filter { $0.hasPrefix("Fuzz") && $0 != "FuzzSupport" }
    .sorted()

// The Warden modules a target may import.
let warden: [Target.Dependency] = [
    "FuzzSupport",
    .product(name: "PolicyCore", package: "warden"),
    .product(name: "AuthzPolicy", package: "warden"),
    .product(name: "Documents", package: "warden"),
    .product(name: "PolicyLoading", package: "warden"),
    .product(name: "DecisionPoint", package: "warden"),
    .product(name: "Rego", package: "warden"),
    .product(name: "JOSE", package: "warden"),
    .product(name: "ExtAuthz", package: "warden"),
]

let package = Package(
    name: "warden-fuzz",
    platforms: [.macOS(.v15)],
    products: names.map { .executable(name: $0, targets: [$0]) },
    dependencies: [.package(name: "warden", path: "..")],
    targets: [
        .target(name: "FuzzSupport", swiftSettings: [.enableUpcomingFeature("ExistentialAny")]),
    ] + names.map { name in
        .executableTarget(name: name, dependencies: warden, swiftSettings: [.enableUpcomingFeature("ExistentialAny")])
    }
)
