import PolicyCore

/// One compiled field of a rule: an attribute, how its values match, and whether it came from a `not…` field or
/// `notValues` (then it matches when none of the values match, including when the attribute is absent).
struct Predicate: Sendable {
    enum Matcher: Sendable {
        /// Envoy string matchers (`*` needs a non-empty value): principals, paths, SNI, presenter.
        case strings(StringMatchSet)
        /// Envoy header matchers (`*` needs only presence): headers, method, host (lowercased).
        case header(StringMatchSet)
        case paths(StringMatchSet, templates: [PathTemplate])
        case ips(IPSet)
        case ports(Set<Int>)
        case namespaces([NamespacePattern])
        case serviceAccounts([ServiceAccountRef])
        case trustDomains([StringPattern])
        case requestPrincipals([(issuer: StringPattern, subject: StringPattern)])
        /// A claim that is a string, or a list holding a matching string.
        case claim(path: [String], StringMatchSet)
        case audiences(StringMatchSet)
        /// Envoy metadata Warden never receives.
        case never
    }

    let attribute: Attribute
    let matcher: Matcher
    let negated: Bool
    /// Where the field is in the policy (`spec.rules[0].from[0].source.principals`).
    let field: FieldPath
    let values: [String]

    @inline(__always)
    func matches(_ view: RequestView) -> Bool {
        positiveMatch(view) != negated
    }

    private func positiveMatch(_ view: RequestView) -> Bool {
        let request = view.request
        switch matcher {
        case .strings(let set):
            guard let value = view.string(attribute) else { return false }
            return set.matches(value)
        case .header(let set):
            guard let value = view.string(attribute) else { return false }
            return set.presence || set.matches(value)
        case .paths(let set, let templates):
            guard let path = request.http.path else { return false }
            if set.matches(path) { return true }
            for t in templates where t.matches(path) { return true }
            return false
        case .ips(let set):
            let ip: IPAddress?
            switch attribute {
            case .sourceIP: ip = request.source.ip
            case .remoteIP: ip = request.remoteIP
            default: ip = request.destination.ip
            }
            guard let ip else { return false }
            return set.contains(ip)
        case .ports(let ports):
            guard let port = request.destination.port else { return false }
            return ports.contains(port)
        case .namespaces(let patterns):
            guard let ns = request.source.namespace else { return false }
            return patterns.contains { $0.matches(ns) }
        case .serviceAccounts(let refs):
            guard let identity = request.source.identity, let ns = identity.namespace, let sa = identity.serviceAccount
            else { return false }
            return refs.contains { $0.namespace == ns && $0.name == sa }
        case .trustDomains(let patterns):
            guard let identity = request.source.identity else { return false }
            return patterns.contains { $0 == .presence || $0.matches(identity.trustDomain) }
        case .requestPrincipals(let patterns):
            guard let (issuer, subject) = view.issuerSubject else { return false }
            return patterns.contains { $0.issuer.matches(issuer) && $0.subject.matches(subject) }
        case .claim(let path, let set):
            guard var value = request.auth?.claims else { return false }
            for key in path {
                guard let next = value[key] else { return false }
                value = next
            }
            return Self.anyString(value, set)
        case .audiences(let set):
            guard let auth = request.auth else { return false }
            if !auth.audiences.isEmpty { return auth.audiences.contains { set.matches($0) } }
            return auth.claims["aud"].map { Self.anyString($0, set) } ?? false
        case .never:
            return false
        }
    }

    private static func anyString(_ value: Value, _ set: StringMatchSet) -> Bool {
        switch value {
        case .string(let s): set.matches(s)
        case .array(let items): items.contains { if case .string(let s) = $0 { set.matches(s) } else { false } }
        default: false
        }
    }
}

/// An Istio namespace value: `*` may stand anywhere for any run of characters.
struct NamespacePattern: Sendable, Hashable {
    let parts: [String]

    init(_ value: String) { parts = value.split(separator: "*", omittingEmptySubsequences: false).map(String.init) }

    func matches(_ namespace: String) -> Bool {
        if parts.count == 1 { return bytesEqual(namespace, parts[0]) }
        let head = parts[0], tail = parts[parts.count - 1]
        guard namespace.utf8.count >= head.utf8.count + tail.utf8.count,
            hasPrefixBytes(namespace, head), hasSuffixBytes(namespace, tail)
        else { return false }
        var bytes = Array(namespace.utf8)
        bytes.removeFirst(head.utf8.count)
        bytes.removeLast(tail.utf8.count)
        for middle in parts.dropFirst().dropLast() where !middle.isEmpty {
            let m = Array(middle.utf8)
            guard let at = firstIndex(of: m, in: bytes) else { return false }
            bytes.removeFirst(at + m.count)
        }
        return true
    }

    private func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}

/// `serviceAccounts` value: `name` in the policy's namespace, or `namespace/name`.
struct ServiceAccountRef: Sendable, Hashable {
    let namespace: String
    let name: String
}

/// The request, with the derived values several predicates read computed once.
struct RequestView {
    let request: AuthzRequest
    /// `request.host`, ASCII-lowercased for case-insensitive host matching.
    let host: String?
    let issuerSubject: (issuer: String, subject: String)?

    init(_ request: AuthzRequest) {
        self.request = request
        host = request.http.host?.asciiLowercased()
        issuerSubject = request.auth?.issuerAndSubject
    }

    /// The value of a string-valued attribute.
    @inline(__always)
    func string(_ attribute: Attribute) -> String? {
        switch attribute {
        case .sourcePrincipal: request.source.principal
        case .sourceNamespace: request.source.namespace
        case .requestHeader(let name): request.http.headers.value(lowercased: name)
        case .host: host
        case .method: request.http.method
        case .path: request.http.path
        case .connectionSNI: request.connectionSNI
        case .requestPresenter: request.auth.flatMap { $0.presenter ?? $0.claims["azp"]?.stringValue }
        case .requestPrincipal: request.auth?.principal
        default: nil
        }
    }
}

// MARK: - Compiling fields into predicates

extension Predicate {
    /// Compiles one field. Values that cannot be compiled (possible only for policies built in code, since decoding
    /// validates them) are reported through `invalid`.
    static func make(
        _ attribute: Attribute,
        values: [String],
        negated: Bool,
        field: FieldPath,
        policyNamespace: String,
        invalid: (String) -> Void
    ) -> Predicate {
        let matcher: Matcher
        switch attribute {
        case .sourcePrincipal, .connectionSNI, .requestPresenter:
            matcher = .strings(StringMatchSet(values))
        case .requestHeader, .method:
            matcher = .header(StringMatchSet(values))
        case .host:
            matcher = .header(StringMatchSet(values, ignoreCase: true))
        case .path:
            var plain: [String] = [], templates: [PathTemplate] = []
            for v in values {
                if PathTemplate.containsTemplate(v) {
                    switch PathTemplate.parse(v) {
                    case .success(let t): templates.append(t)
                    case .failure(let error): invalid(error.message)
                    }
                } else {
                    plain.append(v)
                }
            }
            matcher = .paths(StringMatchSet(plain), templates: templates)
        case .sourceIP, .remoteIP, .destinationIP:
            var blocks: [CIDR] = []
            for v in values {
                if let block = CIDR(v) { blocks.append(block) } else { invalid("invalid IP address or CIDR \"\(v)\"") }
            }
            matcher = .ips(IPSet(blocks))
        case .destinationPort:
            var ports: Set<Int> = []
            for v in values {
                if let p = Int(v), (0...65535).contains(p) { ports.insert(p) } else { invalid("invalid port \"\(v)\"") }
            }
            matcher = .ports(ports)
        case .sourceNamespace:
            matcher = .namespaces(values.map(NamespacePattern.init))
        case .sourceServiceAccount:
            matcher = .serviceAccounts(values.map { v in
                if let slash = v.firstIndex(of: "/") {
                    return ServiceAccountRef(namespace: String(v[..<slash]), name: String(v[v.index(after: slash)...]))
                }
                return ServiceAccountRef(namespace: policyNamespace, name: v)
            })
        case .sourceTrustDomain:
            matcher = .trustDomains(values.map(StringPattern.init))
        case .requestPrincipal:
            matcher = .requestPrincipals(values.map(requestPrincipalPattern))
        case .requestAudiences:
            matcher = .audiences(StringMatchSet(values))
        case .requestClaim(let path):
            matcher = .claim(path: path, StringMatchSet(values))
        case .envoyMetadata:
            matcher = .never
        }
        return Predicate(attribute: attribute, matcher: matcher, negated: negated, field: field, values: values)
    }

    /// Istio splits a request principal value at its last `/` into issuer and subject and matches each part:
    /// `*` alone matches any; a leading `*` makes the issuer (or, without `/`, the subject) a suffix; a trailing
    /// `*` makes the subject (or, without `/`, the issuer) a prefix.
    static func requestPrincipalPattern(_ value: String) -> (issuer: StringPattern, subject: StringPattern) {
        let slash = value.lastIndex(of: "/")
        let issuer = slash.map { String(value[..<$0]) } ?? value
        let subject = slash.map { String(value[value.index(after: $0)...]) } ?? ""
        if value == "*" { return (.presence, .presence) }
        if value.hasPrefix("*") {
            guard slash != nil else { return (.presence, .suffix(String(value.dropFirst()))) }
            return (issuer == "*" ? .presence : .suffix(String(issuer.dropFirst())), .exact(subject))
        }
        if value.hasSuffix("*") {
            guard slash != nil else { return (.prefix(String(value.dropLast())), .presence) }
            return (.exact(issuer), subject == "*" ? .presence : .prefix(String(subject.dropLast())))
        }
        return (.exact(issuer), .exact(subject))
    }
}
