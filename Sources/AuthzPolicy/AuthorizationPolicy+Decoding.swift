import PolicyCore

extension AuthorizationPolicy {
    public static let kind = "AuthorizationPolicy"
    public static let apiVersions = ["security.istio.io/v1", "security.istio.io/v1beta1"]
    public static let dryRunAnnotation = IstioResource.dryRunAnnotation
    /// The CRD's bounds on `rules` and on each rule's `from`.
    static let maximumRules = 512
    static let maximumSources = 512

    /// Decodes one AuthorizationPolicy document and validates it as `istioctl validate` does, reporting every
    /// problem to `decoder` with its field path and place: what Istio rejects as an error, what it accepts with a
    /// warning as a warning. Returns nil when the document has errors (warnings alone do not stop it).
    ///
    /// `defaultNamespace` stands in for a missing `metadata.namespace`, as `kubectl apply` uses the current one.
    public static func decode(
        _ node: DocumentNode,
        decoder: DocumentDecoder,
        defaultNamespace: String = "default"
    ) -> AuthorizationPolicy? {
        let errorsBefore = decoder.diagnostics.filter(\.isError).count
        var reader = PolicyReader(decoder: decoder)
        let policy = reader.policy(node, defaultNamespace: defaultNamespace)
        return decoder.diagnostics.filter(\.isError).count == errorsBefore ? policy : nil
    }
}

private struct PolicyReader {
    let decoder: DocumentDecoder
    var action: PolicyAction = .allow

    mutating func policy(_ node: DocumentNode, defaultNamespace: String) -> AuthorizationPolicy? {
        guard
            let resource = decoder.istioResource(
                node, kind: AuthorizationPolicy.kind, apiVersions: AuthorizationPolicy.apiVersions,
                specFields: ["selector", "targetRef", "targetRefs", "action", "provider", "rules"],
                defaultNamespace: defaultNamespace, supportsDryRun: true)
        else { return nil }
        let (name, namespace, annotations, spec, specNode) =
            (resource.name, resource.namespace, resource.annotations, resource.spec, resource.specNode)
        let specPath = spec.path
        let attachedByTarget = decoder.targetRefsNotEnforced(spec)
        let selector = spec["selector"].flatMap { decoder.workloadSelector($0, at: spec.path("selector")) }

        if let actionNode = spec["action"], let text = decoder.string(actionNode, at: spec.path("action")) {
            if let parsed = PolicyAction(rawValue: text.value) {
                action = parsed
            } else {
                decoder.invalid(
                    "unknown action `\(text.value)`; expected one of ALLOW, DENY, AUDIT, CUSTOM", at: text)
            }
        }

        var provider: Located<String>?
        if let providerNode = spec["provider"],
            let fields = decoder.fields(providerNode, at: spec.path("provider"), known: ["name"])
        {
            provider = fields["name"].flatMap { decoder.string($0, at: fields.path("name")) }
            if action != .custom {
                decoder.invalid("`provider` is only allowed with the CUSTOM action, found \(action.rawValue)", at: providerNode, spec.path("provider"))
            }
        }

        var rules: [AuthorizationPolicy.Rule]?
        // Istio decodes an empty list as no list: `rules: []` is no `rules`.
        if let rulesNode = spec["rules"], let items = decoder.sequence(rulesNode, at: spec.path("rules")),
            !items.isEmpty
        {
            if items.count > AuthorizationPolicy.maximumRules {
                decoder.invalid(
                    "may not have more than \(AuthorizationPolicy.maximumRules) rules", at: rulesNode, spec.path("rules"))
            }
            rules = items.compactMap { rule($0.node, at: $0.path) }
        }
        switch action {
        case .custom:
            if rules == nil {
                decoder.report(
                    Diagnostic.Code.invalidValue,
                    "CUSTOM action without `rules` is meaningless as it will never be triggered; add an empty rule `{}` to trigger it for every request",
                    span: specNode.span, path: specPath)
            } else if provider == nil || provider!.value.isEmpty {
                decoder.report(Diagnostic.Code.missingField, "`provider.name` must not be empty for the CUSTOM action", span: spec["provider"]?.span ?? specNode.span, path: specPath / "provider" / "name")
            }
        case .deny where rules == nil:
            decoder.report(
                Diagnostic.Code.invalidValue,
                "DENY action without `rules` is meaningless as it will never be triggered; add an empty rule `{}` to trigger it for every request",
                span: specNode.span, path: specPath)
        default: break
        }

        var dryRun = false
        if let value = annotations[AuthorizationPolicy.dryRunAnnotation] {
            if let parsed = parseGoBool(value.value) {
                dryRun = parsed
                if action != .allow && action != .deny {
                    decoder.invalid("the annotation `\(AuthorizationPolicy.dryRunAnnotation)` only supports the ALLOW and DENY actions, found \(action.rawValue)", at: value)
                }
            } else {
                decoder.invalid("invalid value `\(value.value)` for the annotation `\(AuthorizationPolicy.dryRunAnnotation)`: expected true or false", at: value)
            }
        }

        guard let name, !attachedByTarget else { return nil }
        return AuthorizationPolicy(
            id: PolicyID(namespace: namespace, name: name), selector: selector, action: action,
            provider: provider?.value, rules: rules, dryRun: dryRun, span: node.span)
    }

    func rule(_ node: DocumentNode, at path: FieldPath) -> AuthorizationPolicy.Rule? {
        if case .scalar(let s) = node.content, s.kind == .null {
            decoder.report(
                Diagnostic.Code.typeMismatch, "expected an object, found null; write `{}` for a rule that matches every request",
                span: node.span, path: path)
            return nil
        }
        guard let fields = decoder.fields(node, at: path, known: ["from", "to", "when"]) else { return nil }
        var rule = AuthorizationPolicy.Rule(span: node.span)
        if let items = entries(fields, "from", matchingAny: "source", limit: AuthorizationPolicy.maximumSources) {
            rule.from = items.compactMap { source($0.node, at: $0.path) }
        }
        if let items = entries(fields, "to", matchingAny: "operation") {
            rule.to = items.compactMap { operation($0.node, at: $0.path) }
        }
        if let whenNode = fields["when"], let items = decoder.sequence(whenNode, at: fields.path("when")) {
            rule.when = items.compactMap { condition($0.node, at: $0.path) }
        }
        if action == .deny, rule.usesOnlyHTTPAttributes {
            decoder.warn(
                Diagnostic.Code.httpOnlyDenyRule,
                "a DENY rule with only HTTP attributes denies all traffic to TCP ports under the policy's scope in Istio; set `ports` to say which ports it covers",
                at: node, path)
        }
        return rule
    }

    /// The entries of a rule's `from` or `to`; nil when the list is absent or empty. Istio decodes `[]` as no list,
    /// so the rule then matches any source (operation): a warning says so.
    func entries(
        _ fields: DocumentDecoder.Fields, _ key: String, matchingAny what: String, limit: Int? = nil
    ) -> [(node: DocumentNode, path: FieldPath)]? {
        guard let node = fields[key], let items = decoder.sequence(node, at: fields.path(key)) else { return nil }
        if items.isEmpty {
            decoder.warn(
                Diagnostic.Code.emptyListIgnored,
                "an empty `\(key)` is no `\(key)`, as Istio decodes it: the rule matches any \(what); remove it, or list the \(what)s",
                at: node, fields.path(key))
            return nil
        }
        if let limit, items.count > limit {
            decoder.invalid("may not have more than \(limit) entries", at: node, fields.path(key))
        }
        return items
    }

    static let sourceFields = [
        "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces", "notNamespaces",
        "serviceAccounts", "notServiceAccounts", "trustDomains", "notTrustDomains", "ipBlocks", "notIpBlocks",
        "remoteIpBlocks", "notRemoteIpBlocks",
    ]

    static let operationFields = ["hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths"]

    /// A list of non-empty strings.
    func values(_ fields: DocumentDecoder.Fields, _ key: String) -> [Located<String>] {
        guard let n = fields[key] else { return [] }
        let values = decoder.strings(n, at: fields.path(key)) ?? []
        for v in values where v.value.isEmpty { decoder.invalid("empty value not allowed", at: v) }
        return values
    }

    func source(_ node: DocumentNode, at path: FieldPath) -> AuthorizationPolicy.Source? {
        guard let entry = decoder.fields(node, at: path, known: ["source"]) else { return nil }
        guard let sourceNode = entry["source"] else {
            decoder.report(Diagnostic.Code.missingField, "`from` entries need a `source`", span: node.span, path: path)
            return nil
        }
        let sourcePath = path / "source"
        guard let fields = decoder.fields(sourceNode, at: sourcePath, known: Self.sourceFields) else { return nil }
        var s = AuthorizationPolicy.Source()
        let principals = values(fields, "principals"), notPrincipals = values(fields, "notPrincipals")
        let namespaces = values(fields, "namespaces"), notNamespaces = values(fields, "notNamespaces")
        let serviceAccounts = values(fields, "serviceAccounts"), notServiceAccounts = values(fields, "notServiceAccounts")
        let trustDomains = values(fields, "trustDomains"), notTrustDomains = values(fields, "notTrustDomains")
        s.principals = principals.map(\.value)
        s.notPrincipals = notPrincipals.map(\.value)
        s.requestPrincipals = values(fields, "requestPrincipals").map(\.value)
        s.notRequestPrincipals = values(fields, "notRequestPrincipals").map(\.value)
        s.namespaces = namespaces.map(\.value)
        s.notNamespaces = notNamespaces.map(\.value)
        s.serviceAccounts = serviceAccounts.map(\.value)
        s.notServiceAccounts = notServiceAccounts.map(\.value)
        s.trustDomains = trustDomains.map(\.value)
        s.notTrustDomains = notTrustDomains.map(\.value)
        s.ipBlocks = ipBlocks(values(fields, "ipBlocks"))
        s.notIpBlocks = ipBlocks(values(fields, "notIpBlocks"))
        s.remoteIpBlocks = ipBlocks(values(fields, "remoteIpBlocks"))
        s.notRemoteIpBlocks = ipBlocks(values(fields, "notRemoteIpBlocks"))
        serviceAccountValues(serviceAccounts)
        serviceAccountValues(notServiceAccounts)
        trustDomainValues(trustDomains)
        trustDomainValues(notTrustDomains)

        if fields.entries.allSatisfy({ entry in (fields[entry.key].flatMap { decoder.sequenceCount($0) } ?? 0) == 0 }) {
            decoder.invalid("`source` must not be empty; remove the `from` entry to match any source", at: sourceNode, sourcePath)
        }
        if !(principals + notPrincipals + namespaces + notNamespaces).isEmpty, !(serviceAccounts + notServiceAccounts).isEmpty {
            decoder.invalid("cannot set `serviceAccounts` with `namespaces` or `principals`", at: sourceNode, sourcePath)
        }
        if action == .custom {
            for key in [
                "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces", "notNamespaces",
                "serviceAccounts", "notServiceAccounts", "trustDomains", "notTrustDomains",
            ] where (fields[key].flatMap { decoder.sequenceCount($0) } ?? 0) > 0 {
                decoder.report(
                    Diagnostic.Code.unsupported, "`\(key)` is not supported with the CUSTOM action",
                    span: fields[key]!.span, path: fields.path(key))
            }
        }
        return s
    }

    func operation(_ node: DocumentNode, at path: FieldPath) -> AuthorizationPolicy.Operation? {
        guard let entry = decoder.fields(node, at: path, known: ["operation"]) else { return nil }
        guard let operationNode = entry["operation"] else {
            decoder.report(Diagnostic.Code.missingField, "`to` entries need an `operation`", span: node.span, path: path)
            return nil
        }
        let operationPath = path / "operation"
        guard let fields = decoder.fields(operationNode, at: operationPath, known: Self.operationFields) else { return nil }
        var o = AuthorizationPolicy.Operation()
        o.hosts = values(fields, "hosts").map(\.value)
        o.notHosts = values(fields, "notHosts").map(\.value)
        o.ports = ports(values(fields, "ports"))
        o.notPorts = ports(values(fields, "notPorts"))
        o.methods = values(fields, "methods").map(\.value)
        o.notMethods = values(fields, "notMethods").map(\.value)
        o.paths = paths(values(fields, "paths"))
        o.notPaths = paths(values(fields, "notPaths"))
        if fields.entries.allSatisfy({ entry in (fields[entry.key].flatMap { decoder.sequenceCount($0) } ?? 0) == 0 }) {
            decoder.invalid("`operation` must not be empty; remove the `to` entry to match any operation", at: operationNode, operationPath)
        }
        return o
    }

    func condition(_ node: DocumentNode, at path: FieldPath) -> AuthorizationPolicy.Condition? {
        guard let fields = decoder.fields(node, at: path, known: ["key", "values", "notValues"]) else { return nil }
        guard let keyNode = fields["key"], let key = decoder.string(keyNode, at: fields.path("key")) else {
            if fields["key"] == nil {
                decoder.report(Diagnostic.Code.missingField, "a condition needs a `key`", span: node.span, path: path)
            }
            return nil
        }
        guard !key.value.isEmpty else {
            decoder.invalid("`key` must not be empty", at: key)
            return nil
        }
        let values = fields["values"].flatMap { decoder.strings($0, at: fields.path("values")) } ?? []
        let notValues = fields["notValues"].flatMap { decoder.strings($0, at: fields.path("notValues")) } ?? []
        for v in values + notValues where v.value.isEmpty { decoder.invalid("empty value not allowed", at: v) }
        if values.isEmpty && notValues.isEmpty {
            decoder.invalid("at least one of `values` or `notValues` must be set for key `\(key.value)`", at: node, path)
        }
        switch Attribute.parse(whenKey: key.value) {
        case .failure(let error):
            decoder.invalid(error.message, at: key)
        case .success(let attribute):
            switch attribute {
            case .sourceIP, .remoteIP, .destinationIP:
                _ = ipBlocks(values)
                _ = ipBlocks(notValues)
            case .destinationPort:
                _ = ports(values)
                _ = ports(notValues)
            case .sourceServiceAccount:
                serviceAccountValues(values)
                serviceAccountValues(notValues)
            case .sourceTrustDomain:
                trustDomainValues(values, allowSlash: true)
                trustDomainValues(notValues, allowSlash: true)
            case .envoyMetadata:
                decoder.warn(
                    Diagnostic.Code.envoyMetadataUnavailable,
                    "`\(key.value)` reads Envoy dynamic metadata, which Warden does not receive: its `values` never match and its `notValues` always match",
                    at: key)
            default: break
            }
            if action == .custom {
                switch attribute {
                case .sourceNamespace, .sourcePrincipal, .sourceServiceAccount, .sourceTrustDomain, .requestPrincipal,
                    .requestAudiences, .requestPresenter, .requestClaim:
                    decoder.report(
                        Diagnostic.Code.unsupported, "`\(key.value)` is not supported with the CUSTOM action",
                        span: key.span, path: key.path)
                default: break
                }
            }
        }
        return AuthorizationPolicy.Condition(key: key.value, values: values.map(\.value), notValues: notValues.map(\.value))
    }

    // MARK: - Value checks

    func ipBlocks(_ values: [Located<String>]) -> [String] {
        for v in values where !v.value.isEmpty && CIDR(v.value) == nil {
            decoder.invalid(v.value.contains("/") ? "invalid CIDR \"\(v.value)\"" : "invalid IP address \"\(v.value)\"", at: v)
        }
        return values.map(\.value)
    }

    func ports(_ values: [Located<String>]) -> [String] {
        for v in values where !v.value.isEmpty {
            if !v.value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) || (Int(v.value) ?? 70000) > 65535 {
                decoder.invalid("invalid port \"\(v.value)\": expected a number from 0 to 65535", at: v)
            }
        }
        return values.map(\.value)
    }

    func paths(_ values: [Located<String>]) -> [String] {
        for v in values {
            if let error = PathTemplate.validate(v.value) { decoder.invalid(error.message, at: v) }
        }
        return values.map(\.value)
    }

    func serviceAccountValues(_ values: [Located<String>]) {
        if values.count > 16 {
            decoder.invalid("may not have more than 16 service accounts", at: values[16])
        }
        for v in values where !v.value.isEmpty {
            let parts = v.value.split(separator: "/", omittingEmptySubsequences: false)
            if v.value.contains("*") {
                decoder.invalid("wildcard not allowed in a service account: \"\(v.value)\"", at: v)
            } else if parts.count > 2 || parts.contains(where: \.isEmpty) {
                decoder.invalid("expected `serviceAccount` or `namespace/serviceAccount`, found \"\(v.value)\"", at: v)
            } else if v.value.count > 320 {
                decoder.invalid("a service account cannot exceed 320 characters", at: v)
            }
        }
    }

    /// `trustDomains` values refuse `/`; `source.trustDomain` condition values take it (Istio checks only their
    /// wildcards) and then match the start of the peer's principal, as Istio's generated matcher does.
    func trustDomainValues(_ values: [Located<String>], allowSlash: Bool = false) {
        for v in values where !v.value.isEmpty {
            let stars = v.value.filter { $0 == "*" }.count
            if stars > 1 {
                decoder.invalid("at most one wildcard is allowed: \"\(v.value)\"", at: v)
            } else if stars == 1, v.value != "*", !v.value.hasPrefix("*"), !v.value.hasSuffix("*") {
                decoder.invalid("a wildcard is only allowed at the start or end: \"\(v.value)\"", at: v)
            } else if v.value.contains("/") {
                if allowSlash {
                    decoder.warn(
                        Diagnostic.Code.trustDomainWithPath,
                        "`\(v.value)` holds `/`: it matches peers whose principal starts with `\(v.value)/`, not a trust domain",
                        at: v)
                } else {
                    decoder.invalid("a trust domain must not contain `/`: \"\(v.value)\"", at: v)
                }
            }
        }
    }
}

extension Diagnostic.Code {
    /// A DENY rule with only HTTP attributes, which Istio accepts with a warning: on TCP ports it denies everything.
    public static let httpOnlyDenyRule = "http_only_deny_rule"
    /// `from: []` or `to: []`: Istio decodes an empty list as an absent one.
    public static let emptyListIgnored = "empty_list_ignored"
    /// An `experimental.envoy.filters.*` condition: Envoy metadata never reaches Warden.
    public static let envoyMetadataUnavailable = "envoy_metadata_unavailable"
    /// A `source.trustDomain` condition value with `/`, which matches a principal prefix.
    public static let trustDomainWithPath = "trust_domain_with_path"
}

extension AuthorizationPolicy.Rule {
    /// Istio's test for its TCP warning on DENY rules: the rule has sources but none with a field a TCP
    /// connection has (principals, namespaces, service accounts, IP blocks; trust domains and request principals
    /// do not count) and no operations, or it has operations none of which names `ports`. `when` is not looked at.
    var usesOnlyHTTPAttributes: Bool {
        let sources = from ?? [], operations = to ?? []
        let tcpSource = sources.contains { s in
            !(s.principals + s.notPrincipals + s.namespaces + s.notNamespaces + s.serviceAccounts + s.notServiceAccounts
                + s.ipBlocks + s.notIpBlocks + s.remoteIpBlocks + s.notRemoteIpBlocks).isEmpty
        }
        let tcpOperation = operations.contains { !($0.ports + $0.notPorts).isEmpty }
        return (!sources.isEmpty && operations.isEmpty && !tcpSource) || (!operations.isEmpty && !tcpOperation)
    }
}

extension DocumentDecoder {
    /// The number of items of a sequence node (0 for null), without reporting anything.
    func sequenceCount(_ node: DocumentNode) -> Int? {
        switch node.content {
        case .sequence(let items): items.count
        case .scalar(let s) where s.kind == .null: 0
        default: 1
        }
    }
}

/// Go's `strconv.ParseBool`, which Istio uses for its boolean annotations.
func parseGoBool(_ text: String) -> Bool? {
    switch text {
    case "1", "t", "T", "TRUE", "true", "True": true
    case "0", "f", "F", "FALSE", "false", "False": false
    default: nil
    }
}

