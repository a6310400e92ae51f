import NIOCore
import NIOHTTP1

/// One connection of a listener whose every answer is computed in place (`HTTPServer.Answer.inPlace`): the data
/// plane, which a proxy calls once per request. The pipeline is NIO's HTTP/1 decoder and this handler alone.
///
/// Each request is answered before the next is read, so responses leave in request order without NIO's pipelining
/// handler; the response is written as one buffer (`HTTPResponse.encoded`) without NIO's encoder; and the idle
/// timeout and the request deadline share this handler instead of a handler each. Every handler a request passes
/// costs a few hops per part, which at one connection and one request at a time is latency (BENCHMARKS.md).
///
/// Bounds: a request still arriving `requestTimeout` after the read that left it unfinished closes the connection
/// (a slowloris; the timer is armed only when a read ends with a request unfinished, so whole requests pay
/// nothing); a connection with no read for `idleTimeout` is closed; a request the decoder refuses is answered 400
/// and the connection closed, as NIO's error handler does; the body bytes held count against the listener's
/// `ListenerByteBudget` until the request is answered.
final class InPlaceHTTPConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    private let answer: @Sendable (HTTPRequest, HTTPServer.Connection) -> HTTPResponse
    private let reject: @Sendable (HTTPRejection) -> HTTPResponse
    private let peerSlot: TLSPeerSlot?
    private let idleTimeout: TimeAmount
    private let requestTimeout: TimeAmount
    private var assembler: HTTPRequestAssembler
    private var connection: HTTPServer.Connection?
    /// The method of the request being received: a response to HEAD carries no body.
    private var isHead = false
    /// Parts of a request arrived since the last one was answered.
    private var receiving = false
    /// A request was answered during the current read.
    private var answeredThisRead = false
    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    private var idleTimer: Scheduled<Void>?
    private var requestTimer: Scheduled<Void>?
    /// Graceful shutdown asked to close once the request being received is answered.
    private var closeAfterAnswer = false
    private var closed = false

    init(server: HTTPServer, answer: @escaping @Sendable (HTTPRequest, HTTPServer.Connection) -> HTTPResponse,
         peer: TLSPeerSlot?, budget: ListenerByteBudget) {
        self.answer = answer
        self.reject = server.reject
        self.peerSlot = peer
        self.idleTimeout = server.options.idleTimeout
        self.requestTimeout = server.options.requestTimeout
        self.assembler = HTTPRequestAssembler(maxBodyBytes: server.options.maxBodyBytes, budget: budget)
    }

    /// The connection's pipeline after TLS: NIO's decoder, then this handler.
    static func configure(
        _ pipeline: ChannelPipeline.SynchronousOperations, server: HTTPServer,
        answer: @escaping @Sendable (HTTPRequest, HTTPServer.Connection) -> HTTPResponse, peer: TLSPeerSlot?,
        budget: ListenerByteBudget
    ) throws {
        try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        try pipeline.addHandler(InPlaceHTTPConnection(server: server, answer: answer, peer: peer, budget: budget))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startIdleClock(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if idleTimer == nil { startIdleClock(context) }
        context.fireChannelActive()
    }

    private func startIdleClock(_ context: ChannelHandlerContext) {
        lastRead = context.eventLoop.now
        scheduleIdleCheck(context, at: lastRead + idleTimeout)
    }

    func channelInactive(context: ChannelHandlerContext) {
        assembler.giveBack()
        closed = true
        idleTimer?.cancel()
        requestTimer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        let part = unwrapInboundIn(data)
        if case .head(let head) = part { isHead = head.method == .HEAD }
        receiving = true
        switch assembler.receive(part) {
        case .none:
            break
        case .deliver(let request):
            respond(answer(request, connectionInfo(context)), keepAlive: request.keepAlive && !closeAfterAnswer,
                    context: context)
        case .reject(let rejection):
            respond(reject(rejection), keepAlive: false, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        lastRead = context.eventLoop.now
        // Bytes that did not complete a request (a partial head sits in the decoder, a body is still arriving):
        // the request must be whole by the deadline.
        if !closed, receiving || !answeredThisRead, requestTimer == nil {
            let channel = context.channel
            requestTimer = context.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
        }
        answeredThisRead = false
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        // Graceful shutdown: an idle connection closes now, one receiving a request once it is answered.
        if receiving { closeAfterAnswer = true } else { close(context) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A request the decoder refuses is answered, unless a response already went out for it; any other error is
        // the peer gone. Either way only this connection is affected.
        if error is HTTPParserError, !closed {
            respond(reject(.malformed), keepAlive: false, context: context)
        } else {
            close(context)
        }
    }

    private func respond(_ response: HTTPResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        assembler.giveBack()
        guard !closed else { return }
        receiving = false
        answeredThisRead = true
        requestTimer?.cancel()
        requestTimer = nil
        let bytes = response.encoded(keepAlive: keepAlive, omitBody: isHead, allocator: context.channel.allocator)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        } else {
            closed = true
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func close(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        context.close(promise: nil)
    }

    /// Closes the connection once no read has come for the idle timeout; re-armed for the time left after each read.
    private func scheduleIdleCheck(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            guard !handler.closed else { return }
            let due = handler.lastRead + handler.idleTimeout
            if due <= context.eventLoop.now { handler.close(context) } else { handler.scheduleIdleCheck(context, at: due) }
        }
    }

    /// The connection's addresses, and its TLS peer once the handshake has named it (a request is read only after
    /// the handshake, so the peer is known by the first one).
    private func connectionInfo(_ context: ChannelHandlerContext) -> HTTPServer.Connection {
        if let connection { return connection }
        let info = HTTPServer.Connection(context.channel, peer: peerSlot?.value)
        connection = info
        return info
    }
}

extension HTTPServer.Connection {
    init(_ channel: any Channel, peer: TLSPeer?) {
        let remote = channel.remoteAddress, local = channel.localAddress
        self.init(remoteIP: remote?.ipAddress, remotePort: remote?.port, localIP: local?.ipAddress, localPort: local?.port,
                  peer: peer)
    }
}

extension HTTPResponse {
    /// The response as HTTP/1.1 bytes: status line, headers with `content-length` (and `connection: close` when the
    /// connection closes after it), body. A header whose name is not a token or whose value holds CR, LF or NUL
    /// would let an application's text split the response: such a response becomes a bodiless 500 instead.
    /// `omitBody` answers HEAD. 1xx, 204 and 304 carry neither body nor length.
    func encoded(keepAlive: Bool, omitBody: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard headers.allSatisfy({ Self.isFieldName($0.name) && Self.isFieldValue($0.value) }) else {
            return HTTPResponse(status: 500).encoded(keepAlive: keepAlive, omitBody: true, allocator: allocator)
        }
        let bodiless = status < 200 || status == 204 || status == 304
        var buffer = allocator.buffer(capacity: 128 + headers.count * 48 + (omitBody || bodiless ? 0 : body.count))
        let status = HTTPResponseStatus(statusCode: status)
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status.code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        for field in headers {
            let name = field.name.utf8
            // The length and the connection's fate are this writer's to say.
            if name.count == 14, field.name.lowercased() == "content-length" { continue }
            if name.count == 10, field.name.lowercased() == "connection" { continue }
            buffer.writeString(field.name)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        if !bodiless {
            buffer.writeStaticString("content-length: ")
            buffer.writeString(String(body.count))
            buffer.writeStaticString("\r\n")
        }
        if !keepAlive { buffer.writeStaticString("connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        if !omitBody, !bodiless { buffer.writeBytes(body) }
        return buffer
    }

    /// RFC 9110's `token`: what a field name may be.
    public static func isFieldName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default:
                "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }

    /// A field value without the bytes that end a field or a message (CR, LF, NUL).
    public static func isFieldValue(_ text: String) -> Bool {
        !text.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }
}

/// An in-place HTTP/1.1 connection as `HTTPServer` sets it up, for a harness that drives it on an `EmbeddedChannel`
/// (Warden's HTTP request fuzz target): bytes in, response bytes out. Not part of the service's API.
@_spi(Fuzzing)
public enum InPlaceHTTPHarness {
    public static func configure(
        _ channel: any Channel, options: HTTPServer.Options,
        answer: @escaping @Sendable (HTTPRequest, HTTPServer.Connection) -> HTTPResponse
    ) throws {
        let server = HTTPServer(options: options, answer: .inPlace(answer))
        try InPlaceHTTPConnection.configure(
            channel.pipeline.syncOperations, server: server, answer: answer, peer: nil,
            budget: ListenerByteBudget(limit: options.maxBufferedBytes))
    }
}
