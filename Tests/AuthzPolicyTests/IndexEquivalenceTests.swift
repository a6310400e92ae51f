@testable import AuthzPolicy
import PolicyCore
import Testing
import WardenTesting

/// The compiled indexes must decide exactly as a plain walk over every rule: random policy sets and requests,
/// decided both ways; with workloads scanned rule by rule, through the rule index, and as chosen by size.
@Suite struct IndexEquivalenceTests {
    @Test(arguments: [0, 8, Int.max])
    func indexedDecisionsMatchALinearWalk(directLimit: Int) {
        var rng = SeededGenerator(seed: 20261123)
        for round in 0..<200 {
            let policies = (0..<Int.random(in: 1...40, using: &rng)).map { randomPolicy($0, &rng) }
            let set = CompiledPolicySet(
                policies: policies, rootNamespace: "istio-system", defaultNamespace: "default", directLimit: directLimit)
            // Requests to the same workload share their labels' storage, as the server's mapper hands them over,
            // half of the time: decided from a remembered plan and from a new one.
            var shared: [[String: String]: [String: String]] = [:]
            for i in 0..<50 {
                var request = randomRequest(&rng)
                if i % 2 == 0 {
                    request.destination.labels = shared[request.destination.labels, default: request.destination.labels]
                    shared[request.destination.labels] = request.destination.labels
                }
                let expected = linearDecision(set, request)
                for indexed in [set.decide(request), set.decide(request)] {
                    #expect(indexed.decision == expected.decision, "round \(round): \(request.attributes)")
                    #expect(indexed.reason == expected.reason, "round \(round): \(request.attributes)")
                    #expect(indexed.decidedBy == expected.decidedBy, "round \(round): \(request.attributes)")
                    #expect(indexed.audits == expected.audits, "round \(round)")
                    #expect(indexed.dryRun == expected.dryRun, "round \(round): \(request.attributes)")
                }
            }
        }
    }

    /// A workload's plan is resolved once for the labels a server hands over for it, and a decision by labels
    /// changed after an earlier one follows the new labels.
    @Test func aWorkloadIsResolvedOnceAndChangedLabelsAreResolvedAgain() {
        func allow(_ app: String, path: String) -> AuthorizationPolicy {
            var operation = AuthorizationPolicy.Operation()
            operation.paths = [path]
            return AuthorizationPolicy(
                id: PolicyID(namespace: "default", name: "\(app)-only"), selector: ["app": app], action: .allow,
                rules: [AuthorizationPolicy.Rule(to: [operation])])
        }
        let policies = [allow("a", path: "/a"), allow("b", path: "/b")]
        let set = CompiledPolicySet(policies: policies)
        var requests: [AuthzRequest] = (0..<100).map { i in
            var r = AuthzRequest()
            r.destination.namespace = "default"
            r.destination.labels = ["app": i % 2 == 0 ? "a" : "b"]
            r.http.path = "/a"
            return r
        }
        requests.shareWorkloadLabels()
        let allowed = requests.filter { set.decide($0).isAllowed }.count
        #expect(allowed == 50)
        #expect(set.plansResolved(namespace: "default") == 2)

        // The same labels changed after a decision: another workload, decided by its own policies.
        var labels = requests[0].destination.labels
        var request = requests[0]
        #expect(set.decide(request).isAllowed)
        labels["app"] = "b"
        request.destination.labels = labels
        #expect(!set.decide(request).isAllowed)
        #expect(set.plansResolved(namespace: "default") == 3)

        // More workloads than plans are kept: it starts over and still decides each by its labels.
        for i in 0..<(WorkloadPlans.capacity + 10) {
            var r = request
            r.destination.labels = ["app": i % 2 == 0 ? "a" : "b", "pod": "\(i)"]
            #expect(set.decide(r).isAllowed == (i % 2 == 0))
        }
        #expect(set.decide(requests[0]).isAllowed)
        #expect(!set.decide(requests[1]).isAllowed)
    }

    /// Decisions on several threads at once, for more workloads than a bucket keeps plans (so plans are made,
    /// found and dropped concurrently), give the answers of the same decisions made one at a time.
    @Test func concurrentDecisionsAgreeWithSequentialOnes() async {
        var rng = SeededGenerator(seed: 20261206)
        let policies = (0..<30).map { randomPolicy($0, &rng) }
        let set = CompiledPolicySet(policies: policies, rootNamespace: "istio-system", defaultNamespace: "default")
        // 300 workloads: the three labels of `randomRequest` plus a distinct pod label each.
        var requests = (0..<3000).map { i -> AuthzRequest in
            var r = randomRequest(&rng)
            r.destination.labels["pod"] = "p\(i % 300)"
            return r
        }
        requests.shareWorkloadLabels()
        let shared = requests
        let expected = shared.map { set.decide($0) }
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var wrong = 0
                    for round in 0..<3 {
                        for i in stride(from: (worker + round) % 4, to: shared.count, by: 4) where set.decide(shared[i]) != expected[i] {
                            wrong += 1
                        }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    /// The reference: every applicable policy's rules evaluated in order, without indexes.
    private func linearDecision(_ set: CompiledPolicySet, _ request: AuthzRequest) -> DecisionResponse {
        let explained = set.explain(request).filter(\.applies)
        func first(_ action: PolicyAction) -> RuleMatch? {
            let candidates = explained.filter { $0.action == action && !$0.dryRun }
            var best: (PolicyID, Int)?
            for p in candidates {
                if let r = p.rules.first(where: \.matched) {
                    // Evaluation order is the bucket order: root namespace first, then by name.
                    if best == nil || order(p.policy, set) < order(best!.0, set) { best = (p.policy, r.index) }
                }
            }
            return best.map { RuleMatch(policy: $0.0, action: action, rule: $0.1) }
        }
        var response = DecisionResponse(decision: .deny, reason: .noAllowMatched)
        for action in [PolicyAction.deny, .allow] where explained.contains(where: { $0.dryRun && $0.action == action }) {
            let matched = explained.filter { $0.dryRun && $0.action == action && $0.matched }
                .min { order($0.policy, set) < order($1.policy, set) }
            let match = matched.map { p in RuleMatch(policy: p.policy, action: action, rule: p.rules.first(where: \.matched)!.index) }
            let decision: Decision = (match == nil) == (action == .deny) ? .allow : .deny
            response.dryRun.append(DryRunOutcome(action: action, decision: decision, match: match))
        }
        response.audits = RuleMatches(explained.filter { $0.action == .audit && $0.matched }
            .sorted { order($0.policy, set) < order($1.policy, set) }
            .map { p in RuleMatch(policy: p.policy, action: .audit, rule: p.rules.first(where: \.matched)!.index) })
        if let deny = first(.deny) {
            response.reason = .denyMatched
            response.decidedBy = deny
            return response
        }
        if !explained.contains(where: { $0.action == .allow && !$0.dryRun }) {
            response.decision = .allow
            response.reason = .noAllowPolicy
            return response
        }
        if let allow = first(.allow) {
            response.decision = .allow
            response.reason = .allowMatched
            response.decidedBy = allow
        }
        return response
    }

    private func order(_ id: PolicyID, _ set: CompiledPolicySet) -> (Int, String) {
        (id.namespace == set.rootNamespace ? 0 : 1, id.name)
    }

    private func randomPolicy(_ n: Int, _ rng: inout SeededGenerator) -> AuthorizationPolicy {
        let actions: [PolicyAction] = [.allow, .allow, .deny, .audit]
        let action = actions.randomElement(using: &rng)!
        let namespace = ["default", "istio-system", "prod"].randomElement(using: &rng)!
        let app = ["a", "b"].randomElement(using: &rng)!, version = ["v1", "v2"].randomElement(using: &rng)!
        let selector: [String: String]? = [
            nil, nil, ["app": app], ["app": app], ["app": app, "version": version], ["version": version],
        ].randomElement(using: &rng)!
        let rules = (0..<Int.random(in: 0...3, using: &rng)).map { _ in randomRule(&rng) }
        return AuthorizationPolicy(
            id: PolicyID(namespace: namespace, name: "p\(n)"), selector: selector, action: action,
            rules: action == .deny && rules.isEmpty ? [AuthorizationPolicy.Rule()] : rules,
            dryRun: action != .audit && Int.random(in: 0..<8, using: &rng) == 0)
    }

    private func randomRule(_ rng: inout SeededGenerator) -> AuthorizationPolicy.Rule {
        var rule = AuthorizationPolicy.Rule()
        if Bool.random(using: &rng) {
            rule.to = (0..<Int.random(in: 1...2, using: &rng)).map { _ in
                var o = AuthorizationPolicy.Operation()
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: o.paths = pick(["/a", "/b", "/c", "/a/*", "*.js"], &rng)
                case 1: o.methods = pick(["GET", "POST", "DELETE"], &rng)
                case 2: o.hosts = pick(["x.com", "Y.com", "*.com"], &rng)
                case 3: o.ports = pick(["80", "443"], &rng)
                default: o.notPaths = pick(["/a", "/b"], &rng)
                }
                return o
            }
        }
        if Bool.random(using: &rng) {
            rule.from = (0..<Int.random(in: 1...2, using: &rng)).map { _ in
                var s = AuthorizationPolicy.Source()
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: s.principals = pick(["td/ns/default/sa/a", "td/ns/prod/sa/b", "*"], &rng)
                case 1: s.namespaces = pick(["default", "prod"], &rng)
                case 2: s.ipBlocks = pick(["10.0.0.0/8", "192.168.0.1"], &rng)
                default: s.notPrincipals = pick(["td/ns/default/sa/a"], &rng)
                }
                return s
            }
        }
        if Bool.random(using: &rng) {
            rule.when = [AuthorizationPolicy.Condition(key: "request.headers[x-env]", values: pick(["dev", "prod"], &rng))]
        }
        return rule
    }

    private func randomRequest(_ rng: inout SeededGenerator) -> AuthzRequest {
        var r = AuthzRequest()
        r.destination.namespace = ["default", "prod", "other"].randomElement(using: &rng)!
        if Bool.random(using: &rng) { r.destination.labels["app"] = ["a", "b", "c"].randomElement(using: &rng)! }
        if Bool.random(using: &rng) { r.destination.labels["version"] = ["v1", "v2"].randomElement(using: &rng)! }
        if Bool.random(using: &rng) { r.destination.labels["pod-template-hash"] = "7d4f8b9c6" }
        r.http.path = ["/a", "/b", "/c", "/a/x", "/lib.js"].randomElement(using: &rng)!
        r.http.method = ["GET", "POST", "DELETE"].randomElement(using: &rng)!
        r.http.host = ["x.com", "Y.com", "X.COM", "z.org"].randomElement(using: &rng)!
        r.destination.port = [80, 443].randomElement(using: &rng)!
        if Bool.random(using: &rng) { r.source.principal = ["td/ns/default/sa/a", "td/ns/prod/sa/b"].randomElement(using: &rng)! }
        r.source.ip = IPAddress(["10.1.1.1", "192.168.0.1", "8.8.8.8"].randomElement(using: &rng)!)
        if Bool.random(using: &rng) { r.http.headers.add("x-env", ["dev", "prod"].randomElement(using: &rng)!) }
        return r
    }

    private func pick(_ values: [String], _ rng: inout SeededGenerator) -> [String] {
        Array(values.shuffled(using: &rng).prefix(Int.random(in: 1...values.count, using: &rng)))
    }
}
