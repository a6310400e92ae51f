import AuthzPolicy
import Documents
import PolicyCore
import Testing

/// Validation as Istio does it: what Istio rejects is an error (the policy does not load), what it accepts with a
/// warning is a warning (the policy loads).
@Suite struct AuthorizationPolicyValidationTests {
    static func decode(_ yaml: String) -> (policy: AuthorizationPolicy?, diagnostics: [Diagnostic]) {
        let parsed = YAMLDocuments.parse(yaml, file: "p.yaml")
        let decoder = DocumentDecoder()
        let policy = parsed.documents.first.flatMap { AuthorizationPolicy.decode($0, decoder: decoder) }
        return (policy, parsed.diagnostics + decoder.diagnostics)
    }

    static func document(spec: String, annotations: String = "{}") -> String {
        """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: name, namespace: namespace, annotations: \(annotations)}
        spec: \(spec)
        """
    }

    /// One case of Istio's `TestValidateAuthorizationPolicy` (pkg/config/validation/validation_test.go), written as
    /// the YAML a user applies. Policies attached with `targetRef` are left out: Warden loads them with a warning and never applies them.
    struct IstioCase: CustomTestStringConvertible, Sendable {
        var name: String
        var spec: String
        var annotations = "{}"
        var valid: Bool
        var warning = false

        var testDescription: String { name }
    }

    static let istioCases: [IstioCase] = [
        IstioCase(
            name: "good",
            spec: """
                {selector: {matchLabels: {app: httpbin, version: v1}},
                 rules: [{from: [{source: {principals: [sa1]}}, {source: {principals: [sa2]}}],
                          to: [{operation: {methods: [GET]}}, {operation: {methods: [POST]}}],
                          when: [{key: source.ip, values: [1.2.3.4, 5.6.7.0/24]},
                                 {key: "request.headers[:authority]", values: [v1, v2]}]}]}
                """, valid: true),
        IstioCase(
            name: "good serviceAccounts",
            spec: """
                {selector: {matchLabels: {app: httpbin}},
                 rules: [{from: [{source: {serviceAccounts: [ns1/sa1, ns2/sa2]}}, {source: {principals: [sa2]}}]}]}
                """, valid: true),
        IstioCase(
            name: "serviceAccounts and namespaces",
            spec: "{rules: [{from: [{source: {serviceAccounts: [ns1/sa1], namespaces: [ns]}}]}]}", valid: false),
        IstioCase(name: "custom-good", spec: "{action: CUSTOM, provider: {name: my-custom-authz}, rules: [{}]}", valid: true),
        IstioCase(name: "custom-empty-provider", spec: "{action: CUSTOM, provider: {name: \"\"}, rules: [{}]}", valid: false),
        IstioCase(name: "custom-nil-provider", spec: "{action: CUSTOM, rules: [{}]}", valid: false),
        IstioCase(
            name: "custom-invalid-rule",
            spec: """
                {action: CUSTOM, provider: {name: my-custom-authz},
                 rules: [{from: [{source: {namespaces: [ns], notNamespaces: [ns], principals: [id], notPrincipals: [id],
                                           requestPrincipals: [req], notRequestPrincipals: [req]}}],
                          when: [{key: source.namespace, values: [a], notValues: [b]},
                                 {key: source.principal, values: [a], notValues: [b]},
                                 {key: "request.auth.claims[a]", values: [a], notValues: [b]}]}]}
                """, valid: false),
        IstioCase(name: "provider-wrong-action", spec: "{action: ALLOW, provider: {name: \"\"}, rules: [{}]}", valid: false),
        IstioCase(name: "allow-rules-nil", spec: "{action: ALLOW}", valid: true),
        IstioCase(name: "dry-run-valid-allow", spec: "{action: ALLOW}", annotations: "{istio.io/dry-run: \"true\"}", valid: true),
        IstioCase(
            name: "dry-run-valid-deny", spec: "{action: DENY, rules: [{}]}", annotations: "{istio.io/dry-run: \"false\"}",
            valid: true),
        IstioCase(name: "dry-run-invalid-value", spec: "{action: ALLOW}", annotations: "{istio.io/dry-run: foo}", valid: false),
        IstioCase(
            name: "dry-run-invalid-action-custom", spec: "{action: CUSTOM}", annotations: "{istio.io/dry-run: \"true\"}",
            valid: false),
        IstioCase(
            name: "dry-run-invalid-action-audit", spec: "{action: AUDIT}", annotations: "{istio.io/dry-run: \"true\"}",
            valid: false),
        IstioCase(name: "deny-rules-nil", spec: "{action: DENY}", valid: false),
        IstioCase(name: "selector-empty-value", spec: "{selector: {matchLabels: {app: \"\", version: v1}}}", valid: true),
        IstioCase(name: "selector-empty-key", spec: "{selector: {matchLabels: {app: httpbin, \"\": v1}}}", valid: false),
        IstioCase(name: "selector-empty-labels", spec: "{selector: {}}", valid: true, warning: true),
        IstioCase(name: "selector-wildcard-value", spec: "{selector: {matchLabels: {app: httpbin-*}}}", valid: false),
        IstioCase(name: "selector-wildcard-key", spec: "{selector: {matchLabels: {app-*: httpbin}}}", valid: false),
        // Istio's Go test builds an empty, non-nil list; a YAML or JSON `[]` decodes to no list at all, so Istio
        // accepts these documents. Warden loads them too, and warns.
        IstioCase(name: "from-empty", spec: "{rules: [{from: []}]}", valid: true, warning: true),
        IstioCase(name: "source-nil", spec: "{rules: [{from: [{}]}]}", valid: false),
        IstioCase(name: "source-empty", spec: "{rules: [{from: [{source: {}}]}]}", valid: false),
        IstioCase(name: "to-empty", spec: "{rules: [{to: []}]}", valid: true, warning: true),
        IstioCase(name: "operation-nil", spec: "{rules: [{to: [{}]}]}", valid: false),
        IstioCase(name: "operation-empty", spec: "{rules: [{to: [{operation: {}}]}]}", valid: false),
    ] + ["principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces", "serviceAccounts",
         "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"].map { field in
        IstioCase(name: "\(field)-empty", spec: "{rules: [{from: [{source: {\(field): [a, \"\"]}}]}]}", valid: false)
    } + ["hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths"].map { field in
        IstioCase(name: "\(field)-empty", spec: "{rules: [{to: [{operation: {\(field): [\"80\", \"\"]}}]}]}", valid: false)
    } + [
        IstioCase(
            name: "value-empty", spec: "{rules: [{when: [{key: \"request.headers[:authority]\", values: [v1, \"\"]}]}]}",
            valid: false),
        IstioCase(
            name: "invalid ip and port in ipBlocks",
            spec: """
                {rules: [{from: [{source: {ipBlocks: [1.2.3.4, ip1], notIpBlocks: [5.6.7.8, ip2]}}],
                          to: [{operation: {ports: ["80", port1], notPorts: ["90", port2]}}]}]}
                """, valid: false),
        IstioCase(
            name: "invalid ip and port in remoteIpBlocks",
            spec: """
                {rules: [{from: [{source: {remoteIpBlocks: [1.2.3.4, ip1], notRemoteIpBlocks: [5.6.7.8, ip2]}}],
                          to: [{operation: {ports: ["80", port1], notPorts: ["90", port2]}}]}]}
                """, valid: false),
        IstioCase(name: "condition-key-missing", spec: "{rules: [{when: [{values: [v1, v2]}]}]}", valid: false),
        IstioCase(name: "condition-key-empty", spec: "{rules: [{when: [{key: \"\", values: [v1, v2]}]}]}", valid: false),
        IstioCase(name: "condition-value-missing", spec: "{rules: [{when: [{key: source.principal}]}]}", valid: false),
        IstioCase(name: "condition-value-invalid", spec: "{rules: [{when: [{key: source.ip, values: [a.b.c.d]}]}]}", valid: false),
        IstioCase(
            name: "condition-notValue-invalid", spec: "{rules: [{when: [{key: source.ip, notValues: [a.b.c.d]}]}]}",
            valid: false),
        IstioCase(name: "condition-unknown", spec: "{rules: [{when: [{key: key1, values: [v1]}]}]}", valid: false),
        IstioCase(
            name: "L7DenyWithFrom",
            spec: "{selector: {matchLabels: {app: httpbin}}, action: DENY, rules: [{from: [{source: {requestPrincipals: [example.com/sub-1]}}]}]}",
            valid: true, warning: true),
        IstioCase(
            name: "L7DenyWithTo",
            spec: "{selector: {matchLabels: {app: httpbin}}, action: DENY, rules: [{to: [{operation: {methods: [GET, DELETE]}}]}]}",
            valid: true, warning: true),
        IstioCase(
            name: "L7DenyWithFromAndTo",
            spec: """
                {selector: {matchLabels: {app: httpbin}}, action: DENY,
                 rules: [{from: [{source: {principals: [temp]}}], to: [{operation: {methods: [GET, DELETE]}}]}]}
                """, valid: true, warning: true),
        IstioCase(
            name: "L7DenyWithFromAndToWithPort",
            spec: """
                {selector: {matchLabels: {app: httpbin}}, action: DENY,
                 rules: [{from: [{source: {principals: [temp]}}], to: [{operation: {ports: ["8080"], methods: [GET, DELETE]}}]}]}
                """, valid: true),
    ]

    @Test(arguments: istioCases)
    func istioAcceptsRejectsAndWarnsAlike(_ c: IstioCase) {
        let (policy, diagnostics) = Self.decode(Self.document(spec: c.spec, annotations: c.annotations))
        let errors = diagnostics.filter(\.isError), warnings = diagnostics.filter { $0.severity == .warning }
        #expect(errors.isEmpty == c.valid, "errors: \(errors)")
        #expect((policy != nil) == c.valid, "a policy loads exactly when it has no errors")
        if c.valid { #expect(warnings.isEmpty != c.warning, "warnings: \(warnings)") }
    }

    @Test func warningsKeepThePolicyAndSayWhere() throws {
        let (policy, diagnostics) = Self.decode(Self.document(spec: """
            {action: DENY, rules: [{to: [{operation: {paths: [/admin]}}]}]}
            """))
        let decoded = try #require(policy, "a warning does not refuse the policy")
        #expect(decoded.rules?.count == 1)
        let warning = try #require(diagnostics.first)
        #expect(diagnostics.count == 1)
        #expect(warning.severity == .warning)
        #expect(warning.code == "http_only_deny_rule")
        #expect(warning.description == """
            p.yaml:4:30: spec.rules[0]: warning: a DENY rule with only HTTP attributes denies all traffic to TCP ports \
            under the policy's scope in Istio; set `ports` to say which ports it covers
            """)
    }

    @Test func emptyFromAndToListsAreNoConstraint() throws {
        let (policy, diagnostics) = Self.decode(Self.document(spec: "{rules: [{from: [], to: [], when: [{key: source.ip, values: [10.0.0.0/8]}]}]}"))
        let rule = try #require(policy?.rules?.first)
        #expect(rule.from == nil && rule.to == nil)
        #expect(diagnostics.map(\.code) == ["empty_list_ignored", "empty_list_ignored"])
        #expect(diagnostics.map { $0.path?.description } == ["spec.rules[0].from", "spec.rules[0].to"])
    }

    @Test func nullFieldsAreAbsentAsTheAPIServerPrunesThem() throws {
        let (policy, diagnostics) = Self.decode(Self.document(spec: "{selector: null, action: null, provider: null, rules: null}"))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let decoded = try #require(policy)
        #expect(decoded.action == .allow && decoded.selector == nil && decoded.provider == nil && decoded.rules == nil)
    }

    @Test func emptyRulesAreNoRules() {
        for action in ["DENY", "CUSTOM, provider: {name: opa}"] {
            let (policy, diagnostics) = Self.decode(Self.document(spec: "{action: \(action), rules: []}"))
            #expect(policy == nil)
            #expect(diagnostics.filter(\.isError).map(\.message).first?.contains("action without `rules` is meaningless") == true)
        }
        let (allow, _) = Self.decode(Self.document(spec: "{rules: []}"))
        #expect(allow?.rules == nil, "an ALLOW policy with `rules: []` denies everything, as one without rules")
    }

    @Test func customRulesMayCarryEmptyIdentityLists() {
        let (policy, diagnostics) = Self.decode(Self.document(spec: """
            {action: CUSTOM, provider: {name: opa}, rules: [{from: [{source: {principals: [], ipBlocks: [10.0.0.0/8]}}],
                                                            when: [{key: source.ip, values: [10.0.0.1]}]}]}
            """))
        #expect(policy != nil, "\(diagnostics)")
    }

    @Test func trustDomainConditionsTakeASlashAndTrustDomainsDoNot() {
        let condition = Self.decode(Self.document(spec: "{rules: [{when: [{key: source.trustDomain, values: [td/ns/a]}]}]}"))
        #expect(condition.policy != nil)
        #expect(condition.diagnostics.map(\.code) == ["trust_domain_with_path"])
        let field = Self.decode(Self.document(spec: "{rules: [{from: [{source: {trustDomains: [td/ns/a]}}]}]}"))
        #expect(field.policy == nil)
        #expect(field.diagnostics.map(\.message) == ["a trust domain must not contain `/`: \"td/ns/a\""])
    }

    @Test func annotationsIstioRefuses() {
        let (policy, diagnostics) = Self.decode(
            Self.document(spec: "{rules: [{}]}", annotations: "{internal.istio.io/webhook-always-reject: \"true\"}"))
        #expect(policy == nil)
        #expect(diagnostics.map(\.message) == ["the annotation `internal.istio.io/webhook-always-reject` is always rejected"])
    }

    @Test func theCRDBoundsAreErrors() {
        let rules = Array(repeating: "{}", count: 513).joined(separator: ", ")
        #expect(Self.decode(Self.document(spec: "{rules: [\(rules)]}")).diagnostics.map(\.message) == [
            "may not have more than 512 rules",
        ])
        let sources = Array(repeating: "{source: {namespaces: [a]}}", count: 513).joined(separator: ", ")
        #expect(Self.decode(Self.document(spec: "{rules: [{from: [\(sources)]}]}")).diagnostics.map(\.message) == [
            "may not have more than 512 entries",
        ])
        let long = String(repeating: "v", count: 64)
        #expect(Self.decode(Self.document(spec: "{selector: {matchLabels: {app: \(long)}}}")).diagnostics.map(\.message) == [
            "a label value cannot exceed 63 characters",
        ])
    }
}
