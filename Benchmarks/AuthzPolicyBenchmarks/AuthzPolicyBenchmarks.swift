import AuthzPolicy
import Benchmark
import PolicyCore

// Decision cost of the compiled AuthorizationPolicy engine at 10, 100 and 1,000 policies over a varied mix of
// requests (allowed, denied by DENY, denied for lack of an ALLOW match, audited; with and without mTLS and JWT).
// Every policy sits in one of four namespaces and most select one of a few workloads, so a request meets a
// realistic share of the set, not a trivially empty one.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(5),
        maxIterations: 1_000_000
    )
    for count in [10, 100, 1_000] {
        let workload = Workload(policyCount: count, requestCount: 1_024)
        Benchmark("decide/\(count) policies") { benchmark in
            let requests = workload.requests
            var i = 0
            for _ in benchmark.scaledIterations {
                blackHole(workload.set.decide(requests[i & 1023]))
                i &+= 1
            }
        }
    }
}

struct Workload: Sendable {
    let set: CompiledPolicySet
    let requests: [AuthzRequest]

    static let namespaces = ["default", "payments", "search", "ops"]
    static let apps = ["details", "reviews", "ratings", "productpage", "checkout", "ledger", "index", "admin"]
    static let paths = ["/api/v1/items", "/api/v1/orders", "/api/v2/search", "/admin", "/health", "/metrics", "/static/app.js"]
    static let methods = ["GET", "POST", "PUT", "DELETE"]

    init(policyCount: Int, requestCount: Int) {
        var rng = SplitMix64(seed: UInt64(policyCount))
        var policies: [AuthorizationPolicy] = [
            // Mesh-wide: audit admin paths, deny a debug port.
            AuthorizationPolicy(
                id: PolicyID(namespace: "istio-system", name: "audit-admin"), action: .audit,
                rules: [.init(to: [op { $0.paths = ["/admin", "/admin/*"] }])]),
            AuthorizationPolicy(
                id: PolicyID(namespace: "istio-system", name: "deny-debug-port"), action: .deny,
                rules: [.init(to: [op { $0.ports = ["15000"] }])]),
        ]
        for n in 0..<(policyCount - 2) {
            let namespace = Self.namespaces[n % Self.namespaces.count]
            let app = Self.apps[Int.random(in: 0..<Self.apps.count, using: &rng)]
            let roll = Int.random(in: 0..<100, using: &rng)
            let action: PolicyAction = roll < 70 ? .allow : (roll < 92 ? .deny : .audit)
            var rules: [AuthorizationPolicy.Rule] = []
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                rules.append(Self.randomRule(&rng, namespace: namespace))
            }
            policies.append(AuthorizationPolicy(
                id: PolicyID(namespace: namespace, name: "\(app)-\(action.rawValue.lowercased())-\(n)"),
                selector: Int.random(in: 0..<10, using: &rng) == 0 ? nil : ["app": app], action: action, rules: rules))
        }
        set = CompiledPolicySet(policies: policies)
        requests = (0..<requestCount).map { _ in Self.randomRequest(&rng) }
    }

    static func randomRule(_ rng: inout SplitMix64, namespace: String) -> AuthorizationPolicy.Rule {
        var rule = AuthorizationPolicy.Rule()
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: rule.from = [src { $0.principals = ["cluster.local/ns/\(namespace)/sa/\(apps.randomElement(using: &rng)!)"] }]
        case 1: rule.from = [src { $0.namespaces = [namespaces.randomElement(using: &rng)!] }]
        case 2: rule.from = [src { $0.requestPrincipals = ["https://idp.example.com/user-\(Int.random(in: 0..<20, using: &rng))"] }]
        default: rule.from = [src { $0.ipBlocks = ["10.\(Int.random(in: 0..<4, using: &rng)).0.0/16"] }]
        }
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: rule.to = [op { $0.paths = [paths.randomElement(using: &rng)!]; $0.methods = [methods.randomElement(using: &rng)!] }]
        case 1: rule.to = [op { $0.paths = ["/api/*"]; $0.notMethods = ["DELETE"] }]
        default: rule.to = [op { $0.methods = ["GET", "HEAD"] }]
        }
        if Int.random(in: 0..<4, using: &rng) == 0 {
            rule.when = [.init(key: "request.auth.claims[groups]", values: ["admins", "ops"])]
        }
        return rule
    }

    static func randomRequest(_ rng: inout SplitMix64) -> AuthzRequest {
        var r = AuthzRequest()
        r.destination.namespace = namespaces.randomElement(using: &rng)!
        r.destination.labels = ["app": apps.randomElement(using: &rng)!, "version": "v1"]
        r.destination.port = Int.random(in: 0..<50, using: &rng) == 0 ? 15000 : 9080
        r.http.method = methods.randomElement(using: &rng)!
        r.http.path = paths.randomElement(using: &rng)!
        r.http.host = "\(r.destination.labels["app"]!).\(r.destination.namespace!).svc.cluster.local"
        r.http.headers = Headers([("user-agent", "curl/8.5.0"), ("x-request-id", "b5f1c2d4")])
        r.source.ip = IPAddress(v4: 0x0A00_0000 | UInt32.random(in: 0..<0x40000, using: &rng))
        if Bool.random(using: &rng) {
            r.source.principal = "cluster.local/ns/\(namespaces.randomElement(using: &rng)!)/sa/\(apps.randomElement(using: &rng)!)"
        }
        if Bool.random(using: &rng) {
            let sub = "user-\(Int.random(in: 0..<20, using: &rng))"
            r.auth = AuthzRequest.RequestAuth(
                principal: "https://idp.example.com/\(sub)", audiences: ["bookinfo"],
                claims: ["iss": "https://idp.example.com", "sub": .string(sub), "groups": ["users", Bool.random(using: &rng) ? "admins" : "dev"]])
        }
        return r
    }
}

func op(_ build: (inout AuthorizationPolicy.Operation) -> Void) -> AuthorizationPolicy.Operation {
    var o = AuthorizationPolicy.Operation()
    build(&o)
    return o
}

func src(_ build: (inout AuthorizationPolicy.Source) -> Void) -> AuthorizationPolicy.Source {
    var s = AuthorizationPolicy.Source()
    build(&s)
    return s
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
