/// A SPIFFE ID (`spiffe://trust-domain/path`), validated as the SPIFFE standard defines it: a trust domain of
/// lowercase letters, digits, `.`, `-` and `_`; a path of non-empty segments of letters, digits, `.`, `-` and `_`,
/// none of them `.` or `..`, with no trailing slash; at most 2,048 bytes in all.
///
/// Istio writes a peer's identity without the scheme (`source.principal` is `cluster.local/ns/default/sa/sleep`);
/// `principal` and `uri` are the two spellings, and this type is the only place the scheme is added or removed.
public struct SPIFFEID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let scheme = "spiffe://"
    public static let maximumLength = 2048

    public let trustDomain: String
    /// Empty (the trust domain's own ID) or `/segment/...`.
    public let path: String
    /// The segment after the first `ns` segment that has more path behind it, as Istio's matchers read it
    /// (`.*/ns/<namespace>/.*`); for `cluster.local/ns/default/sa/sleep`, `default`.
    public let namespace: String?
    /// The segment after the first `sa` segment behind the namespace: `sleep` above.
    public let serviceAccount: String?

    /// Why a text is not a SPIFFE ID.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }

        public init(message: String) {
            self.message = message
        }
    }

    /// Parses a SPIFFE ID written with its scheme: `spiffe://cluster.local/ns/default/sa/sleep`.
    public init(parsing uri: String) throws(ParseError) {
        guard uri.utf8.starts(with: Self.scheme.utf8) else {
            throw ParseError(message: "`\(uri)` is not a SPIFFE ID: it must start with `spiffe://`")
        }
        try self.init(principal: String(uri.utf8.dropFirst(Self.scheme.utf8.count))!, original: uri)
    }

    /// Parses a SPIFFE ID written as Istio writes principals, without the scheme: `cluster.local/ns/default/sa/sleep`.
    public init(principal: String) throws(ParseError) {
        try self.init(principal: principal, original: principal)
    }

    /// Parses either spelling: with the scheme, or as a principal.
    public init(principalOrURI text: String) throws(ParseError) {
        if text.utf8.starts(with: Self.scheme.utf8) {
            try self.init(parsing: text)
        } else {
            try self.init(principal: text)
        }
    }

    /// Kubernetes' form, `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
    public init(trustDomain: String, namespace: String, serviceAccount: String) throws(ParseError) {
        try self.init(principal: "\(trustDomain)/ns/\(namespace)/sa/\(serviceAccount)")
    }

    private init(principal: String, original: String) throws(ParseError) {
        func invalid(_ why: String) -> ParseError { ParseError(message: "`\(original)` is not a SPIFFE ID: \(why)") }
        let bytes = principal.utf8
        guard bytes.count + Self.scheme.utf8.count <= Self.maximumLength else {
            throw invalid("longer than \(Self.maximumLength) bytes")
        }
        let slash = UInt8(ascii: "/")
        let domainEnd = bytes.firstIndex(of: slash) ?? bytes.endIndex
        guard domainEnd != bytes.startIndex else { throw invalid("the trust domain is empty") }
        for byte in bytes[..<domainEnd] where !Self.isTrustDomainByte(byte) {
            throw invalid("the trust domain may hold only lowercase letters, digits, `.`, `-` and `_`")
        }
        trustDomain = String(principal[..<domainEnd])
        path = String(principal[domainEnd...])

        var namespace: String?, serviceAccount: String?
        enum Looking { case ns, namespace, sa, serviceAccount, done }
        var looking = Looking.ns
        var start = domainEnd
        while start != bytes.endIndex {
            start = bytes.index(after: start)
            let end = bytes[start...].firstIndex(of: slash) ?? bytes.endIndex
            let segment = principal[start..<end]
            guard !segment.isEmpty else {
                throw invalid(end == bytes.endIndex ? "the path ends with `/`" : "the path has an empty segment")
            }
            guard segment != ".", segment != ".." else { throw invalid("the path has a `.` or `..` segment") }
            for byte in segment.utf8 where !Self.isPathByte(byte) {
                throw invalid("path segments may hold only letters, digits, `.`, `-` and `_`")
            }
            let more = end != bytes.endIndex
            switch looking {
            case .ns where segment == "ns" && more: looking = .namespace
            case .namespace where more:
                namespace = String(segment)
                looking = .sa
            case .sa where segment == "sa" && more: looking = .serviceAccount
            case .serviceAccount:
                serviceAccount = String(segment)
                looking = .done
            default: break
            }
            start = end
        }
        self.namespace = namespace
        self.serviceAccount = serviceAccount
    }

    /// The ID without its scheme, as Istio's `source.principal`: `cluster.local/ns/default/sa/sleep`.
    public var principal: String { trustDomain + path }

    /// The ID with its scheme: `spiffe://cluster.local/ns/default/sa/sleep`.
    public var uri: String { Self.scheme + principal }

    public var description: String { uri }

    /// Whether the ID belongs to `trustDomain`.
    public func isMember(of trustDomain: String) -> Bool { self.trustDomain == trustDomain }

    public static func < (lhs: SPIFFEID, rhs: SPIFFEID) -> Bool { lhs.principal < rhs.principal }

    /// Istio's `source.principal` for a peer identity as a proxy reports it (Envoy's ext_authz `principal`, a
    /// request file): a SPIFFE URI loses its scheme; any other identity (a DNS name, a certificate subject) is kept
    /// as it is, and then matches only `*` and `not…` rules, as in Istio.
    public static func principal(ofPeer identity: String) -> String {
        identity.utf8.starts(with: scheme.utf8) ? String(identity.utf8.dropFirst(scheme.utf8.count))! : identity
    }

    private static func isTrustDomainByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"): true
        default: false
        }
    }

    private static func isPathByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"): true
        default: false
        }
    }
}
