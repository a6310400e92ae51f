import ExtAuthz
import Foundation
import NIOHTTP1
import PolicyCore

/// The first stage of a request, what Envoy's HTTP connection manager does before any filter: refuse heads that
/// could be read two ways (request smuggling) or that HTTP does not allow, then rewrite the headers the proxy owns —
/// hop-by-hop fields removed (RFC 9110 §7.6.1), `x-forwarded-for` appended, `x-forwarded-proto` set,
/// `x-request-id` kept or made, and `x-forwarded-client-cert` sanitized and set (Envoy's SANITIZE_SET).
public enum RequestAdmission {
    /// Fields that describe one connection, never forwarded (RFC 9110 §7.6.1, and `proxy-connection`).
    public static let hopByHopHeaders: Set<String> = [
        "connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade", "trailer",
    ]

    /// Headers only the proxy may set: a client's copy is always removed.
    public static let proxyOwnedHeaders: Set<String> = ["x-forwarded-client-cert", "x-warden-verified-claims"]

    static let hopByHopAndProxyOwned = hopByHopHeaders.union(proxyOwnedHeaders)

    public static let forwardedClientCert = "x-forwarded-client-cert"
    public static let requestIDHeader = "x-request-id"
    /// A client's `x-request-id` longer than this, or with characters outside visible ASCII, is replaced.
    public static let maximumRequestIDLength = 128

    /// What the proxy knows of itself for the headers it sets.
    public struct Identity: Sendable {
        /// The proxy's own SPIFFE ID (`By=` in `x-forwarded-client-cert`).
        public var ownSPIFFEID: String?

        public init(ownSPIFFEID: String? = nil) {
            self.ownSPIFFEID = ownSPIFFEID
        }
    }

    /// Checks a head and turns it into the request the next stages work on, or the answer that refuses it (400
    /// with the connection closed: after a head that could be read two ways the rest of the stream means nothing).
    ///
    /// With `pathNormalizer`, the path is normalized as Envoy does before its filters (Istio's
    /// `meshConfig.pathNormalization`): the check and the upstream then see the same path, the one policies match.
    public static func admit(
        _ head: HTTPRequestHead, connection: ConnectionFacts, identity: Identity, pathNormalizer: PathNormalizer? = nil,
        makeRequestID: () -> String = { RequestIDSource.shared.next() }
    ) -> Result<ProxiedRequest, LocalResponse> {
        var head = head
        if head.version.major == 1, let absolute = absoluteForm(head.uri) {
            head.uri = absolute.path
            head.headers.replaceOrAdd(name: "host", value: absolute.authority)
        }
        if let problem = problem(in: head) { return .failure(.text(400, problem, closeConnection: true)) }
        if let pathNormalizer, head.uri.hasPrefix("/") {
            let (path, query) = AuthzRequest.HTTPAttributes.split(target: head.uri)
            switch pathNormalizer.normalize(path) {
            case .path(let normalized): head.uri = query.map { normalized + "?" + $0 } ?? normalized
            case .refused(let reason): return .failure(.text(400, "invalid request path: \(reason)"))
            }
        }
        var headers = head.headers
        let upgrade = tunnelledUpgrade(head)
        let acceptsTrailers = headers.list("te", contains: "trailers")
        // Hop-by-hop fields, and every field `Connection` names.
        for value in headers["connection"] {
            for name in value.split(separator: ",") {
                let lower = name.trimmingCharacters(in: .whitespaces).lowercased()
                if !lower.isEmpty, !Self.endToEndNeverDropped.contains(lower) { headers.remove(name: lower) }
            }
        }
        headers.remove(anyOf: hopByHopAndProxyOwned)
        if let upgrade {
            // As Envoy keeps them for an upgrade: the check sees what the client asks for.
            headers.add(name: "connection", value: "upgrade")
            headers.add(name: "upgrade", value: upgrade)
        }
        // RFC 9110 §10.1.1: an HTTP/1.0 request's expectation is ignored (and forwarded as it came).
        let http11OrLater = head.version.major > 1 || (head.version.major == 1 && head.version.minor >= 1)
        let expectations = http11OrLater ? headers["expect"] : []
        let expectsContinue = !expectations.isEmpty
            && expectations.allSatisfy { $0.trimmingCharacters(in: .whitespaces).lowercased() == "100-continue" }
        if expectsContinue { headers.remove(name: "expect") }
        // HTTP/2 may split `cookie` into crumbs; HTTP/1.1 (the upstream, and the check as Envoy sends it) has one
        // field, joined with "; " (RFC 9113 §8.2.3).
        if head.version.major >= 2, case let crumbs = headers["cookie"], crumbs.count > 1 {
            headers.replaceOrAdd(name: "cookie", value: crumbs.joined(separator: "; "))
        }

        if let address = connection.sourceAddress {
            if let existing = headers.first(name: "x-forwarded-for"), !existing.isEmpty {
                headers.replaceOrAdd(name: "x-forwarded-for", value: existing + ", " + address)
            } else {
                headers.replaceOrAdd(name: "x-forwarded-for", value: address)
            }
        }
        headers.replaceOrAdd(name: "x-forwarded-proto", value: connection.scheme)

        let requestID: String
        let given = headers[requestIDHeader]
        if given.count == 1, let id = given.first, isUsableRequestID(id) {
            requestID = id
        } else {
            requestID = makeRequestID()
            headers.replaceOrAdd(name: requestIDHeader, value: requestID)
        }

        if connection.isTLS, let peer = connection.peerIdentity {
            var parts: [String] = []
            if let own = identity.ownSPIFFEID { parts.append("By=" + own) }
            if let hash = connection.peerCertificateHash { parts.append("Hash=" + hash) }
            parts.append("URI=" + peer.uri)
            headers.add(name: forwardedClientCert, value: parts.joined(separator: ";"))
        }
        var request = ProxiedRequest(
            method: head.method, target: head.uri, version: head.version, headers: headers, requestID: requestID)
        request.expectsContinue = expectsContinue
        request.upgrade = upgrade
        request.acceptsTrailers = acceptsTrailers
        return .success(request)
    }

    /// The upgrade the proxy tunnels: WebSocket (RFC 6455 §4.1: an HTTP/1.1 GET whose `Connection` names `upgrade`),
    /// which Istio enables by default. Any other (`h2c`, TLS) is dropped with the hop-by-hop fields.
    static func tunnelledUpgrade(_ head: HTTPRequestHead) -> String? {
        guard head.version == .http1_1, head.method == .GET, asksToUpgrade(head.headers),
              let protocols = head.headers.first(name: "upgrade"),
              protocols.split(separator: ",").first.map({ $0.trimmingASCIISpaces.lowercased() == "websocket" }) == true
        else { return nil }
        return protocols
    }

    /// Whether an HTTP/1 request asks to switch protocols (`Upgrade`, with `Connection: upgrade`). The HTTP/1 decoder
    /// reads nothing after such a request, as HTTP/1.1 has it: unless the switch happens, its connection closes
    /// after the response.
    static func asksToUpgrade(_ headers: HTTPHeaders) -> Bool {
        headers.contains(name: "upgrade") && headers.list("connection", contains: "upgrade")
    }

    /// `Connection: host` must not remove what routes the request.
    static let endToEndNeverDropped: Set<String> = ["host", "content-length"]

    /// Why a head is refused, or nil.
    static func problem(in head: HTTPRequestHead) -> String? {
        let headers = head.headers
        let lengths = headers["content-length"]
        let codings = headers["transfer-encoding"]
        if !lengths.isEmpty && !codings.isEmpty { return "a request may not carry both Content-Length and Transfer-Encoding" }
        if lengths.count > 1 || lengths.contains(where: { $0.contains(",") }) {
            return "a request may carry one Content-Length"
        }
        if let length = lengths.first, Int(length) == nil || length.hasPrefix("+") || length.hasPrefix("-") {
            return "invalid Content-Length"
        }
        if !codings.isEmpty {
            let all = codings.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard all.last == "chunked", all.filter({ $0 == "chunked" }).count == 1 else {
                return "a request's Transfer-Encoding must end in chunked, once"
            }
        }
        let hosts = headers["host"]
        if head.version == .http1_1 && hosts.isEmpty { return "an HTTP/1.1 request needs a Host header" }
        if hosts.count > 1 { return "a request may carry one Host header" }
        if head.method == .CONNECT { return "CONNECT is not supported" }
        if !(head.uri.hasPrefix("/") || (head.uri == "*" && head.method == .OPTIONS)) {
            return "the request target must be a path, or in HTTP/1.1 an http or https URI with a host"
        }
        return nil
    }

    /// A target in absolute form (`http://details:9080/x?y`), as a client sends it to a proxy it is configured to
    /// use: RFC 9112 §3.2.2 has a server accept it, with the target's authority taking the place of any `Host`
    /// sent. Nil for another target, or one whose authority is empty, carries userinfo (`user@`, which RFC 9110
    /// §4.2.4 forbids in http URIs) or has bytes outside a URI authority's.
    static func absoluteForm(_ target: String) -> (authority: String, path: String)? {
        guard target.utf8.first.map({ $0 | 0x20 }) == UInt8(ascii: "h") else { return nil }  // a path, mostly
        let bytes = target.utf8.prefix(8).map { $0 | 0x20 }  // letters lower-cased; "/" and ":" unchanged
        let schemeLength: Int
        if bytes.starts(with: "http://".utf8) { schemeLength = 7 }
        else if bytes.starts(with: "https://".utf8) { schemeLength = 8 }
        else { return nil }
        let rest = target.utf8.dropFirst(schemeLength)
        let end = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? rest.endIndex
        let authority = rest[..<end]
        guard !authority.isEmpty, authority.allSatisfy(isAuthorityByte) else { return nil }
        let path = String(Substring(rest[end...]))
        return (String(Substring(authority)), path.hasPrefix("/") ? path : "/" + path)
    }

    /// RFC 3986's authority without userinfo: a registered name, an IP literal in brackets, a port.
    private static func isAuthorityByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "-._~%!$&'()*+,;=:[]".utf8.contains(byte)
        }
    }

    static func isUsableRequestID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maximumRequestIDLength && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}

extension HTTPHeaders {
    /// Removes every field whose name (in any case) is in `names` (lower-case): one pass to find none, the common
    /// case, where removing name by name scanned every field once per name.
    mutating func remove(anyOf names: Set<String>) {
        func named(_ field: String) -> Bool { names.contains { isFieldName(field, $0) } }
        guard contains(where: { named($0.name) }) else { return }
        self = HTTPHeaders(filter { !named($0.name) })
    }
}

extension HTTPHeaders {
    /// Whether the comma-separated list field `name` (`Connection`, `TE`) holds `token` (lower-case), in any case.
    func list(_ name: String, contains token: String) -> Bool {
        self[name].contains { value in value.split(separator: ",").contains { $0.trimmingASCIISpaces.lowercased() == token } }
    }
}

/// Whether `name` is `lowercased` in any case (ASCII), without allocating.
func isFieldName(_ name: String, _ lowercased: String) -> Bool {
    let bytes = name.utf8, expected = lowercased.utf8
    guard bytes.count == expected.count else { return false }
    return zip(bytes, expected).allSatisfy { (UInt8(ascii: "A")...UInt8(ascii: "Z") ~= $0 ? $0 | 0x20 : $0) == $1 }
}
