import ExtAuthz
import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Networking
import PolicyCore

/// Any bytes as one connection's byte stream to an HTTP/1.1 listener, arriving in a few chunks whose sizes the
/// input decides: NIO's HTTP/1 server pipeline (`configureHTTPServerPipeline(withErrorHandling: true)`, as
/// `HTTPServer` sets it up) decodes them, `HTTPRequestAssembler` collects whole requests under a 1 KiB body limit,
/// and every request it delivers is checked as ext_authz's HTTP mode checks it (`HTTPCheckRequest`, the mapping
/// with its path normalization) and answered, which lets a pipelined request after it through.
///
/// Invariants: a delivered body is within the limit and as long as a lone `content-length` says; a refusal is
/// the assembler's (413 with the configured limit, or 400) or the decoder's 400, after which nothing more is read;
/// a normalized path is absolute, with no backslash, dot segment, empty segment or `;` parameter left; a refused
/// path is denied with 400.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPRequest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    let channel = EmbeddedChannel()
    let parts = PartCollector()
    try! channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
    try! channel.pipeline.syncOperations.addHandler(parts)
    try! channel.connect(to: SocketAddress(ipAddress: "10.1.2.3", port: 43210)).wait()
    defer { _ = try? channel.finish() }

    var assembler = HTTPRequestAssembler(maxBodyBytes: maxBodyBytes)
    var open = true
    for chunk in chunks(of: input.bytes) where open {
        _ = try? channel.writeInbound(ByteBuffer(bytes: chunk))
        // Answering a request releases the next pipelined one, so read until no part is left.
        while open, !parts.received.isEmpty {
            let part = parts.received.removeFirst()
            switch assembler.receive(part) {
            case .none:
                break
            case .deliver(let request):
                let status = check(request)
                answer(channel, status: status, keepAlive: request.keepAlive)
                open = request.keepAlive
            case .reject(let rejection):
                switch rejection {
                case .bodyTooLarge(let limit):
                    fuzzCheck(limit == maxBodyBytes, "413 names the limit \(limit), not \(maxBodyBytes)")
                case .malformed:
                    break
                }
                open = false
            }
        }
        if let error = parts.error {
            // NIO's error handler answers a request it cannot decode with 400; the error ends the server's read
            // loop, which closes the connection.
            fuzzCheck(error is HTTPParserError, "the decoder failed with \(error), not an HTTPParserError")
            let written = drain(channel)
            fuzzCheck(written.hasPrefix("HTTP/1.1 400 Bad Request\r\n") || written.contains("\r\n\r\nHTTP/1.1 400 Bad Request\r\n"),
                      "a request that does not decode is not answered with 400")
            open = false
        }
        _ = drain(channel)
    }
    return 0
}

let maxBodyBytes = 1024

/// The request parts that reach the end of the pipeline, and the decoder's error.
final class PartCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    var received: [HTTPServerRequestPart] = []
    var error: (any Error)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.append(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.error == nil { self.error = error }
    }
}

/// Up to four chunks, cut where a hash of the input says: the decoder sees a request split at arbitrary points.
func chunks(of bytes: UnsafeRawBufferPointer) -> [UnsafeRawBufferPointer] {
    var state = UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.last ?? 0) &* 0xBF58_476D_1CE4_E5B9
    func next() -> UInt64 {
        state ^= state >> 31
        state = state &* 0x94D0_49BB_1331_11EB
        state ^= state >> 29
        return state
    }
    guard bytes.count > 1 else { return [bytes] }
    let cuts = (0..<Int(next() % 4)).map { _ in Int(next() % UInt64(bytes.count)) }.sorted()
    var out: [UnsafeRawBufferPointer] = []
    var from = 0
    for cut in cuts + [bytes.count] where cut > from {
        out.append(UnsafeRawBufferPointer(rebasing: bytes[from..<cut]))
        from = cut
    }
    return out
}

/// ext_authz's HTTP mode for one request: the original request's target, method, headers and body as a
/// `CheckRequest`, mapped with its path normalization; a refused path is decided (the decision on the rest is
/// `FuzzCheckRequest`'s). Returns the status the proxy is given (200 for a request that is not refused).
func check(_ request: HTTPRequest) -> Int {
    fuzzCheck(request.body.count <= maxBodyBytes, "a body of \(request.body.count) bytes was delivered past the limit")
    let lengths = request.headers.filter { $0.name.lowercased() == "content-length" }
    if lengths.count == 1, !request.headers.contains(where: { $0.name.lowercased() == "transfer-encoding" }),
       let length = Int(lengths[0].value) {
        fuzzCheck(request.body.count == length, "content-length \(length) but a body of \(request.body.count) bytes")
    }
    _ = request.path
    _ = request.queryParameter("v")

    var target = request.target
    if target.isEmpty || target.first == "?" { target = "/" + target }
    let check = HTTPCheckRequest.make(
        method: request.method, target: target, headers: request.headers, body: request.body,
        source: .init(address: "10.1.2.3", port: 43210))
    let attributes = FuzzCheckPath.map(check)
    let path = attributes.http.path ?? ""
    guard attributes.http.refusal != nil else {
        if !path.isEmpty {
            let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            fuzzCheck(path.hasPrefix("/"), "normalized path `\(path)` is not absolute")
            fuzzCheck(!path.contains("\\"), "normalized path `\(path)` keeps a backslash")
            fuzzCheck(!path.contains(";"), "normalized path `\(path)` keeps a path parameter")
            fuzzCheck(!segments.contains { $0 == "." || $0 == ".." }, "normalized path `\(path)` keeps a dot segment")
            fuzzCheck(!segments.dropLast().contains { $0.isEmpty }, "normalized path `\(path)` keeps an empty segment")
        }
        return 200
    }
    guard case .denied(let denied) = FuzzCheckPath.decide(attributes, check).outcome, denied.httpStatus == 400 else {
        fuzzCheck(false, "a refused path `\(path)` is not denied with 400")
        return 500
    }
    return 400
}

func answer(_ channel: EmbeddedChannel, status: Int, keepAlive: Bool) {
    var headers = HTTPHeaders([("content-length", "0")])
    if !keepAlive { headers.add(name: "connection", value: "close") }
    let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
    _ = try? channel.writeOutbound(HTTPServerResponsePart.head(head))
    _ = try? channel.writeOutbound(HTTPServerResponsePart.end(nil))
}

/// What the connection wrote, as text.
func drain(_ channel: EmbeddedChannel) -> String {
    var text = ""
    while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
        text += String(decoding: buffer.readableBytesView, as: UTF8.self)
    }
    return text
}
