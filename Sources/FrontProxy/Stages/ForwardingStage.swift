import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP1

/// The forwarding stage: the allowed request as the upstream gets it (HTTP/1.1 on a kept-alive connection, framed
/// anew), and the upstream's response as the client gets it (hop-by-hop fields removed, the check's response headers
/// added).
public enum ForwardingStage {
    /// How the forwarded request's body is framed, known once the check is done: the body may have arrived whole
    /// while the check ran.
    public enum BodyFraming: Sendable, Hashable {
        /// No body.
        case none
        /// A body of exactly this many bytes (the client's `Content-Length`, or a body that arrived whole).
        case length(Int)
        /// A body still arriving, of unknown length.
        case chunked
    }

    /// The framing for a request whose `Content-Length` said `declaredLength`, of which `received` bytes have
    /// arrived, and that has (or has not) ended.
    public static func framing(declaredLength: Int?, received: Int, ended: Bool) -> BodyFraming {
        if let declaredLength { return declaredLength == 0 ? .none : .length(declaredLength) }
        if ended { return received == 0 ? .none : .length(received) }
        return .chunked
    }

    /// Fields of the client's head the upstream never gets: hop-by-hop ones, and the length (framed anew).
    static let notForwarded = RequestAdmission.hopByHopHeaders.union(["content-length"])

    /// The head sent upstream.
    public static func upstreamHead(
        _ request: ProxiedRequest, framing: BodyFraming, upstreamAuthority: String, upstreamHTTP2: Bool = false
    ) -> HTTPRequestHead {
        var headers = request.headers
        headers.remove(anyOf: Self.notForwarded)
        // HTTP/2 keeps one `TE` value, `trailers`, which gRPC servers ask of their clients (RFC 9113 §8.2.2).
        if upstreamHTTP2 && request.acceptsTrailers { headers.add(name: "te", value: "trailers") }
        switch framing {
        case .none:
            if request.method == .POST || request.method == .PUT || request.method == .PATCH {
                headers.add(name: "content-length", value: "0")
            }
        case .length(let length):
            headers.add(name: "content-length", value: String(length))
        case .chunked:
            headers.add(name: "transfer-encoding", value: "chunked")
        }
        if !headers.contains(name: "host") { headers.add(name: "host", value: upstreamAuthority) }
        if let upgrade = request.upgrade {
            headers.add(name: "connection", value: "upgrade")
            headers.add(name: "upgrade", value: upgrade)
        }
        return HTTPRequestHead(version: .http1_1, method: request.method, uri: request.target, headers: headers)
    }

    /// The largest HTTP/2 header block the proxy sends. swift-nio-http2 sends a block in one HEADERS frame, never with
    /// CONTINUATION, so a block must fit the peer's frames: 16 KiB unless the peer raises SETTINGS_MAX_FRAME_SIZE (Envoy
    /// and most servers and clients keep it). Larger ones would fail to be written, and the stream would hang.
    static let http2HeaderBlockLimit = 16_384 - 16

    /// Whether `headers` and the pseudo-fields, HPACK-encoded, fit one HTTP/2 frame (`http2HeaderBlockLimit`).
    static func fitsOneHTTP2Frame(_ headers: HTTPHeaders, pseudo: KeyValuePairs<String, String>) -> Bool {
        var bytes = 0, fields = 0
        for (name, value) in pseudo { bytes += name.utf8.count + value.utf8.count; fields += 1 }
        for (name, value) in headers { bytes += name.utf8.count + value.utf8.count; fields += 1 }
        // Huffman codes are at most 30 bits a byte; a field's lengths and type take at most 11 bytes more. Most heads
        // are decided here, without encoding.
        if (bytes * 15 + 3) / 4 + fields * 11 <= http2HeaderBlockLimit { return true }
        var block = HPACKHeaders(pseudo.map { ($0.key, $0.value) })
        for (name, value) in headers { block.add(name: name.lowercased(), value: value) }
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        var encoded = ByteBuffer()
        guard (try? encoder.encode(headers: block, to: &encoded)) != nil else { return false }
        return encoded.readableBytes <= http2HeaderBlockLimit
    }

    /// The head sent downstream for the upstream's `head`.
    public static func downstreamHead(
        _ head: HTTPResponseHead, responseHeaders: [HeaderMutation], version: HTTPVersion
    ) -> HTTPResponseHead {
        var headers = head.headers
        for value in headers["connection"] {
            for name in value.split(separator: ",") {
                let lower = name.trimmingASCIISpaces.lowercased()
                if !lower.isEmpty, lower != "content-length" { headers.remove(name: lower) }
            }
        }
        // The downstream codec frames the body again: a length is kept, a chunked coding dropped.
        headers.remove(anyOf: RequestAdmission.hopByHopHeaders)
        for mutation in responseHeaders { mutation.apply(to: &headers) }
        return HTTPResponseHead(version: version, status: head.status, headers: headers)
    }

    /// The upstream's trailers as the client gets them: hop-by-hop fields removed; nil when none are left.
    static func downstreamTrailers(_ trailers: HTTPHeaders) -> HTTPHeaders? {
        var kept = trailers
        kept.remove(anyOf: RequestAdmission.hopByHopHeaders)
        return kept.isEmpty ? nil : kept
    }

    /// A local answer as a response head and body.
    public static func localResponse(_ response: LocalResponse, version: HTTPVersion, keepAlive: Bool) -> (HTTPResponseHead, [UInt8]) {
        var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
        let body = Array(response.body.utf8)
        // A gRPC answer's end is its trailers.
        if response.trailers.isEmpty { headers.replaceOrAdd(name: "content-length", value: String(body.count)) }
        if !keepAlive || response.closeConnection {
            headers.replaceOrAdd(name: "connection", value: "close")
        } else if version == .http1_0 {
            headers.replaceOrAdd(name: "connection", value: "keep-alive")  // HTTP/1.0 closes unless told otherwise
        }
        return (HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers), body)
    }
}

// MARK: - gRPC calls

extension ForwardingStage {
    /// `application/grpc`, alone or with a `+format` or parameters (gRPC-Web's types are another protocol).
    static func isGRPC(contentType: String?) -> Bool {
        guard let contentType = contentType?.lowercased(), contentType.hasPrefix("application/grpc") else { return false }
        let rest = contentType.dropFirst("application/grpc".count)
        return rest.isEmpty || rest.hasPrefix("+") || rest.hasPrefix(";")
    }

    /// The gRPC status a client derives from an HTTP status (gRPC's HTTP-to-gRPC mapping, as Envoy applies it).
    static func grpcStatus(forHTTPStatus status: Int) -> Int {
        switch status {
        case 400: 13  // INTERNAL
        case 401: 16  // UNAUTHENTICATED
        case 403: 7  // PERMISSION_DENIED
        case 404: 12  // UNIMPLEMENTED
        case 429, 502, 503, 504: 14  // UNAVAILABLE
        default: 2  // UNKNOWN
        }
    }

    /// A local answer to a gRPC call in gRPC's form, as Envoy sends its local replies to gRPC calls: HTTP 200, no
    /// message, and trailers with the status the HTTP one maps to and the body's text as `grpc-message`. So a
    /// client's error says why (`PERMISSION_DENIED: access denied`), not merely that HTTP said 403. The answer's own
    /// headers (a denial's, say) are kept, without its content type.
    static func grpcLocalResponse(_ response: LocalResponse) -> LocalResponse {
        var headers = response.headers.filter { $0.name.lowercased() != "content-type" }
        headers.append(.init("content-type", "application/grpc"))
        var trailers = [LocalResponse.HeaderField("grpc-status", String(grpcStatus(forHTTPStatus: response.status)))]
        let message = response.body.trimmingCharacters(in: .whitespacesAndNewlines)
        if !message.isEmpty { trailers.append(.init("grpc-message", percentEncodedGRPCMessage(message))) }
        var answer = LocalResponse(status: 200, headers: headers, body: "", closeConnection: response.closeConnection)
        answer.trailers = trailers
        return answer
    }

    /// gRPC's encoding of `grpc-message`: bytes outside printable ASCII, and `%`, as `%XX`.
    static func percentEncodedGRPCMessage(_ message: String) -> String {
        var out = ""
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return out
    }
}

extension Substring {
    var trimmingASCIISpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}
