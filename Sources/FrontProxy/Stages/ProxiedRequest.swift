import Identity
import NIOHTTP1
import PolicyCore

/// What is known about a downstream connection once its TLS handshake (if any) is done: the facts every request on
/// it carries into its check and its forwarded headers.
public struct ConnectionFacts: Sendable {
    public var sourceAddress: String?
    public var sourcePort: Int?
    public var localAddress: String?
    public var localPort: Int?
    /// TLS was terminated (`https`, `x-forwarded-proto: https`).
    public var isTLS: Bool
    /// The peer's verified SPIFFE ID; nil for plaintext and for a TLS client without a certificate.
    public var peerIdentity: SPIFFEID?
    /// Lowercase hex SHA-256 of the peer's leaf certificate (DER), for `x-forwarded-client-cert`.
    public var peerCertificateHash: String?
    /// The SNI of the ClientHello.
    public var serverName: String?
    /// `HTTP/1.1` or `HTTP/2`.
    public var httpProtocol: String

    public init(
        sourceAddress: String? = nil, sourcePort: Int? = nil, localAddress: String? = nil, localPort: Int? = nil,
        isTLS: Bool = false, peerIdentity: SPIFFEID? = nil, peerCertificateHash: String? = nil, serverName: String? = nil,
        httpProtocol: String = "HTTP/1.1"
    ) {
        self.sourceAddress = sourceAddress
        self.sourcePort = sourcePort
        self.localAddress = localAddress
        self.localPort = localPort
        self.isTLS = isTLS
        self.peerIdentity = peerIdentity
        self.peerCertificateHash = peerCertificateHash
        self.serverName = serverName
        self.httpProtocol = httpProtocol
    }

    public var scheme: String { isTLS ? "https" : "http" }
}

/// One request as it moves through the stages: each stage reads it and changes it (headers added, removed, a
/// verified token attached) or answers it.
public struct ProxiedRequest: Sendable {
    public var method: HTTPMethod
    /// The request target: path and query, as received.
    public var target: String
    public var version: HTTPVersion
    /// Header fields; `host` holds the authority for both HTTP/1.1 and HTTP/2.
    public var headers: HTTPHeaders
    /// `x-request-id`: the client's, or one made for the request.
    public var requestID: String
    /// The verified token, once RequestAuthentication has accepted one.
    public var token: AuthenticatedToken?
    /// The client sent `Expect: 100-continue`: it waits for `100 Continue` before its body. The proxy answers the
    /// expectation itself (the field is not forwarded), once the body is wanted.
    public var expectsContinue = false
    /// The protocol the client asks to switch to (`Upgrade: websocket`) when the proxy tunnels it: the check sees
    /// the request with its `Upgrade`, the upstream gets it, and a `101` from the upstream turns both connections
    /// into one byte stream.
    public var upgrade: String?
    /// The client sent `TE: trailers` (gRPC clients do): an HTTP/2 upstream gets it.
    public var acceptsTrailers = false

    public init(
        method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders = [:],
        requestID: String = "", token: AuthenticatedToken? = nil
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.requestID = requestID
        self.token = token
    }

    /// The `Host` header (`:authority` in HTTP/2).
    public var authority: String { headers.first(name: "host") ?? "" }

    public var path: Substring { target.firstIndex(of: "?").map { target[..<$0] } ?? target[...] }

    public var query: Substring? { target.firstIndex(of: "?").map { target[target.index(after: $0)...] } }
}

/// An answer the proxy gives itself, without the upstream: a refusal, a denial, a failure.
public struct LocalResponse: Error, Sendable, Hashable {
    public var status: Int
    public var headers: [HeaderField]
    public var body: String
    /// Close the connection after this response (the rest of the request cannot be trusted or is not read).
    public var closeConnection: Bool
    /// Fields sent after the (empty) body: a gRPC call's answer carries its status there.
    public var trailers: [HeaderField] = []

    public struct HeaderField: Sendable, Hashable {
        public var name: String
        public var value: String

        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(status: Int, headers: [HeaderField] = [], body: String = "", closeConnection: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.closeConnection = closeConnection
    }

    /// A plain-text answer with a body of one line.
    public static func text(_ status: Int, _ message: String, closeConnection: Bool = false) -> LocalResponse {
        LocalResponse(
            status: status, headers: [HeaderField("content-type", "text/plain; charset=utf-8")], body: message + "\n",
            closeConnection: closeConnection)
    }
}
