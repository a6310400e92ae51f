import ExtAuthz
import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
@_spi(Fuzzing) import Networking
import PolicyCore

/// Any bytes as one connection's byte stream to the data plane's HTTP/1.1 listener, arriving in a few chunks whose
/// sizes the input decides: the listener's own in-place connection (`InPlaceHTTPHarness`: NIO's decoder and
/// `InPlaceHTTPConnection` with its `HTTPRequestAssembler`, a 1 KiB body limit) reads them, and every request it
/// delivers is checked as ext_authz's HTTP mode checks it (`HTTPCheckRequest`, the mapping with its path
/// normalization) and answered; then virtual time passes beyond the request and idle timeouts.
///
/// Invariants: a delivered body is within the limit and as long as a lone `content-length` says; the bytes written
/// are one response per delivered request, in order, then at most one refusal (413 naming the limit, or 400), after
/// which nothing more is delivered and the connection is closed; a normalized path is absolute, with no backslash,
/// dot segment, empty segment or `;` parameter left; a refused path is denied with 400; once the idle timeout has
/// passed the connection is closed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPRequest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    let channel = EmbeddedChannel()
    let delivered = Delivered()
    let options = HTTPServer.Options(
        host: "127.0.0.1", port: 0, maxBodyBytes: maxBodyBytes, idleTimeout: .seconds(60), requestTimeout: .seconds(10))
    try! InPlaceHTTPHarness.configure(channel, options: options) { request, _ in
        fuzzCheck(!delivered.refused, "a request was delivered after a refusal")
        let status = check(request) == 200 ? 200 : refusedPathStatus
        delivered.statuses.append(status)
        return HTTPResponse(status: status)
    }
    try! channel.connect(to: SocketAddress(ipAddress: "10.1.2.3", port: 43210)).wait()
    defer { _ = try? channel.finish() }

    var written = ""
    for chunk in chunks(of: input.bytes) where channel.isActive {
        _ = try? channel.writeInbound(ByteBuffer(bytes: chunk))
        written += drain(channel)
        delivered.refused = written.contains(" 400 Bad Request\r\n") || written.contains(" 413 Payload Too Large\r\n")
    }
    checkResponses(written, answered: delivered.statuses)
    channel.embeddedEventLoop.advanceTime(by: .seconds(61))
    fuzzCheck(!channel.isActive, "the connection is open after the idle timeout")
    return 0
}

let maxBodyBytes = 1024
/// What the harness answers a request whose path the normalizer refuses (distinct from the listener's own 400).
let refusedPathStatus = 451

/// The statuses answered to delivered requests, in order, and whether the connection has refused one.
final class Delivered: @unchecked Sendable {
    var statuses: [Int] = []
    var refused = false
}

/// The written bytes are a response per delivered request with its status, then at most one refusal.
func checkResponses(_ written: String, answered: [Int]) {
    var rest = Substring(written)
    var statuses: [Int] = []
    while !rest.isEmpty {
        fuzzCheck(rest.hasPrefix("HTTP/1.1 "), "a response does not start with a status line: \(rest.prefix(40))")
        guard let headEnd = rest.range(of: "\r\n\r\n"), let status = Int(rest.dropFirst(9).prefix(3)) else {
            fuzzCheck(false, "a response head is cut short")
            return
        }
        statuses.append(status)
        let head = rest[..<headEnd.lowerBound], after = rest[headEnd.upperBound...]
        if status == 400 || status == 413 {
            // A refusal's text (none when it answers a HEAD) names the limit; nothing follows it.
            fuzzCheck(status == 400 || after.isEmpty || after.contains("limit of \(maxBodyBytes) bytes"), "413 does not name the limit")
            fuzzCheck(!after.contains("HTTP/1.1 "), "a response follows a refusal")
            break
        }
        fuzzCheck(head.contains("\r\ncontent-length: 0"), "an answer carries a body: \(head)")
        rest = rest[headEnd.upperBound...]
    }
    let answeredCount = statuses.count - (statuses.last.map { $0 == 400 || $0 == 413 } == true ? 1 : 0)
    fuzzCheck(Array(statuses.prefix(answeredCount)) == answered, "responses \(statuses) for answers \(answered)")
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

/// What the connection wrote, as text.
func drain(_ channel: EmbeddedChannel) -> String {
    var text = ""
    while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
        text += String(decoding: buffer.readableBytesView, as: UTF8.self)
    }
    return text
}
