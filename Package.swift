// swift-tools-version: 6.1
import PackageDescription

// Dependencies point only up the module table in docs/ARCHITECTURE.md: the engines stay pure,
// transport and TLS live only in the leaves.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
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
        .library(name: "JOSE", targets: ["JOSE"]),
        .library(name: "Identity", targets: ["Identity"]),
        .library(name: "JWKSClient", targets: ["JWKSClient"]),
        .library(name: "ExtAuthz", targets: ["ExtAuthz"]),
        .library(name: "MeshCA", targets: ["MeshCA"]),
        .library(name: "Networking", targets: ["Networking"]),
        .library(name: "WardenServer", targets: ["WardenServer"]),
        .library(name: "FrontProxy", targets: ["FrontProxy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.38.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // Pure engines.
        .target(name: "PolicyCore", swiftSettings: strict),
        .target(name: "AuthzPolicy", dependencies: ["PolicyCore"], swiftSettings: strict),
        .target(name: "DecisionPoint", dependencies: ["PolicyCore", "AuthzPolicy", "Rego"], swiftSettings: strict),
        .target(
            name: "Rego",
            dependencies: [
                "PolicyCore", "JOSE",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // JWS, JWK/JWKS, JWT: parsing and signature checks, shared by the Rego `io.jwt.*` builtins and Identity.
        .target(
            name: "JOSE",
            dependencies: [
                "PolicyCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict
        ),
        // Request and peer identity, and the mesh CA (`CA/`): certificates, CSRs, bootstrap tokens, chain
        // verification. Pure: no sockets, no files.
        .target(
            name: "Identity",
            dependencies: [
                "PolicyCore", "JOSE",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
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
            dependencies: [
                "PolicyCore", "AuthzPolicy", "DecisionPoint", "Documents", "Rego", "JOSE", "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // The system zlib (gzip for bundles and decision-log uploads); scripts/test installs zlib1g-dev.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Leaves: sockets and TLS.
        // The network layer both programs stand on: listeners with graceful and forced shutdown, TLS contexts
        // from PEM files with reload, the HTTP/1.1 server, the gRPC listener, the control-plane HTTP client,
        // event-loop sizing, logs. It knows nothing of policies.
        .target(
            name: "Networking",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "JWKSClient",
            dependencies: [
                "Identity", "JOSE", "PolicyCore", "Networking",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Conformance",
            dependencies: [
                "PolicyCore", "AuthzPolicy", "DecisionPoint", "PolicyLoading", "Documents", "ExtAuthz", "Rego", "JOSE",
                "Identity",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict
        ),
        // The suite's end-to-end scenarios: real `warden` processes on 127.0.0.1 driven by real clients (curl,
        // a gRPC ext_authz client), the recording upstream, and the demo built on them.
        .target(
            name: "Scenarios",
            dependencies: [
                "PolicyCore", "Documents", "Conformance", "ExtAuthz", "JOSE", "Networking",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
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

        // The mesh CA as a service: Istio's certificate API over gRPC with TLS (generated from `Sources/MeshCA/Protos`
        // by `scripts/generate-protos`, committed), the CA's files, the token ledger and the rotating agent.
        .target(
            name: "MeshCA",
            dependencies: [
                "Identity", "JOSE", "PolicyCore", "Networking",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Protos"],
            swiftSettings: strict
        ),

        // The server: the data plane (gRPC and HTTP) and the management API, reload, decision logs, metrics;
        // Identity names TLS clients from their certificates.
        .target(
            name: "WardenServer",
            dependencies: [
                "PolicyCore", "AuthzPolicy", "Rego", "DecisionPoint", "PolicyLoading", "Documents", "ExtAuthz", "Networking",
                "JOSE", "Identity",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        // The front proxy: mTLS with PeerAuthentication, JWTs with RequestAuthentication, a check per request over
        // the ext_authz gRPC API, forwarding. It asks the server for decisions and never links the engines.
        .target(
            name: "FrontProxy",
            dependencies: [
                "PolicyCore", "Identity", "ExtAuthz", "Networking", "JWKSClient", "Documents",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),

        // The command-line program.
        .executableTarget(
            name: "warden",
            dependencies: [
                "PolicyCore", "AuthzPolicy", "DecisionPoint", "Documents", "PolicyLoading", "Conformance",
                "Rego", "JOSE", "Identity", "JWKSClient", "ExtAuthz", "Networking", "WardenServer", "MeshCA", "Scenarios", "FrontProxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // Tests: one target per module, plus end-to-end tests of the real binary.
        .target(
            name: "WardenTesting",
            dependencies: [
                "PolicyCore", "ExtAuthz", "Identity", "Networking",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "Tests/WardenTesting",
            swiftSettings: strict
        ),
        .testTarget(name: "PolicyCoreTests", dependencies: ["PolicyCore", "WardenTesting"], swiftSettings: strict),
        .testTarget(name: "DocumentsTests", dependencies: ["Documents", "PolicyCore", "WardenTesting"], swiftSettings: strict),
        .testTarget(
            name: "AuthzPolicyTests",
            dependencies: ["AuthzPolicy", "PolicyCore", "Documents", "WardenTesting"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "PolicyLoadingTests",
            dependencies: [
                "PolicyLoading", "AuthzPolicy", "DecisionPoint", "PolicyCore", "JOSE", "Rego", "WardenTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ConformanceTests", dependencies: ["Conformance", "WardenTesting"], swiftSettings: strict),
        .testTarget(
            name: "ScenariosTests",
            dependencies: ["Scenarios", "Conformance", "PolicyCore", "WardenTesting"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WardenCLITests",
            dependencies: [
                "PolicyCore", "WardenTesting", "ExtAuthz", "Identity", "MeshCA",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ExtAuthzTests",
            dependencies: [
                "ExtAuthz", "PolicyCore", "AuthzPolicy", "DecisionPoint", "PolicyLoading", "WardenTesting",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "NetworkingTests",
            dependencies: [
                "Networking", "WardenTesting",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WardenServerTests",
            dependencies: [
                "WardenServer", "Networking", "ExtAuthz", "PolicyCore", "AuthzPolicy", "DecisionPoint", "PolicyLoading",
                "JOSE", "Identity", "Rego", "WardenTesting",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RegoTests",
            dependencies: ["Rego", "PolicyCore", "WardenTesting", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "JOSETests",
            dependencies: [
                "JOSE", "PolicyCore", "WardenTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IdentityTests",
            dependencies: [
                "Identity", "JOSE", "PolicyCore", "Documents", "WardenTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MeshCATests",
            dependencies: [
                "MeshCA", "Identity", "PolicyCore", "WardenTesting",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FrontProxyTests",
            dependencies: [
                "FrontProxy", "Identity", "JOSE", "ExtAuthz", "Networking", "PolicyCore", "Documents", "WardenTesting",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "JWKSClientTests",
            dependencies: [
                "JWKSClient", "Identity", "JOSE", "Networking", "PolicyCore", "WardenTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
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
