/// Every attribute an authorization rule can name, for one request. Absent attributes are nil: a rule that
/// needs an attribute the request lacks does not match (and its `not…` form does).
public struct AuthzRequest: Sendable, Hashable {
    public var source: Source
    /// The original client address (`remote.ip`), from `X-Forwarded-For` per the proxy's trust settings.
    public var remoteIP: IPAddress?
    public var destination: Destination
    public var http: HTTPAttributes
    /// The verified request credential; nil when the request carried no token.
    public var auth: RequestAuth?
    /// The SNI of the downstream TLS connection (`connection.sni`).
    public var connectionSNI: String?
    /// The document a CUSTOM Rego provider receives (OPA-Envoy's `input`), when the transport has the whole
    /// request; otherwise one is derived from these attributes.
    public var providerInput: Value?

    public init(
        source: Source = Source(),
        remoteIP: IPAddress? = nil,
        destination: Destination = Destination(),
        http: HTTPAttributes = HTTPAttributes(),
        auth: RequestAuth? = nil,
        connectionSNI: String? = nil,
        providerInput: Value? = nil
    ) {
        self.source = source
        self.remoteIP = remoteIP
        self.destination = destination
        self.http = http
        self.auth = auth
        self.connectionSNI = connectionSNI
        self.providerInput = providerInput
    }
}

extension AuthzRequest {
    /// The peer: its mTLS identity and address.
    public struct Source: Sendable, Hashable {
        /// The peer's SPIFFE ID without `spiffe://` (`cluster.local/ns/default/sa/sleep`); nil without mTLS.
        public var principal: String? {
            didSet { identity = principal.flatMap(PrincipalParts.init(principal:)) }
        }
        /// Set only when given explicitly; otherwise the namespace comes from the principal, as Istio derives it.
        public var explicitNamespace: String?
        public var ip: IPAddress?
        /// The principal's parts, parsed once.
        public private(set) var identity: PrincipalParts?

        public init(principal: String? = nil, namespace: String? = nil, ip: IPAddress? = nil) {
            self.principal = principal
            self.explicitNamespace = namespace
            self.ip = ip
            self.identity = principal.flatMap(PrincipalParts.init(principal:))
        }

        /// `source.namespace`: explicit, or the `/ns/<name>/` segment of the principal.
        public var namespace: String? { explicitNamespace ?? identity?.namespace }
    }

    /// The workload being called.
    public struct Destination: Sendable, Hashable {
        public var ip: IPAddress?
        public var port: Int?
        /// The workload's namespace; policies are scoped by it. Nil means the decider's default namespace.
        public var namespace: String?
        public var labels: [String: String]

        public init(ip: IPAddress? = nil, port: Int? = nil, namespace: String? = nil, labels: [String: String] = [:]) {
            self.ip = ip
            self.port = port
            self.namespace = namespace
            self.labels = labels
        }
    }

    public struct HTTPAttributes: Sendable, Hashable {
        public var host: String?
        public var method: String?
        /// The path without query string or fragment.
        public var path: String?
        /// The query string, without `?`.
        public var query: String?
        public var headers: Headers
        /// Why the request cannot be matched as sent (a path with an escaped NUL, say, which an Istio sidecar
        /// answers with 400); such a request is denied whatever the policies say. `path` then holds the path as
        /// received.
        public var refusal: String?

        public init(host: String? = nil, method: String? = nil, path: String? = nil, query: String? = nil,
                    headers: Headers = Headers()) {
            self.host = host
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
        }

        /// Sets `path` and `query` from a request target such as `/a/b?x=1#frag`.
        public mutating func setTarget(_ target: String) {
            (path, query) = Self.split(target: target)
        }

        /// A request target's path and query (without `?`); a fragment is dropped.
        public static func split(target: String) -> (path: String, query: String?) {
            let utf8 = target.utf8
            let end = utf8.firstIndex(of: UInt8(ascii: "#")) ?? utf8.endIndex
            guard let question = utf8[..<end].firstIndex(of: UInt8(ascii: "?")) else {
                return (end == utf8.endIndex ? target : String(target[..<end]), nil)
            }
            return (String(target[..<question]), String(target[utf8.index(after: question)..<end]))
        }
    }

    /// The verified request credential (JWT): `request.auth.*`.
    public struct RequestAuth: Sendable, Hashable {
        /// `iss/sub`.
        public var principal: String? {
            didSet { splitIssuerAndSubject() }
        }
        public var audiences: [String]
        /// The authorized presenter (`azp`).
        public var presenter: String?
        /// The whole token payload.
        public var claims: Value {
            didSet { splitIssuerAndSubject() }
        }
        /// The token's issuer and subject, derived once from `claims` or `principal` (rules read them often).
        public private(set) var issuer: String?
        public private(set) var subject: String?
        /// `issuer/subject`, the key request-principal rules are indexed by.
        public private(set) var issuerSubjectKey: String?

        public init(principal: String? = nil, audiences: [String] = [], presenter: String? = nil, claims: Value = [:]) {
            self.principal = principal
            self.audiences = audiences
            self.presenter = presenter
            self.claims = claims
            splitIssuerAndSubject()
        }

        /// The issuer and subject, from the claims when present, else split from the principal at its last `/`
        /// (an issuer may itself contain slashes, a subject rarely does).
        public var issuerAndSubject: (issuer: String, subject: String)? {
            guard let issuer, let subject else { return nil }
            return (issuer, subject)
        }

        private mutating func splitIssuerAndSubject() {
            if let iss = claims["iss"]?.stringValue, let sub = claims["sub"]?.stringValue {
                (issuer, subject) = (iss, sub)
            } else if let principal, let slash = principal.lastIndex(of: "/") {
                (issuer, subject) = (String(principal[..<slash]), String(principal[principal.index(after: slash)...]))
            } else {
                (issuer, subject) = (nil, nil)
            }
            issuerSubjectKey = issuer.map { $0 + "/" + subject! }
        }
    }
}

/// Request headers with case-insensitive names. Repeated headers are joined with `,` as Envoy joins them
/// for matching.
public struct Headers: Sendable, Hashable, Sequence {
    @usableFromInline
    var storage: [String: String]

    public init() { storage = [:] }

    public init(minimumCapacity: Int) { storage = Dictionary(minimumCapacity: minimumCapacity) }

    public init(_ pairs: [(String, String)]) {
        storage = [:]
        for (name, value) in pairs { add(name, value) }
    }

    public init(_ dictionary: [String: String]) {
        self.init(dictionary.map { ($0.key, $0.value) })
    }

    public mutating func add(_ name: String, _ value: String) {
        let key = Self.normalize(name)
        if let existing = storage[key] {
            storage[key] = existing + "," + value
        } else {
            storage[key] = value
        }
    }

    public mutating func set(_ name: String, _ value: String?) {
        storage[Self.normalize(name)] = value
    }

    /// The value of the header named `name` in any case.
    @inlinable
    public subscript(name: String) -> String? {
        storage[Self.normalize(name)]
    }

    /// Looks up a name that is already lowercase (compiled matchers store them that way).
    @inlinable
    public func value(lowercased name: String) -> String? { storage[name] }

    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }

    public func makeIterator() -> Dictionary<String, String>.Iterator { storage.makeIterator() }

    /// Sorted by name, for stable output.
    public var sorted: [(name: String, value: String)] { storage.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    @inlinable
    public static func normalize(_ name: String) -> String {
        name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) ? name.lowercased() : name
    }
}

/// The parts of a SPIFFE-style peer principal `trust-domain/ns/<namespace>/sa/<service-account>`, as Istio's
/// matchers read them (the namespace is the segment after `/ns/`).
public struct PrincipalParts: Sendable, Hashable {
    public var trustDomain: String
    public var namespace: String?
    public var serviceAccount: String?

    /// Parses a principal written without `spiffe://`. The namespace is the segment after an `ns` segment that
    /// is followed by more path (Istio matches `.*/ns/<ns>/.*`); the service account is the segment after the
    /// first `sa` segment behind it.
    public init?(principal: String) {
        // One pass over the bytes (this runs for every request): segment by segment after the trust domain,
        // the first `ns` with two segments behind it names the namespace, then the first `sa` after that with
        // a segment behind it names the service account.
        let utf8 = principal.utf8
        let slash = UInt8(ascii: "/")
        guard let first = utf8.firstIndex(of: slash), first != utf8.startIndex else { return nil }
        trustDomain = String(principal[..<first])
        namespace = nil
        serviceAccount = nil
        enum Looking { case ns, namespace, sa, serviceAccount }
        var looking = Looking.ns
        var start = utf8.index(after: first)
        while true {
            let end = utf8[start...].firstIndex(of: slash) ?? utf8.endIndex
            let segment = principal[start..<end]
            let more = end != utf8.endIndex
            switch looking {
            case .ns:
                if segment == "ns" {
                    guard more else { return }
                    looking = .namespace
                }
            case .namespace:
                guard more else { return }
                namespace = String(segment)
                looking = .sa
            case .sa:
                if segment == "sa" {
                    guard more else { return }
                    looking = .serviceAccount
                }
            case .serviceAccount:
                serviceAccount = String(segment)
                return
            }
            guard more else { return }
            start = utf8.index(after: end)
        }
    }
}
