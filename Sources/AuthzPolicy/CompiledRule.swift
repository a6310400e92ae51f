import PolicyCore

/// One rule of a policy, compiled: the `when` conditions, and the `from` and `to` entries as lists of ANDed
/// predicates (an empty list places no constraint).
struct CompiledRule: Sendable {
    /// The policy's position in its namespace bucket.
    let policy: Int
    /// The rule's index in the policy's `rules`.
    let index: Int
    let when: [Predicate]
    let from: [[Predicate]]
    let to: [[Predicate]]

    @inline(__always)
    func matches(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        for i in when.indices where !when[i].matches(request, view) { return false }
        if !from.isEmpty && !Self.any(from, request, view) { return false }
        if !to.isEmpty && !Self.any(to, request, view) { return false }
        return true
    }

    @inline(__always)
    private static func any(_ entries: [[Predicate]], _ request: AuthzRequest, _ view: RequestView) -> Bool {
        for e in entries.indices {
            var all = true
            for i in entries[e].indices where !entries[e][i].matches(request, view) {
                all = false
                break
            }
            if all { return true }
        }
        return false
    }

    /// The predicates every match must satisfy (the `when` conditions, and the fields of a lone `from` or `to`
    /// entry): the candidates for indexing the rule.
    var requiredPredicates: [Predicate] {
        when + (from.count == 1 ? from[0] : []) + (to.count == 1 ? to[0] : [])
    }
}

/// A policy compiled into rules.
struct CompiledPolicy: Sendable {
    let policy: AuthorizationPolicy
    let rules: [CompiledRule]
    let diagnostics: [Diagnostic]

    /// Compiles `policy`, which sits at `position` in its bucket.
    ///
    /// A value that cannot compile is handled as Istio handles it: an ALLOW or CUSTOM rule holding it is dropped
    /// (the policy allows less); for DENY and AUDIT only the value is dropped (the rule matches more).
    init(_ policy: AuthorizationPolicy, position: Int) {
        self.policy = policy
        var diagnostics: [Diagnostic] = []
        var rules: [CompiledRule] = []
        let dropRuleOnError = policy.action == .allow || policy.action == .custom
        for (i, rule) in (policy.rules ?? []).enumerated() {
            let rulePath = FieldPath.root / "spec" / "rules" / i
            var failed = false, unknownKey = false
            /// Nil when every value was invalid: the field then constrains nothing, as in Istio.
            func predicate(_ attribute: Attribute, _ values: [String], negated: Bool, _ field: FieldPath) -> Predicate? {
                var invalid = 0
                let p = Predicate.make(attribute, values: values, negated: negated, field: field, policyNamespace: policy.id.namespace) {
                    message in
                    failed = true
                    invalid += 1
                    diagnostics.append(Diagnostic(code: Diagnostic.Code.invalidValue, message: message, span: rule.span, path: field))
                }
                return invalid == values.count ? nil : p
            }
            func fields(_ list: [(Attribute, [String], [String], String, String)], _ base: FieldPath) -> [Predicate] {
                var out: [Predicate] = []
                for (attribute, values, notValues, name, notName) in list {
                    if !values.isEmpty, let p = predicate(attribute, values, negated: false, base / name) { out.append(p) }
                    if !notValues.isEmpty, let p = predicate(attribute, notValues, negated: true, base / notName) {
                        out.append(p)
                    }
                }
                return out
            }
            let from = (rule.from ?? []).enumerated().map { j, s in
                fields([
                    (.sourcePrincipal, s.principals, s.notPrincipals, "principals", "notPrincipals"),
                    (.requestPrincipal, s.requestPrincipals, s.notRequestPrincipals, "requestPrincipals", "notRequestPrincipals"),
                    (.sourceNamespace, s.namespaces, s.notNamespaces, "namespaces", "notNamespaces"),
                    (.sourceServiceAccount, s.serviceAccounts, s.notServiceAccounts, "serviceAccounts", "notServiceAccounts"),
                    (.sourceTrustDomain, s.trustDomains, s.notTrustDomains, "trustDomains", "notTrustDomains"),
                    (.sourceIP, s.ipBlocks, s.notIpBlocks, "ipBlocks", "notIpBlocks"),
                    (.remoteIP, s.remoteIpBlocks, s.notRemoteIpBlocks, "remoteIpBlocks", "notRemoteIpBlocks"),
                ], rulePath / "from" / j / "source")
            }
            let to = (rule.to ?? []).enumerated().map { j, o in
                fields([
                    (.host, o.hosts, o.notHosts, "hosts", "notHosts"),
                    (.destinationPort, o.ports, o.notPorts, "ports", "notPorts"),
                    (.method, o.methods, o.notMethods, "methods", "notMethods"),
                    (.path, o.paths, o.notPaths, "paths", "notPaths"),
                ], rulePath / "to" / j / "operation")
            }
            var when: [Predicate] = []
            for (k, condition) in rule.when.enumerated() {
                let field = rulePath / "when" / k
                switch Attribute.parse(whenKey: condition.key) {
                case .success(let attribute):
                    if !condition.values.isEmpty, let p = predicate(attribute, condition.values, negated: false, field / "values") {
                        when.append(p)
                    }
                    if !condition.notValues.isEmpty,
                        let p = predicate(attribute, condition.notValues, negated: true, field / "notValues")
                    {
                        when.append(p)
                    }
                case .failure(let error):
                    // Istio skips a rule naming an unknown attribute whatever the action.
                    unknownKey = true
                    diagnostics.append(Diagnostic(code: Diagnostic.Code.invalidValue, message: error.message, span: rule.span, path: field / "key"))
                }
            }
            if unknownKey || (failed && dropRuleOnError) { continue }
            rules.append(CompiledRule(policy: position, index: i, when: when, from: from, to: to))
        }
        self.rules = rules
        self.diagnostics = diagnostics
    }
}
