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

    public init(
        source: Source = Source(),
        remoteIP: IPAddress? = nil,
        destination: Destination = Destination(),
        http: HTTPAttributes = HTTPAttributes(),
        auth: RequestAuth? = nil,
        connectionSNI: String? = nil
    ) {
        self.source = source
        self.remoteIP = remoteIP
        self.destination = destination
        self.http = http
        self.auth = auth
        self.connectionSNI = connectionSNI
    }
}

extension AuthzRequest {
    /// The peer: its mTLS identity and address.
    public struct Source: Sendable, Hashable {
        /// `source.principal`: the peer's SPIFFE ID without `spiffe://` (`cluster.local/ns/default/sa/sleep`); nil
        /// without mTLS. Set it with `SPIFFEID.principal(ofPeer:)` from what a proxy reports.
        public var principal: String? {
            didSet { identity = principal.flatMap { try? SPIFFEID(principal: $0) } }
        }
        /// Set only when given explicitly; otherwise the namespace comes from the principal, as Istio derives it.
        public var explicitNamespace: String?
        public var ip: IPAddress?
        /// The principal as a SPIFFE ID, parsed once; nil when the peer's identity is not one (namespace, service
        /// account and trust domain rules then never match it).
        public private(set) var identity: SPIFFEID?

        public init(principal: String? = nil, namespace: String? = nil, ip: IPAddress? = nil) {
            self.principal = principal
            self.explicitNamespace = namespace
            self.ip = ip
            self.identity = principal.flatMap { try? SPIFFEID(principal: $0) }
        }

        /// A peer with a verified SPIFFE identity.
        public init(peer: SPIFFEID, ip: IPAddress? = nil) {
            self.init(principal: peer.principal, ip: ip)
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
            var contiguous = target
            return contiguous.withUTF8 { bytes in
                var question: Int?
                var end = bytes.count
                for i in bytes.indices {
                    if bytes[i] == UInt8(ascii: "#") {
                        end = i
                        break
                    }
                    if question == nil, bytes[i] == UInt8(ascii: "?") { question = i }
                }
                func text(_ range: Range<Int>) -> String {
                    String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
                }
                guard let question else { return (end == bytes.count ? target : text(0..<end), nil) }
                return (text(0..<question), text(question + 1..<end))
            }
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

    /// Headers from a map of names to values, as Envoy's `CheckRequest` carries them. Names that are all lowercase
    /// (Envoy sends them so) are taken as they are, without hashing them again; otherwise they are added one by
    /// one, names differing only in case joined.
    public init(_ dictionary: [String: String]) {
        guard dictionary.keys.contains(where: Self.hasCapital) else {
            storage = dictionary
            return
        }
        storage = [:]
        for (name, value) in dictionary { add(name, value) }
    }

    public mutating func add(_ name: String, _ value: String) {
        let key = Self.normalize(name)
        // One lookup for a name seen first, as most are; a repeated one is joined after.
        if let existing = storage.updateValue(value, forKey: key) {
            storage[key] = existing + "," + value
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
        hasCapital(name) ? name.lowercased() : name
    }

    @inlinable
    static func hasCapital(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            for byte in bytes where byte &- UInt8(ascii: "A") < 26 { return true }
            return false
        }
    }
}

extension Array where Element == AuthzRequest {
    /// Makes requests with equal workload labels share one labels dictionary, as the server's check mapper hands
    /// them over (it keeps one per workload it has seen, and the AuthorizationPolicy engine remembers what it
    /// resolved for a workload by that dictionary): what a program deciding recorded requests does to be decided
    /// as the server decides them.
    public mutating func shareWorkloadLabels() {
        var shared: [[String: String]: [String: String]] = [:]
        for i in indices {
            let labels = self[i].destination.labels
            if let existing = shared[labels] {
                self[i].destination.labels = existing
            } else {
                shared[labels] = labels
            }
        }
    }
}
