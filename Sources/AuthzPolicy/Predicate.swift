import PolicyCore

/// One compiled field of a rule: an attribute and how its values match. A predicate from a `not…` field or from
/// `notValues` is negated: it matches when none of the values match, including when the attribute is absent.
///
/// Predicates are immutable reference types, one subclass per kind of matcher, so evaluating a rule reads them in
/// place instead of copying their tables.
class Predicate: @unchecked Sendable {
    let attribute: Attribute
    let negated: Bool
    /// Where the field is in the policy (`spec.rules[0].from[0].source.principals`).
    let field: FieldPath
    let values: [String]

    init(_ attribute: Attribute, negated: Bool, field: FieldPath, values: [String]) {
        self.attribute = attribute
        self.negated = negated
        self.field = field
        self.values = values
    }

    @inline(__always)
    final func matches(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        positiveMatch(request, view) != negated
    }

    /// Whether any value matches (before negation); absent attributes never match.
    func positiveMatch(_ request: AuthzRequest, _ view: RequestView) -> Bool { false }

}

/// Envoy string and header matchers over a string attribute. For header matchers (headers, method, host) `*`
/// needs only presence; for string matchers (principal, SNI, presenter, path) it needs a non-empty value.
final class StringPredicate: Predicate, @unchecked Sendable {
    // The flags before the table: a match reads them first, in the same cache line as the attribute.
    let presenceIsEnough: Bool
    /// The host is read from the view's lowercased bytes.
    let isHost: Bool
    let table: StringMatchSet

    init(_ attribute: Attribute, _ table: StringMatchSet, header: Bool, negated: Bool, field: FieldPath, values: [String]) {
        self.table = table
        presenceIsEnough = header && table.presence
        isHost = attribute == .host
        super.init(attribute, negated: negated, field: field, values: values)
    }

    override func positiveMatch(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        if isHost {
            return RequestView.withHostBytes(request) { host in presenceIsEnough || table.matches(bytes: host) } ?? false
        }
        return RequestView.withStringBytes(attribute, request) { presenceIsEnough || table.matches(bytes: $0) } ?? false
    }

}

final class PathPredicate: Predicate, @unchecked Sendable {
    let table: StringMatchSet
    let templates: [PathTemplate]

    init(_ table: StringMatchSet, templates: [PathTemplate], negated: Bool, field: FieldPath, values: [String]) {
        self.table = table
        self.templates = templates
        super.init(.path, negated: negated, field: field, values: values)
    }

    override func positiveMatch(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        guard let path = request.http.path else { return false }
        if table.matches(path) { return true }
        for i in templates.indices where templates[i].matches(path) { return true }
        return false
    }

}

final class IPPredicate: Predicate, @unchecked Sendable {
    let table: IPSet

    init(_ attribute: Attribute, _ table: IPSet, negated: Bool, field: FieldPath, values: [String]) {
        self.table = table
        super.init(attribute, negated: negated, field: field, values: values)
    }

    override func positiveMatch(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        let ip: IPAddress?
        switch attribute {
        case .sourceIP: ip = request.source.ip
        case .remoteIP: ip = request.remoteIP
        default: ip = request.destination.ip
        }
        guard let ip else { return false }
        return table.contains(ip)
    }
}

final class PortPredicate: Predicate, @unchecked Sendable {
    /// Sorted and distinct: a few are scanned, more are searched.
    let ports: [Int]

    init(_ ports: Set<Int>, negated: Bool, field: FieldPath, values: [String]) {
        self.ports = ports.sorted()
        super.init(.destinationPort, negated: negated, field: field, values: values)
    }

    override func positiveMatch(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        guard let port = request.destination.port else { return false }
        if ports.count <= 8 { return ports.contains(port) }
        var low = 0, high = ports.count
        while low < high {
            let mid = (low + high) / 2
            if ports[mid] < port { low = mid + 1 } else { high = mid }
        }
        return low < ports.count && ports[low] == port
    }

}

final class NamespacePredicate: Predicate, @unchecked Sendable {
    let patterns: [NamespacePattern]

    init(_ patterns: [NamespacePattern], negated: Bool, field: FieldPath, values: [String]) {
        self.patterns = patterns
        super.init(.sourceNamespace, negated: negated, field: field, values: values)
    }

    override func positiveMatch(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        // Not `guard let`: binding the namespace copies it.
        guard request.source.namespace != nil else { return false }
        for i in patterns.indices where patterns[i].matches(request.source.namespace!) { return true }
        return false
    }

}

final class ServiceAccountPredicate: Predicate, @unchecked Sendable {
    let refs: [ServiceAccountRef]

    init(_ refs: [ServiceAccountRef], negated: Bool, field: FieldPath, values: [String]) {
        self.refs = refs
        super.init(.sourceServiceAccount, negated: negated, field: field, values: values)
    }

    override func positiveMatch(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        guard let identity = request.source.identity, let ns = identity.namespace, let sa = identity.serviceAccount
        else { return false }
        return refs.contains { $0.namespace == ns && $0.name == sa }
    }
}

/// Trust domains: `*` matches any peer identity; otherwise exact, prefix or suffix within the trust domain. A
/// `source.trustDomain` condition value holding `/` matches the start of the principal instead
/// (`PrincipalPathPattern`).
final class TrustDomainPredicate: Predicate, @unchecked Sendable {
    let patterns: [StringPattern]
    let principalPatterns: [PrincipalPathPattern]

    init(_ values: [String], negated: Bool, field: FieldPath) {
        patterns = values.filter { !$0.contains("/") }.map(StringPattern.init)
        principalPatterns = values.filter { $0.contains("/") }.map(PrincipalPathPattern.init)
        super.init(.sourceTrustDomain, negated: negated, field: field, values: values)
    }

    override func positiveMatch(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        guard let identity = request.source.identity else { return false }
        if patterns.contains(where: { $0 == .presence || $0.matches(identity.trustDomain) }) { return true }
        guard !principalPatterns.isEmpty, let principal = request.source.principal else { return false }
        return principalPatterns.contains { $0.matches(principal) }
    }
}

/// Istio's matcher for a trust domain value: the principal (without `spiffe://`) must match `VALUE/.*`, where a
/// `*` in the value stands for characters other than `/`. For a value without `/` this is the trust domain match;
/// with `/` (which Istio allows in `source.trustDomain` conditions) it reaches into the principal's path.
struct PrincipalPathPattern: Sendable, Hashable {
    let head: [UInt8]
    /// The text after the `*`, then `/`; nil when the value has no `*`.
    let tail: [UInt8]?

    init(_ value: String) {
        if let star = value.firstIndex(of: "*") {
            head = Array(value[..<star].utf8)
            tail = Array(value[value.index(after: star)...].utf8) + [UInt8(ascii: "/")]
        } else {
            head = Array(value.utf8) + [UInt8(ascii: "/")]
            tail = nil
        }
    }

    func matches(_ principal: String) -> Bool {
        withBytes(principal) { p in
            head.withUnsafeBufferPointer { head in
                guard hasPrefix(p, head) else { return false }
                guard let tail else { return true }
                return tail.withUnsafeBufferPointer { tail in
                    var i = head.count
                    while true {
                        if hasPrefix(UnsafeBufferPointer(rebasing: p[i...]), tail) { return true }
                        guard i < p.count, p[i] != UInt8(ascii: "/") else { return false }
                        i += 1
                    }
                }
            }
        }
    }
}

final class RequestPrincipalPredicate: Predicate, @unchecked Sendable {
    let patterns: [(issuer: StringPattern, subject: StringPattern)]

    init(_ patterns: [(issuer: StringPattern, subject: StringPattern)], negated: Bool, field: FieldPath, values: [String]) {
        self.patterns = patterns
        super.init(.requestPrincipal, negated: negated, field: field, values: values)
    }

    override func positiveMatch(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        // Field by field: binding `request.auth` itself would copy the whole credential.
        guard let issuer = request.auth?.issuer, let subject = request.auth?.subject else { return false }
        for i in patterns.indices where patterns[i].issuer.matches(issuer) && patterns[i].subject.matches(subject) {
            return true
        }
        return false
    }
}

/// A claim (or the audiences) that is a string, or a list holding a matching string.
final class ClaimPredicate: Predicate, @unchecked Sendable {
    let path: [String]
    let table: StringMatchSet

    init(_ attribute: Attribute, path: [String], _ table: StringMatchSet, negated: Bool, field: FieldPath, values: [String]) {
        self.path = path
        self.table = table
        super.init(attribute, negated: negated, field: field, values: values)
    }

    override func positiveMatch(_ request: AuthzRequest, _ view: RequestView) -> Bool {
        // Field by field: binding `request.auth` itself would copy the whole credential.
        guard let claims = request.auth?.claims else { return false }
        if attribute == .requestAudiences, let audiences = request.auth?.audiences, !audiences.isEmpty {
            for i in audiences.indices where table.matches(audiences[i]) { return true }
            return false
        }
        var value = claims
        for key in path {
            guard let next = value[key] else { return false }
            value = next
        }
        switch value {
        case .string(let s): return table.matches(s)
        case .array(let items): return items.contains { if case .string(let s) = $0 { table.matches(s) } else { false } }
        default: return false
        }
    }
}

/// Envoy metadata, which Warden never receives: no value ever matches.
final class NeverPredicate: Predicate, @unchecked Sendable {}

/// An Istio namespace value: `*` may stand anywhere for any run of characters.
struct NamespacePattern: Sendable, Hashable {
    let parts: [String]

    init(_ value: String) { parts = value.split(separator: "*", omittingEmptySubsequences: false).map(String.init) }

    func matches(_ namespace: String) -> Bool {
        if parts.count == 1 { return bytesEqual(namespace, parts[0]) }
        let head = parts[0], tail = parts[parts.count - 1]
        return withBytes(namespace) { ns in
            guard ns.count >= head.utf8.count + tail.utf8.count,
                withBytes(head, { hasPrefix(ns, $0) }), withBytes(tail, { hasSuffix(ns, $0) })
            else { return false }
            var rest = UnsafeBufferPointer(rebasing: ns[head.utf8.count..<(ns.count - tail.utf8.count)])
            for middle in parts.dropFirst().dropLast() where !middle.isEmpty {
                guard let end = withBytes(middle, { Self.end(of: $0, in: rest) }) else { return false }
                rest = UnsafeBufferPointer(rebasing: rest[end...])
            }
            return true
        }
    }

    /// Where the first occurrence of `needle` in `haystack` ends.
    private static func end(of needle: UnsafeBufferPointer<UInt8>, in haystack: UnsafeBufferPointer<UInt8>) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        for i in haystack.startIndex...(haystack.endIndex - needle.count)
        where bytesEqual(UnsafeBufferPointer(rebasing: haystack[i..<(i + needle.count)]), needle) {
            return i + needle.count
        }
        return nil
    }
}

/// `serviceAccounts` value: `name` in the policy's namespace, or `namespace/name`.
struct ServiceAccountRef: Sendable, Hashable {
    let namespace: String
    let name: String
}

/// Values derived from the request once per decision (none at present: the host is lowercased only where a rule
/// reads it, by `withHostBytes`). The request itself is passed alongside, never copied.
struct RequestView {
    /// The request's host as bytes, ASCII-lowercased for case-insensitive host matching (into a temporary buffer,
    /// on the stack when short, when it has capital letters); nil without a host.
    @inline(__always)
    static func withHostBytes<R>(_ request: AuthzRequest, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard let host = request.http.host else { return nil }
        return withBytes(host) { bytes in
            guard containsASCIIUppercase(bytes) else { return body(bytes) }
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes.count) { lowered in
                for i in bytes.indices { lowered[i] = bytes[i] &- 65 < 26 ? bytes[i] + 32 : bytes[i] }
                return body(UnsafeBufferPointer(lowered))
            }
        }
    }

    /// Runs `body` over the bytes of a string-valued attribute other than the host, read in place (binding the
    /// value, as `string` does, copies it: a retain and a release per predicate); nil when the attribute is absent.
    @inline(__always)
    static func withStringBytes<R>(
        _ attribute: Attribute, _ request: AuthzRequest, _ body: (UnsafeBufferPointer<UInt8>) -> R
    ) -> R? {
        switch attribute {
        case .sourcePrincipal: request.source.principal == nil ? nil : withBytes(request.source.principal!, body)
        case .sourceNamespace: request.source.namespace == nil ? nil : withBytes(request.source.namespace!, body)
        case .method: request.http.method == nil ? nil : withBytes(request.http.method!, body)
        case .path: request.http.path == nil ? nil : withBytes(request.http.path!, body)
        case .connectionSNI: request.connectionSNI == nil ? nil : withBytes(request.connectionSNI!, body)
        case .requestPrincipal: request.auth?.principal.map { withBytes($0, body) }
        default: RequestView().string(attribute, request).map { withBytes($0, body) }
        }
    }

    /// The value of a string-valued attribute (the host lowercased, as rules match it).
    @inline(__always)
    func string(_ attribute: Attribute, _ request: AuthzRequest) -> String? {
        switch attribute {
        case .sourcePrincipal: request.source.principal
        case .sourceNamespace: request.source.namespace
        case .requestHeader(let name): request.http.headers.value(lowercased: name)
        case .host: Self.withHostBytes(request) { String(decoding: $0, as: UTF8.self) }
        case .method: request.http.method
        case .path: request.http.path
        case .connectionSNI: request.connectionSNI
        case .requestPresenter: request.auth?.presenter ?? request.auth?.claims["azp"]?.stringValue
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
        switch attribute {
        case .sourcePrincipal, .connectionSNI, .requestPresenter:
            return StringPredicate(attribute, StringMatchSet(values), header: false, negated: negated, field: field, values: values)
        case .requestHeader, .method:
            return StringPredicate(attribute, StringMatchSet(values), header: true, negated: negated, field: field, values: values)
        case .host:
            return StringPredicate(
                attribute, StringMatchSet(values, ignoreCase: true), header: true, negated: negated, field: field, values: values)
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
            return PathPredicate(StringMatchSet(plain), templates: templates, negated: negated, field: field, values: values)
        case .sourceIP, .remoteIP, .destinationIP:
            var blocks: [CIDR] = []
            for v in values {
                if let block = CIDR(v) { blocks.append(block) } else { invalid("invalid IP address or CIDR \"\(v)\"") }
            }
            return IPPredicate(attribute, IPSet(blocks), negated: negated, field: field, values: values)
        case .destinationPort:
            var ports: Set<Int> = []
            for v in values {
                if let p = Int(v), (0...65535).contains(p) { ports.insert(p) } else { invalid("invalid port \"\(v)\"") }
            }
            return PortPredicate(ports, negated: negated, field: field, values: values)
        case .sourceNamespace:
            return NamespacePredicate(values.map(NamespacePattern.init), negated: negated, field: field, values: values)
        case .sourceServiceAccount:
            let refs = values.map { v in
                if let slash = v.firstIndex(of: "/") {
                    return ServiceAccountRef(namespace: String(v[..<slash]), name: String(v[v.index(after: slash)...]))
                }
                return ServiceAccountRef(namespace: policyNamespace, name: v)
            }
            return ServiceAccountPredicate(refs, negated: negated, field: field, values: values)
        case .sourceTrustDomain:
            return TrustDomainPredicate(values, negated: negated, field: field)
        case .requestPrincipal:
            return RequestPrincipalPredicate(values.map(requestPrincipalPattern), negated: negated, field: field, values: values)
        case .requestAudiences:
            return ClaimPredicate(attribute, path: ["aud"], StringMatchSet(values), negated: negated, field: field, values: values)
        case .requestClaim(let path):
            return ClaimPredicate(attribute, path: path, StringMatchSet(values), negated: negated, field: field, values: values)
        case .envoyMetadata:
            return NeverPredicate(attribute, negated: negated, field: field, values: values)
        }
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
