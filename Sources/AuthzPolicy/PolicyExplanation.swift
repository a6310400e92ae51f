import PolicyCore

/// Why a policy did or did not match a request, for `warden decide --explain`.
public struct PolicyExplanation: Sendable, Hashable {
    public var policy: PolicyID
    public var action: PolicyAction
    public var dryRun: Bool
    public var provider: String?
    public var span: SourceSpan?
    /// Whether the policy's selector selects the request's workload.
    public var applies: Bool
    public var selector: [String: String]?
    /// One entry per rule; empty when the policy has no rules (it then matches nothing).
    public var rules: [RuleExplanation]

    public var matched: Bool { applies && rules.contains { $0.matched } }
}

public struct RuleExplanation: Sendable, Hashable {
    public var index: Int
    public var matched: Bool
    /// For a rule that did not match: each condition that failed, as `field.path: what happened`.
    public var failures: [String]
    public var span: SourceSpan?
}

extension NamespaceBucket {
    func explain(_ request: AuthzRequest) -> [PolicyExplanation] {
        explain(request, RequestView())
    }

    private func explain(_ request: AuthzRequest, _ view: RequestView) -> [PolicyExplanation] {
        // In evaluation order: CUSTOM, DENY, ALLOW, then AUDIT, which never decides.
        let order: [PolicyAction: Int] = [.custom: 0, .deny: 1, .allow: 2, .audit: 3]
        let positions = policies.indices.sorted { (order[policies[$0].action]!, $0) < (order[policies[$1].action]!, $1) }
        return positions.map { position in
            let policy = policies[position]
            let compiled = rules.filter { $0.policy == position }
            return PolicyExplanation(
                policy: policy.id, action: policy.action, dryRun: policy.dryRun, provider: policy.provider,
                span: policy.span, applies: applies(position, request.destination.labels), selector: policy.selector,
                rules: compiled.map { rule in
                    let failures = rule.failures(request, view)
                    return RuleExplanation(
                        index: rule.index, matched: failures.isEmpty, failures: failures,
                        span: policy.rules?[rule.index].span)
                })
        }
    }
}

extension CompiledRule {
    /// Every failing condition, in the order written: the `when` conditions, then, when no `from` (or `to`) entry
    /// matched, the first failing field of each entry.
    func failures(_ request: AuthzRequest, _ view: RequestView) -> [String] {
        var out = when.filter { !$0.matches(request, view) }.map { $0.failure(request, view) }
        for entries in [from, to] where !entries.isEmpty {
            let firstFailures = entries.map { entry in entry.first { !$0.matches(request, view) } }
            if firstFailures.contains(where: { $0 == nil }) { continue }
            out += firstFailures.compactMap { $0?.failure(request, view) }
        }
        return out
    }
}

extension Predicate {
    /// `spec.rules[0].from[0].source.principals: source.principal "x" is not one of ["a"]`.
    func failure(_ request: AuthzRequest, _ view: RequestView) -> String {
        let listed = "[" + values.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        let actual = describeValue(request, view)
        if negated {
            return "\(field): \(attribute) \(actual ?? "(absent)") matches \(listed)"
        }
        guard let actual else { return "\(field): \(attribute) is absent\(absenceHint), so it cannot match \(listed)" }
        return "\(field): \(attribute) \(actual) does not match \(listed)"
    }

    private var absenceHint: String {
        switch attribute {
        case .sourcePrincipal, .sourceNamespace, .sourceServiceAccount, .sourceTrustDomain:
            " (no mTLS peer identity)"
        case .requestPrincipal, .requestAudiences, .requestPresenter, .requestClaim:
            " (no verified request token)"
        default:
            ""
        }
    }

    private func describeValue(_ request: AuthzRequest, _ view: RequestView) -> String? {
        func quoted(_ s: String?) -> String? { s.map { "\"\($0)\"" } }
        switch attribute {
        case .sourceIP: return request.source.ip.map { "\($0)" }
        case .remoteIP: return request.remoteIP.map { "\($0)" }
        case .destinationIP: return request.destination.ip.map { "\($0)" }
        case .destinationPort: return request.destination.port.map { "\($0)" }
        case .sourceServiceAccount:
            guard let id = request.source.identity, let ns = id.namespace, let sa = id.serviceAccount else { return nil }
            return quoted("\(ns)/\(sa)")
        case .sourceTrustDomain: return quoted(request.source.identity?.trustDomain)
        case .requestPrincipal:
            return request.auth?.issuerAndSubject.map { "\"\($0.issuer)/\($0.subject)\"" }
        case .requestAudiences:
            guard let auth = request.auth else { return nil }
            if !auth.audiences.isEmpty { return "\(Value.array(auth.audiences.map(Value.string)))" }
            return auth.claims["aud"].map { "\($0)" }
        case .requestClaim(let path):
            guard var value = request.auth?.claims else { return nil }
            for key in path {
                guard let next = value[key] else { return nil }
                value = next
            }
            return "\(value)"
        case .envoyMetadata:
            return nil
        default:
            return quoted(view.string(attribute, request))
        }
    }
}
