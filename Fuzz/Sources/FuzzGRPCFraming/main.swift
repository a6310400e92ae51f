import ExtAuthz
import FuzzSupport
import GRPCCore
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
@_spi(Fuzzing) import Networking
import SwiftProtobuf

/// Any bytes as the body of one gRPC call to the gRPC listener's connection handler (`GRPCConnectionHandler`, with
/// the ext_authz Check answered in place), on an embedded loop with virtual time, on stream 1. The first three bytes choose the
/// request headers (method, content-type, `grpc-encoding`, `grpc-timeout`, the method path, a binary metadata
/// entry), how the call ends (end of stream on the last DATA frame, trailers, never, or a frame after the end)
/// and how the body is cut into DATA frames; then time passes beyond every deadline.
///
/// Invariants: the handler answers exactly once, as a trailers-only response (an error status, or 405/415 for a
/// request that is not gRPC) or as headers, one length-prefixed message and OK trailers (a reset may follow an
/// error); it writes only on the call's stream and the connection's (window updates); the stream never holds
/// more than one message of the limit; every byte it held is given back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGRPCFraming(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    guard input.bytes.count >= 3 else { return 0 }
    let control = (input.bytes[0], input.bytes[1], input.bytes[2])
    let pieces = Int(control.2 & 0x7)
    guard input.bytes.count >= 3 + pieces else { return 0 }
    let cuts = input.bytes[3..<(3 + pieces)]
    let body = UnsafeRawBufferPointer(rebasing: input.bytes[(3 + pieces)...])

    let harness = GRPCConnectionHarness(
        inPlace: [check], maxMessageBytes: maxMessageBytes, requestTimeout: requestTimeout, connectionBufferBytes: 1 << 20)
    let channel = EmbeddedChannel()
    try! channel.pipeline.syncOperations.addHandler(harness.handler)
    defer { _ = try? channel.finish() }

    // The headers.
    let method = control.0 >> 2 & 0x3 == 2 ? "GET" : "POST"
    var headers: HPACKHeaders = [":method": method, ":scheme": "http", ":path": paths[Int(control.1 & 0x7)]]
    if let type = contentTypes[Int(control.0 & 0x3)] { headers.add(name: "content-type", value: type) }
    headers.add(name: "te", value: "trailers")
    if let encoding = encodings[Int(control.0 >> 4 & 0x3)] { headers.add(name: "grpc-encoding", value: encoding) }
    if let timeout = timeouts[Int(control.1 >> 3 & 0x7)] { headers.add(name: "grpc-timeout", value: timeout) }
    if let binary = binaries[Int(control.1 >> 6 & 0x3)] { headers.add(name: "trace-bin", value: binary) }
    let headersEndStream = control.0 >> 2 & 0x3 == 3
    let ending = Int(control.0 >> 6)
    let step = steps[Int(control.2 >> 3 & 0x3)]

    // The DATA frames: the body cut where the input says.
    var frames: [ByteBuffer] = []
    var from = 0
    for cut in cuts.map({ Int($0) * body.count / 256 }).sorted() + [body.count] where cut >= from {
        frames.append(ByteBuffer(bytes: body[from..<cut]))
        from = cut
    }

    _ = try? channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: headers, endStream: headersEndStream))))
    for (index, frame) in frames.enumerated() {
        fuzzCheck(harness.bufferedBytes <= maxMessageBytes + 5, "the stream holds \(harness.bufferedBytes) bytes")
        if step > .zero { channel.embeddedEventLoop.advanceTime(by: step) }
        let last = index == frames.count - 1
        _ = try? channel.writeInbound(
            HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(frame), endStream: last && ending != 1 && ending != 2))))
    }
    switch ending {
    case 1: _ = try? channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: ["x-trailer": "1"], endStream: true))))
    case 3: _ = try? channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(bytes: [0, 0, 0, 0, 0]))))))
    default: break
    }
    // Past the request timeout, so a call still arriving is answered too.
    channel.embeddedEventLoop.advanceTime(by: requestTimeout + .seconds(1))

    var written: [HTTP2Frame.FramePayload] = []
    while let frame = try? channel.readOutbound(as: HTTP2Frame.self) {
        fuzzCheck(frame.streamID == 1 || frame.streamID == .rootStream, "a frame written on stream \(frame.streamID)")
        switch frame.payload {
        case .windowUpdate: break
        case .rstStream: fuzzCheck(!written.isEmpty, "a reset before the answer")
        default: written.append(frame.payload)
        }
    }
    checkAnswer(written)
    fuzzCheck(harness.peakBufferedBytes <= maxMessageBytes + 5,
              "the stream held \(harness.peakBufferedBytes) bytes, over one message of \(maxMessageBytes)")
    fuzzCheck(harness.bufferedBytes == 0, "the stream still holds \(harness.bufferedBytes) bytes after its answer")
    return 0
}

let maxMessageBytes = 4096
let requestTimeout = TimeAmount.milliseconds(100)
let contentTypes: [String?] = ["application/grpc", "application/grpc+proto", "application/json", nil]
let encodings: [String?] = [nil, "identity", "gzip", nil]
let timeouts: [String?] = [nil, nil, "1m", "100n", "99999999H", "5S", "x1m", "0n"]
let binaries: [String?] = [nil, "dGVzdA", "!!!", ""]
let steps: [TimeAmount] = [.zero, .zero, .milliseconds(1), .milliseconds(40)]
let checkPath = "/" + Envoy_Service_Auth_V3_Authorization.Method.Check.descriptor.fullyQualifiedMethod
let paths = [checkPath, checkPath, checkPath, checkPath, "/test.Unknown/Method", "/nonsense", "", checkPath + "/extra"]

/// The ext_authz Check answered in place: decoded as the server's method decodes it (INVALID_ARGUMENT when it does
/// not) and mapped; the answer is an OK `CheckResponse` (the decision is `FuzzCheckRequest`'s to fuzz).
let check = InPlaceMethod(descriptor: Envoy_Service_Auth_V3_Authorization.Method.Check.descriptor) { bytes, _ in
    let request: Envoy_Service_Auth_V3_CheckRequest
    do {
        request = try Envoy_Service_Auth_V3_CheckRequest(serializedBytes: bytes)
    } catch {
        throw RPCError(code: .invalidArgument, message: "the CheckRequest does not decode: \(error)")
    }
    _ = FuzzCheckPath.map(request)
    return try Envoy_Service_Auth_V3_CheckResponse.with { $0.status.code = 0 }.serializedBytes()
}

/// One answer: a trailers-only response, or headers, one message and OK trailers.
func checkAnswer(_ frames: [HTTP2Frame.FramePayload]) {
    let ends = frames.filter { if case .headers(let h) = $0 { h.endStream } else { false } }
    fuzzCheck(ends.count == 1, "\(ends.count) ends of stream written: \(frames)")
    guard case .headers(let last)? = frames.last, last.endStream else {
        fuzzCheck(false, "the answer does not end with trailers: \(frames)")
        return
    }
    switch frames.count {
    case 1:
        let status = last.headers.first(name: ":status")
        if status == "200" {
            let code = last.headers.first(name: "grpc-status").flatMap(Int.init)
            fuzzCheck(code.map { (1...16).contains($0) } == true, "a trailers-only answer with grpc-status \(String(describing: code))")
        } else {
            fuzzCheck(status == "405" || status == "415", "an answer with :status \(String(describing: status))")
        }
    case 3:
        guard case .headers(let head) = frames[0], case .data(let data) = frames[1],
              case .byteBuffer(var message) = data.data
        else {
            fuzzCheck(false, "an answer that is not headers, a message and trailers: \(frames)")
            return
        }
        fuzzCheck(head.headers.first(name: ":status") == "200", "response headers without :status 200")
        fuzzCheck(message.readInteger(as: UInt8.self) == 0 && message.readInteger(as: UInt32.self).map(Int.init) == message.readableBytes,
                  "a response message that is not one length-prefixed message")
        fuzzCheck(last.headers.first(name: "grpc-status") == "0", "a message answered with a status other than OK")
    default:
        fuzzCheck(false, "an answer of \(frames.count) frames: \(frames)")
    }
}
