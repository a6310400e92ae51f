import AuthzPolicy
import DecisionPoint
import ExtAuthz
import PolicyCore

/// Human-readable renderings of decisions and explanations.
enum DecisionText {
    static func oneLine(_ response: DecisionResponse) -> String {
        var out = response.decision.rawValue
        if let by = response.decidedBy { out += " \(by.action.rawValue) \(by)" }
        out += " (\(response.reason.rawValue))"
        if response.audited { out += " audit" }
        return out
    }

    static func describe(_ response: DecisionResponse, request: AuthzRequest, set: CompiledPolicySet) -> String {
        var lines = ["decision: \(response.decision.rawValue)"]
        var reason = response.reason.explanation
        if let by = response.decidedBy { reason += ": \(by.action.rawValue) \(by)" }
        lines.append("reason:   \(reason)")
        lines.append("workload: \(workload(request, set))")
        for audit in response.audits { lines.append("audit:    \(audit)") }
        for check in response.custom {
            let answer = check.outcome.map { $0.allowed ? "allowed" : "denied" } ?? "not asked"
            lines.append("custom:   \(check.match) asked provider `\(check.provider)`: \(answer)")
        }
        for dry in response.dryRun {
            let by = dry.match.map { " (\($0))" } ?? ""
            lines.append("dry-run:  \(dry.action.rawValue) policies would \(dry.decision.rawValue)\(by)")
        }
        for d in response.diagnostics { lines.append("note:     \(d.message)") }
        return lines.joined(separator: "\n")
    }

    static func describe(_ explanation: [PolicyExplanation], request: AuthzRequest, set: CompiledPolicySet) -> String {
        guard !explanation.isEmpty else {
            return "\nno policy applies to workload \(workload(request, set))"
        }
        var lines = ["", "policies for workload \(workload(request, set)), in evaluation order:"]
        for policy in explanation {
            var head = "  \(policy.action.rawValue) \(policy.policy)"
            if policy.dryRun { head += " (dry-run)" }
            if let provider = policy.provider { head += " provider `\(provider)`" }
            if let span = policy.span { head += "  [\(span)]" }
            lines.append(head)
            guard policy.applies else {
                let selector = policy.selector.map(labelsText) ?? "{}"
                lines.append("    does not apply: selector \(selector) does not select the workload")
                continue
            }
            if policy.rules.isEmpty {
                lines.append("    no rules: matches nothing" + (policy.action == .allow ? " (this ALLOW policy denies every request)" : ""))
            }
            for rule in policy.rules {
                if rule.matched {
                    lines.append("    rule \(rule.index): matched")
                } else {
                    lines.append("    rule \(rule.index): no match")
                    for failure in rule.failures { lines.append("      - \(failure)") }
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    static func workload(_ request: AuthzRequest, _ set: CompiledPolicySet) -> String {
        let labels = request.destination.labels
        return set.workloadNamespace(of: request) + (labels.isEmpty ? "" : " " + labelsText(labels))
    }

    static func labelsText(_ labels: [String: String]) -> String { PolicyCore.labelsText(labels, separator: ", ") }
}

extension PolicyExplanation {
    var json: Value {
        var o: [String: Value] = [
            "policy": .string(policy.description),
            "action": .string(action.rawValue),
            "dry_run": .bool(dryRun),
            "applies": .bool(applies),
            "matched": .bool(matched),
            "rules": .array(rules.map { r in
                ["rule": .int(r.index), "matched": .bool(r.matched), "failures": .array(r.failures.map(Value.string))]
            }),
        ]
        if let span { o["location"] = .string(span.description) }
        if let provider { o["provider"] = .string(provider) }
        return .object(o)
    }
}

extension PolicySnapshot {
    /// Decides a request given as attributes; a CUSTOM provider sees the OPA-Envoy input of the `CheckRequest`
    /// Envoy would have sent for it.
    func decide(attributes request: AuthzRequest) -> DecisionResponse {
        decide(request, input: AttributesInput())
    }
}

/// OPA-Envoy's input for a request given as attributes, built only when a CUSTOM provider asks (holding nothing, so
/// a decision copies nothing for it).
struct AttributesInput: ProviderInputSource {
    func providerInput(for request: AuthzRequest) -> Value {
        OPAEnvoyInput.document(forAttributesOf: request)
    }
}
