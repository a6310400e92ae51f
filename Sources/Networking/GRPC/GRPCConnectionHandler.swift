import Foundation
import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP2
import Synchronization

/// The gRPC calls of one HTTP/2 connection of the gRPC listener, read from the connection's frames: each stream's
/// call (headers, then length-prefixed messages) is kept by stream ID until it is whole, then answered in place
/// (`InPlaceMethod`) or handed whole to `GRPCServer`. No channel is made per stream: a stream costs one `Call` and
/// a table entry, and the answers of one read go out in one flush.
///
/// The wire rules are gRPC's over HTTP/2: a POST with `content-type: application/grpc`, `grpc-timeout` as the
/// deadline, messages uncompressed (only `identity` is accepted), and the answer as response headers, one data
/// frame and trailers carrying `grpc-status`, or a trailers-only response for an error.
///
/// Bounds, each checked as bytes arrive: a request larger than `maxMessageBytes` is answered RESOURCE_EXHAUSTED
/// and the stream reset; one not whole within `requestTimeout` (or its `grpc-timeout`) is answered
/// DEADLINE_EXCEEDED and reset; the bytes held are charged to the listener's `ListenerByteBudget` (a stream that
/// would pass it is reset) and to the connection's `RequestByteBudget`. Flow control is this handler's (swift-nio-http2
/// leaves it to whoever reads the frames): a stream's window is topped up as its request arrives, and the
/// connection's only while the connection's streams hold less than their budget, so a client that fills the budget
/// is stopped by HTTP/2 flow control after at most one connection window more.
final class GRPCConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    struct Limits: Sendable {
        var maxMessageBytes: Int
        var requestTimeout: TimeAmount
        /// SETTINGS_INITIAL_WINDOW_SIZE: the window a stream is topped up to while its request arrives (and the
        /// connection's, when larger than HTTP/2's initial 65,535 bytes).
        var streamWindowBytes: Int = 65_535
        var observer: (any ListenerLimitObserver)?
    }

    /// One stream's call, from its headers until it is answered, or, handed off, until the stream closes.
    private final class Call {
        let id: HTTP2StreamID
        let path: String
        let headers: HPACKHeaders
        /// The client's deadline (`grpc-timeout`).
        let deadline: NIODeadline?
        var body: ByteBuffer?
        /// Bytes of this call charged to the budgets.
        var charged = 0
        var timer: Scheduled<Void>?
        /// Answered, refused or handed off: no more of its request is read.
        var done = false
        /// Handed to `GRPCServer`: completed when the stream closes.
        var handedOff: EventLoopPromise<Void>?

        init(id: HTTP2StreamID, path: String, headers: HPACKHeaders, deadline: NIODeadline?) {
            self.id = id
            self.path = path
            self.headers = headers
            self.deadline = deadline
        }
    }

    private let inPlace: [String: InPlaceMethod]
    private let limits: Limits
    private let budget: RequestByteBudget
    private let listenerBudget: ListenerByteBudget
    private let peers: GRPCListener.Peers
    private let handOffs: AsyncStream<GRPCListener.HandOff>.Continuation
    /// The connection's TLS client, once its handshake has named it (see `TLSPeerHandler`).
    var tlsPeer: TLSPeer?
    private var calls: [HTTP2StreamID: Call] = [:]
    /// The newest stream a call began on.
    private var newestStream = HTTP2StreamID.rootStream
    /// Calls that began in this read and may still be arriving when it completes: their timers are armed then.
    private var arriving: [Call] = []
    /// The connection's receive window as swift-nio-http2 last reported it.
    private var connectionWindow = 65_535
    private let connectionTarget: Int
    /// The budget is spent and the connection's window is withheld until it has room again.
    private var withholding = false
    private var needsFlush = false

    init(inPlace: [String: InPlaceMethod], limits: Limits, budget: RequestByteBudget, listenerBudget: ListenerByteBudget,
         peers: GRPCListener.Peers, handOffs: AsyncStream<GRPCListener.HandOff>.Continuation) {
        self.inPlace = inPlace
        self.limits = limits
        self.budget = budget
        self.listenerBudget = listenerBudget
        self.peers = peers
        self.handOffs = handOffs
        self.connectionTarget = max(65_535, limits.streamWindowBytes)
    }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let call = calls[frame.streamID] {
                // Trailers end a request; a stream already answered ignores them.
                if headers.endStream, !call.done { complete(call, context: context) }
                return
            }
            // A client opens streams in increasing order: headers on an older stream are the trailers of a call
            // already answered.
            guard frame.streamID > newestStream else { return }
            newestStream = frame.streamID
            guard let call = accept(frame.streamID, headers.headers, context: context) else { return }
            if headers.endStream {
                complete(call, context: context)
            } else {
                calls[frame.streamID] = call
                arriving.append(call)
            }
        case .data(let payload):
            guard let call = calls[frame.streamID], !call.done, case .byteBuffer(var bytes) = payload.data else { return }
            // Each message carries a 5-byte prefix; a unary call has one.
            if (call.body?.readableBytes ?? 0) + bytes.readableBytes > limits.maxMessageBytes + 5 {
                limits.observer?.limitEnforced(.maxMessageBytes)
                fail(call, context, code: .resourceExhausted, "request message larger than \(limits.maxMessageBytes) bytes",
                     reset: true)
                return
            }
            guard listenerBudget.take(bytes.readableBytes) else {
                limits.observer?.limitEnforced(.maxBufferedBytes)
                fail(call, context, code: .resourceExhausted, ListenerByteBudget.refusal(limit: listenerBudget.limit), reset: true)
                return
            }
            call.charged += bytes.readableBytes
            budget.charge(bytes.readableBytes)
            if call.body == nil { call.body = bytes } else { call.body!.writeBuffer(&bytes) }
            if payload.endStream { complete(call, context: context) }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Arm the timer only for a call still arriving: most arrive whole in one read.
        for call in arriving where !call.done && call.timer == nil { armTimer(call, context: context) }
        arriving.removeAll(keepingCapacity: true)
        flushPending(context)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let window as NIOHTTP2WindowUpdatedEvent:
            guard let size = window.inboundWindowSize else { break }
            if window.streamID == .rootStream {
                connectionWindow = size
            } else if size <= limits.streamWindowBytes / 2, let call = calls[window.streamID], !call.done {
                // A request still arriving may send a stream window more.
                let update = HTTP2Frame(
                    streamID: window.streamID, payload: .windowUpdate(windowSizeIncrement: limits.streamWindowBytes - size))
                context.write(wrapOutboundOut(update), promise: nil)
                needsFlush = true
            }
        case let closed as StreamClosedEvent:
            if let call = calls.removeValue(forKey: closed.streamID) {
                finish(call)
                call.handedOff?.succeed()
            }
        default:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        endAllCalls()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        endAllCalls()
    }

    /// The connection is gone: every call's bytes go back, and handed-off calls learn their stream closed.
    private func endAllCalls() {
        for call in calls.values {
            finish(call)
            call.handedOff?.succeed()
        }
        calls = [:]
    }

    /// A handed-off call's response goes out only while its stream is open.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        guard frame.streamID == .rootStream || calls[frame.streamID]?.handedOff != nil else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(data, promise: promise)
    }

    /// Tops the connection's window up, unless its streams hold their most bytes: then the client is stopped by
    /// flow control until answers give bytes back.
    private func topUpConnectionWindow(_ context: ChannelHandlerContext) {
        guard connectionWindow <= connectionTarget / 2 else { return }
        if budget.isSpent {
            if !withholding {
                withholding = true
                limits.observer?.limitEnforced(.maxConnectionBufferBytes)
            }
            return
        }
        withholding = false
        let update = HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: connectionTarget - connectionWindow))
        context.write(wrapOutboundOut(update), promise: nil)
        connectionWindow = connectionTarget
        needsFlush = true
    }

    private func armTimer(_ call: Call, context: ChannelHandlerContext) {
        let arrival = context.eventLoop.now + limits.requestTimeout
        let clientDeadlineFirst = call.deadline.map { $0 < arrival } ?? false
        let loopBound = NIOLoopBound((self, context, call), eventLoop: context.eventLoop)
        call.timer = context.eventLoop.scheduleTask(deadline: clientDeadlineFirst ? call.deadline! : arrival) {
            let (handler, context, call) = loopBound.value
            guard !call.done else { return }
            if clientDeadlineFirst {
                handler.fail(call, context, code: .deadlineExceeded, "deadline exceeded before the request arrived", reset: true)
            } else {
                handler.limits.observer?.limitEnforced(.requestTimeout)
                let milliseconds = handler.limits.requestTimeout.nanoseconds / 1_000_000
                handler.fail(call, context, code: .deadlineExceeded,
                             "request not whole within the server's request timeout of \(milliseconds) ms", reset: true)
            }
            handler.flushPending(context)
        }
    }

    /// What was written (answers, window updates) goes out, with the connection's window topped up if bytes came
    /// back: at the end of a read, or after a timer's answer.
    private func flushPending(_ context: ChannelHandlerContext) {
        topUpConnectionWindow(context)
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    /// No more of the call is read: its timer stops and its bytes go back to the budgets.
    private func finish(_ call: Call) {
        call.done = true
        call.timer?.cancel()
        call.timer = nil
        call.body = nil
        guard call.charged > 0 else { return }
        budget.refund(call.charged)
        listenerBudget.give(call.charged)
        call.charged = 0
    }

    /// Checks the request headers; answers and returns nil when the call cannot proceed.
    private func accept(_ id: HTTP2StreamID, _ headers: HPACKHeaders, context: ChannelHandlerContext) -> Call? {
        guard headers.first(name: ":method") == "POST" else {
            respondHTTP(id, context, status: "405")
            return nil
        }
        guard let type = headers.first(name: "content-type"), type.hasPrefix("application/grpc") else {
            respondHTTP(id, context, status: "415")
            return nil
        }
        let deadline = headers.first(name: "grpc-timeout").flatMap(Self.timeout).map { context.eventLoop.now + $0 }
        let call = Call(id: id, path: headers.first(name: ":path") ?? "", headers: headers, deadline: deadline)
        if let encoding = headers.first(name: "grpc-encoding"), encoding != "identity" {
            fail(call, context, code: .unimplemented, "compression `\(encoding)` is not supported",
                 extra: [("grpc-accept-encoding", "identity")], reset: false)
            return nil
        }
        return call
    }

    /// The request is whole: decode its messages and answer or hand it off.
    private func complete(_ call: Call, context: ChannelHandlerContext) {
        let body = call.body
        finish(call)
        if let deadline = call.deadline, deadline < context.eventLoop.now {
            fail(call, context, code: .deadlineExceeded, "deadline exceeded before the request arrived", reset: false)
            return
        }
        guard let messages = Self.messages(in: body) else {
            fail(call, context, code: .internalError, "malformed or compressed gRPC message framing", reset: false)
            return
        }
        if let method = inPlace[call.path] {
            calls[call.id] = nil
            guard messages.count == 1 else {
                fail(call, context, code: .unimplemented,
                     "a unary call takes exactly one request message, got \(messages.count)", reset: false)
                return
            }
            do {
                respond(call.id, context, message: try method.respond(messages[0], tlsPeer))
            } catch let error as RPCError {
                fail(call, context, code: error.code, error.message, reset: false)
            } catch {
                fail(call, context, code: .internalError, "\(error)", reset: false)
            }
            return
        }
        handOff(call, messages: messages, context: context)
    }

    private func handOff(_ call: Call, messages: [[UInt8]], context: ChannelHandlerContext) {
        guard let descriptor = Self.descriptor(path: call.path) else {
            fail(call, context, code: .unimplemented, "no method `\(call.path)`", reset: false)
            return
        }
        var metadata = Metadata()
        for (name, value, _) in call.headers where !name.hasPrefix(":") {
            if name.hasSuffix("-bin") {
                if let bytes = Data(base64Encoded: Self.padded(value)) { metadata.addBinary(Array(bytes), forKey: name) }
            } else {
                metadata.addString(value, forKey: name)
            }
        }
        let closed = context.eventLoop.makePromise(of: Void.self)
        call.handedOff = closed
        calls[call.id] = call
        let inbound = RequestParts(parts: [.metadata(metadata)] + messages.map { .message($0) })
        let outbound = StreamResponseWriter(channel: context.channel, stream: call.id)
        let stream = RPCStream(
            descriptor: descriptor, inbound: RPCAsyncSequence(wrapping: inbound), outbound: RPCWriter.Closable(wrapping: outbound))
        let handOff = GRPCListener.HandOff(stream: stream, descriptor: descriptor, peers: peers, closed: closed.futureResult)
        if case .terminated = handOffs.yield(handOff) {
            calls[call.id] = nil
            call.handedOff = nil
            closed.succeed()
            fail(call, context, code: .unavailable, "the server is shutting down", reset: false)
        }
    }

    // MARK: - Writing

    static let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
    static let okTrailers: HPACKHeaders = ["grpc-status": "0"]

    private func respond(_ id: HTTP2StreamID, _ context: ChannelHandlerContext, message: [UInt8]) {
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: Self.responseHeaders)))),
                      promise: nil)
        let data = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(Self.frame(message, allocator: context.channel.allocator))))
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: data)), promise: nil)
        context.write(
            wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: Self.okTrailers, endStream: true)))),
            promise: nil)
        needsFlush = true
    }

    /// A trailers-only response carrying an error status; `reset` also ends a request still arriving.
    private func fail(_ call: Call, _ context: ChannelHandlerContext, code: RPCError.Code, _ message: String,
                      extra: [(String, String)] = [], reset: Bool) {
        finish(call)
        calls[call.id] = nil
        var headers = Self.responseHeaders
        headers.add(contentsOf: Self.status(Status.Code(code), message: message))
        for (name, value) in extra { headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(HTTP2Frame(streamID: call.id, payload: .headers(.init(headers: headers, endStream: true)))),
                      promise: nil)
        if reset { context.write(wrapOutboundOut(HTTP2Frame(streamID: call.id, payload: .rstStream(.cancel))), promise: nil) }
        needsFlush = true
    }

    /// Not a gRPC call: an HTTP status, and the stream reset.
    private func respondHTTP(_ id: HTTP2StreamID, _ context: ChannelHandlerContext, status: String) {
        context.write(
            wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: [":status": status], endStream: true)))),
            promise: nil)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(.cancel))), promise: nil)
        needsFlush = true
    }

    static func frame(_ message: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: message.count + 5)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
        return buffer
    }

    /// `grpc-status` and, when there is one, `grpc-message` percent-encoded as gRPC asks.
    static func status(_ code: Status.Code, message: String) -> HPACKHeaders {
        var headers: HPACKHeaders = ["grpc-status": String(code.rawValue)]
        if !message.isEmpty {
            var encoded = ""
            for byte in message.utf8 {
                if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                    encoded.unicodeScalars.append(Unicode.Scalar(byte))
                } else {
                    encoded += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
                }
            }
            headers.add(name: "grpc-message", value: encoded)
        }
        return headers
    }

    // MARK: - Reading

    /// The messages of a request body, or nil when the framing is broken or a message is compressed.
    static func messages(in body: ByteBuffer?) -> [[UInt8]]? {
        guard var body else { return [] }
        var messages: [[UInt8]] = []
        while body.readableBytes > 0 {
            guard let flag = body.readInteger(as: UInt8.self), flag == 0,
                  let length = body.readInteger(as: UInt32.self), let bytes = body.readBytes(length: Int(length))
            else { return nil }
            messages.append(bytes)
        }
        return messages
    }

    /// `grpc-timeout`: up to eight digits and a unit (H, M, S, m, u, n).
    static func timeout(_ value: String) -> TimeAmount? {
        guard let unit = value.last, value.count >= 2, value.count <= 9, let amount = Int64(value.dropLast()), amount >= 0
        else { return nil }
        switch unit {
        case "H": return .hours(amount)
        case "M": return .minutes(amount)
        case "S": return .seconds(amount)
        case "m": return .milliseconds(amount)
        case "u": return .microseconds(amount)
        case "n": return .nanoseconds(amount)
        default: return nil
        }
    }

    static func padded(_ base64: String) -> String {
        base64 + String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
    }

    /// The method named by a `:path` of the form `/package.Service/Method`.
    static func descriptor(path: String) -> MethodDescriptor? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else { return nil }
        return MethodDescriptor(fullyQualifiedService: String(parts[1]), method: String(parts[2]))
    }
}

/// A handed-off request's parts, already read.
struct RequestParts: AsyncSequence, Sendable {
    typealias Element = RPCRequestPart<[UInt8]>
    let parts: [Element]

    struct AsyncIterator: AsyncIteratorProtocol {
        var parts: IndexingIterator<[Element]>
        mutating func next() async throws -> Element? { parts.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(parts: parts.makeIterator()) }
}

/// Writes `GRPCServer`'s response parts onto a stream of the connection: response headers, messages, then
/// trailers (or a trailers-only response when the call ends before any headers).
final class StreamResponseWriter: ClosableRPCWriterProtocol {
    typealias Element = RPCResponsePart<[UInt8]>
    let channel: any Channel
    let stream: HTTP2StreamID
    private let headersSent = Mutex(false)

    init(channel: any Channel, stream: HTTP2StreamID) {
        self.channel = channel
        self.stream = stream
    }

    func write(_ element: Element) async throws {
        try await write(contentsOf: CollectionOfOne(element))
    }

    func write(contentsOf elements: some Sequence<Element>) async throws {
        var last: EventLoopFuture<Void>?
        for element in elements {
            let payload: HTTP2Frame.FramePayload
            switch element {
            case .metadata(let metadata):
                headersSent.withLock { $0 = true }
                payload = .headers(.init(headers: GRPCConnectionHandler.responseHeaders + Self.headers(metadata)))
            case .message(let bytes):
                payload = .data(.init(data: .byteBuffer(GRPCConnectionHandler.frame(bytes, allocator: channel.allocator))))
            case .status(let status, let metadata):
                var headers = headersSent.withLock { $0 } ? HPACKHeaders() : GRPCConnectionHandler.responseHeaders
                headers.add(contentsOf: GRPCConnectionHandler.status(status.code, message: status.message))
                headers.add(contentsOf: Self.headers(metadata))
                payload = .headers(.init(headers: headers, endStream: true))
            }
            last = channel.write(HTTP2Frame(streamID: stream, payload: payload))
        }
        channel.flush()
        do {
            try await last?.get()
        } catch {
            throw RPCError(code: .cancelled, message: "the stream closed", cause: error)
        }
    }

    func finish() async {}

    func finish(throwing error: any Error) async {
        channel.write(HTTP2Frame(streamID: stream, payload: .rstStream(.cancel)), promise: nil)
        channel.flush()
    }

    static func headers(_ metadata: Metadata) -> HPACKHeaders {
        var headers = HPACKHeaders()
        for (key, value) in metadata {
            switch value {
            case .string(let text): headers.add(name: key, value: text)
            case .binary(let bytes): headers.add(name: key, value: Data(bytes).base64EncodedString())
            }
        }
        return headers
    }
}

private func + (lhs: HPACKHeaders, rhs: HPACKHeaders) -> HPACKHeaders {
    var out = lhs
    out.add(contentsOf: rhs)
    return out
}
