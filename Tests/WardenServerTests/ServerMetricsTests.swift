import PolicyCore
import Testing
@testable import WardenServer

@Suite struct ServerMetricsTests {
    /// Each decision counts under its deciding action (`none` when no rule decided; AUDIT never decides) and result,
    /// and under no other pair.
    @Test func decisionsCountUnderTheirActionAndResult() {
        let metrics = ServerMetrics()
        func rule(_ action: PolicyAction) -> RuleMatch {
            RuleMatch(policy: PolicyID(namespace: "default", name: action.rawValue.lowercased()), action: action, rule: 0)
        }
        let responses: [(DecisionResponse, count: Int)] = [
            (DecisionResponse(decision: .allow, reason: .allowMatched, decidedBy: rule(.allow)), 1),
            (DecisionResponse(decision: .deny, reason: .denyMatched, decidedBy: rule(.deny)), 2),
            (DecisionResponse(decision: .allow, reason: .noAllowPolicy, decidedBy: rule(.custom)), 3),
            (DecisionResponse(decision: .deny, reason: .customDenied, decidedBy: rule(.custom)), 4),
            (DecisionResponse(decision: .allow, reason: .noAllowPolicy), 5),
            (DecisionResponse(decision: .deny, reason: .noAllowMatched), 6),
        ]
        for (response, count) in responses {
            for _ in 0..<count { metrics.recordDecision(response, duration: .microseconds(3)) }
        }
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        let expected = [
            ("ALLOW", "allow", 1), ("ALLOW", "deny", 0), ("DENY", "allow", 0), ("DENY", "deny", 2),
            ("CUSTOM", "allow", 3), ("CUSTOM", "deny", 4), ("none", "allow", 5), ("none", "deny", 6),
        ]
        for (action, result, count) in expected {
            #expect(text.contains(#"warden_decisions_total{action="\#(action)",result="\#(result)"} \#(count)"#), "\(text)")
        }
    }
}
