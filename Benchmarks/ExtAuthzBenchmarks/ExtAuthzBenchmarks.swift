import AuthzPolicy
import Benchmark
import DecisionPoint
import ExtAuthz
import PolicyCore
import PolicyLoading
import SwiftProtobuf
import WardenServer

// The cost of one check inside the server, without the network: decoding Envoy's CheckRequest, mapping it to
// attributes, deciding on the repository's policies, rendering and encoding the CheckResponse.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(5),
        maxIterations: 1_000_000
    )
    let checks = sampleChecks()
    let wire = checks.map { try! $0.serializedBytes() as [UInt8] }
    let mapper = CheckRequestMapper()
    let (snapshot, _) = PolicyLoader().load(["../policies"])
    let handler = CheckHandler(
        decisionPoint: DecisionPoint(snapshot: snapshot!), mapper: mapper, metrics: ServerMetrics(), log: nil)

    Benchmark("map CheckRequest") { benchmark in
        for i in benchmark.scaledIterations { blackHole(mapper.map(checks[i & 3])) }
    }
    Benchmark("OPA-Envoy input") { benchmark in
        for i in benchmark.scaledIterations { blackHole(OPAEnvoyInput.document(for: checks[i & 3], normalizedPath: "/x")) }
    }
    Benchmark("check: decode, map, decide, render, encode") { benchmark in
        for i in benchmark.scaledIterations {
            let check = try Envoy_Service_Auth_V3_CheckRequest(serializedBytes: wire[i & 3])
            let response = handler.check(check, transport: "bench").decision.checkResponse
            blackHole(try response.serializedBytes() as [UInt8])
        }
    }
}

/// Checks as an Istio sidecar sends them: allowed, denied by DENY, denied for lack of an ALLOW match, with JWT.
func sampleChecks() -> [Envoy_Service_Auth_V3_CheckRequest] {
    let cases: [(String, String, String)] = [
        ("GET", "/api/v1/items?page=2", "details"), ("POST", "/upload", "incident"),
        ("DELETE", "/productpage", "productpage"), ("GET", "/admin/../admin/users", "details"),
    ]
    let productpage = try! SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/productpage")
    return cases.map { method, path, app in
        CheckRequestParts(
            source: .init(identity: productpage, address: "10.1.2.3", port: 43210),
            destination: .init(address: "10.1.2.9", port: 9080), namespace: "default", labels: ["app": app],
            method: method, host: "\(app):9080", target: path,
            headers: [
                (":authority", "\(app):9080"), ("user-agent", "Mozilla/5.0"), ("accept", "application/json"),
                ("x-forwarded-for", "203.0.113.9"),
            ]
        ).checkRequest
    }
}
