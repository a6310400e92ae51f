import Foundation
import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP2
import Synchronization

/// One HTTP/2 stream of the gRPC listener: reads the call (headers, then length-prefixed messages), then either
/// answers it in place (`InPlaceMethod`) or hands it whole to `GRPCServer`.
///
/// The wire rules are gRPC's over HTTP/2: a POST with `content-type: application/grpc`, `grpc-timeout` as the
/// deadline, messages uncompressed (only `identity` is accepted), and the answer as response headers, one data
/// frame and trailers carrying `grpc-status`, or a trailers-only response for an error.
///
/// Bounds, each checked as bytes arrive: a request larger than `maxMessageBytes` is answered RESOURCE_EXHAUSTED
/// and the stream reset; one not whole within `requestTimeout` (or its `grpc-timeout`) is answered
/// DEADLINE_EXCEEDED and reset; and the bytes held are charged to the connection's `RequestByteBudget`, which makes
/// the stream stop reading (so flow control stops the client) while the connection's streams hold their most.
final class GRPCStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    struct Limits: Sendable {
        var maxMessageBytes: Int
        var requestTimeout: TimeAmount
        var observer: (any ListenerLimitObserver)?
    }

    private enum State {
        case awaitingHeaders
        case reading(Call)
        case done
    }

    private struct Call {
        var path: String
        var headers: HPACKHeaders
        /// The client's deadline (`grpc-timeout`).
        var deadline: NIODeadline?
        var body: ByteBuffer?
    }

    private let inPlace: [String: InPlaceMethod]
    private let limits: Limits
    private let budget: RequestByteBudget
    private let listenerBudget: ListenerByteBudget
    private let peers: GRPCListener.Peers
    private let tlsPeer: TLSPeer?
    private let handOffs: AsyncStream<GRPCListener.HandOff>.Continuation
    private var state = State.awaitingHeaders
    private var deadlineTimer: Scheduled<Void>?
    /// Bytes of this stream charged to the budget.
    private var charged = 0
    /// Waiting for room in the budget: `read` is held until then.
    private var waiting = false
    private var heldRead = false

    init(inPlace: [String: InPlaceMethod], limits: Limits, budget: RequestByteBudget, listenerBudget: ListenerByteBudget,
         peers: GRPCListener.Peers,
         tlsPeer: TLSPeer? = nil,
         handOffs: AsyncStream<GRPCListener.HandOff>.Continuation) {
        self.inPlace = inPlace
        self.limits = limits
        self.budget = budget
        self.listenerBudget = listenerBudget
        self.peers = peers
        self.tlsPeer = tlsPeer
        self.handOffs = handOffs
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.headers(let headers), .awaitingHeaders):
            guard let call = accept(headers.headers, context: context) else { return }
            state = .reading(call)
            if headers.endStream { complete(call, context: context) }
        case (.data(let frame), .reading(var call)):
            guard case .byteBuffer(var bytes) = frame.data else { return }
            // Drop the state's reference first, so appending to the body does not copy it on every frame.
            state = .done
            // Each message carries a 5-byte prefix; a unary call has one.
            if (call.body?.readableBytes ?? 0) + bytes.readableBytes > limits.maxMessageBytes + 5 {
                limits.observer?.limitEnforced(.maxMessageBytes)
                fail(context, code: .resourceExhausted, "request message larger than \(limits.maxMessageBytes) bytes", reset: true)
                return
            }
            guard listenerBudget.take(bytes.readableBytes) else {
                limits.observer?.limitEnforced(.maxBufferedBytes)
                fail(context, code: .resourceExhausted, ListenerByteBudget.refusal(limit: listenerBudget.limit), reset: true)
                return
            }
            charged += bytes.readableBytes
            budget.charge(bytes.readableBytes)
            if call.body == nil { call.body = bytes } else { call.body!.writeBuffer(&bytes) }
            state = .reading(call)
            if frame.endStream {
                complete(call, context: context)
            } else if budget.isSpent, !waiting {
                waitForRoom(context)
            }
        case (.headers(let trailers), .reading(let call)) where trailers.endStream:
            complete(call, context: context)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Arm the timer only for a call still arriving: most arrive whole in one read.
        guard case .reading(let call) = state, deadlineTimer == nil else { return }
        let arrival = context.eventLoop.now + limits.requestTimeout
        let clientDeadlineFirst = call.deadline.map { $0 < arrival } ?? false
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadlineTimer = context.eventLoop.scheduleTask(deadline: clientDeadlineFirst ? call.deadline! : arrival) {
            let (handler, context) = loopBound.value
            guard case .reading = handler.state else { return }
            if clientDeadlineFirst {
                handler.fail(context, code: .deadlineExceeded, "deadline exceeded before the request arrived", reset: true)
            } else {
                handler.limits.observer?.limitEnforced(.requestTimeout)
                let milliseconds = handler.limits.requestTimeout.nanoseconds / 1_000_000
                handler.fail(context, code: .deadlineExceeded,
                             "request not whole within the server's request timeout of \(milliseconds) ms", reset: true)
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        if waiting { heldRead = true } else { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadlineTimer?.cancel()
        state = .done
        release()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    /// Stops reading until the connection's streams hold fewer bytes than their bound.
    private func waitForRoom(_ context: ChannelHandlerContext) {
        waiting = true
        limits.observer?.limitEnforced(.maxConnectionBufferBytes)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        budget.wait(ObjectIdentifier(self)) {
            // On the next tick: the refund that made room may come from inside another stream's read.
            context.eventLoop.execute {
                let (handler, context) = loopBound.value
                guard handler.waiting else { return }
                handler.waiting = false
                if handler.heldRead {
                    handler.heldRead = false
                    context.read()
                }
            }
        }
    }

    /// Gives this stream's bytes back to the connection and stops waiting for room.
    private func release() {
        if waiting {
            waiting = false
            budget.stopWaiting(ObjectIdentifier(self))
        }
        budget.refund(charged)
        listenerBudget.give(charged)
        charged = 0
    }

    /// Checks the request headers; answers and returns nil when the call cannot proceed.
    private func accept(_ headers: HPACKHeaders, context: ChannelHandlerContext) -> Call? {
        guard headers.first(name: ":method") == "POST" else {
            respondHTTP(context, status: "405")
            return nil
        }
        guard let type = headers.first(name: "content-type"), type.hasPrefix("application/grpc") else {
            respondHTTP(context, status: "415")
            return nil
        }
        if let encoding = headers.first(name: "grpc-encoding"), encoding != "identity" {
            fail(context, code: .unimplemented, "compression `\(encoding)` is not supported",
                 extra: [("grpc-accept-encoding", "identity")], reset: false)
            return nil
        }
        let deadline = headers.first(name: "grpc-timeout").flatMap(Self.timeout).map { context.eventLoop.now + $0 }
        return Call(path: headers.first(name: ":path") ?? "", headers: headers, deadline: deadline)
    }

    /// The request is whole: decode its messages and answer or hand it off.
    private func complete(_ call: Call, context: ChannelHandlerContext) {
        deadlineTimer?.cancel()
        deadlineTimer = nil
        state = .done
        release()
        if let deadline = call.deadline, deadline < context.eventLoop.now {
            fail(context, code: .deadlineExceeded, "deadline exceeded before the request arrived", reset: false)
            return
        }
        guard let messages = Self.messages(in: call.body) else {
            fail(context, code: .internalError, "malformed or compressed gRPC message framing", reset: false)
            return
        }
        if let method = inPlace[call.path] {
            guard messages.count == 1 else {
                fail(context, code: .unimplemented, "a unary call takes exactly one request message, got \(messages.count)",
                     reset: false)
                return
            }
            do {
                respond(context, message: try method.respond(messages[0], tlsPeer))
            } catch let error as RPCError {
                fail(context, code: error.code, error.message, reset: false)
            } catch {
                fail(context, code: .internalError, "\(error)", reset: false)
            }
            return
        }
        handOff(call, messages: messages, context: context)
    }

    private func handOff(_ call: Call, messages: [[UInt8]], context: ChannelHandlerContext) {
        guard let descriptor = Self.descriptor(path: call.path) else {
            fail(context, code: .unimplemented, "no method `\(call.path)`", reset: false)
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
        let inbound = RequestParts(parts: [.metadata(metadata)] + messages.map { .message($0) })
        let outbound = StreamResponseWriter(channel: context.channel)
        let stream = RPCStream(
            descriptor: descriptor, inbound: RPCAsyncSequence(wrapping: inbound), outbound: RPCWriter.Closable(wrapping: outbound))
        if case .terminated = handOffs.yield(.init(stream: stream, descriptor: descriptor, peers: peers, channel: context.channel)) {
            fail(context, code: .unavailable, "the server is shutting down", reset: false)
        }
    }

    // MARK: - Writing

    static let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
    static let okTrailers: HPACKHeaders = ["grpc-status": "0"]

    private func respond(_ context: ChannelHandlerContext, message: [UInt8]) {
        context.write(wrapOutboundOut(.headers(.init(headers: Self.responseHeaders))), promise: nil)
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(Self.frame(message, allocator: context.channel.allocator))))),
                      promise: nil)
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: Self.okTrailers, endStream: true))), promise: nil)
    }

    /// A trailers-only response carrying an error status; `reset` also ends a request still arriving.
    private func fail(_ context: ChannelHandlerContext, code: RPCError.Code, _ message: String,
                      extra: [(String, String)] = [], reset: Bool) {
        deadlineTimer?.cancel()
        deadlineTimer = nil
        state = .done
        release()
        var headers = Self.responseHeaders
        headers.add(contentsOf: Self.status(Status.Code(code), message: message))
        for (name, value) in extra { headers.add(name: name, value: value) }
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
        if reset { context.close(promise: nil) }
    }

    private func respondHTTP(_ context: ChannelHandlerContext, status: String) {
        state = .done
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: [":status": status], endStream: true))), promise: nil)
        context.close(promise: nil)
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

/// Writes `GRPCServer`'s response parts onto the stream: response headers, messages, then trailers (or a
/// trailers-only response when the call ends before any headers).
final class StreamResponseWriter: ClosableRPCWriterProtocol {
    typealias Element = RPCResponsePart<[UInt8]>
    let channel: any Channel
    private let headersSent = Mutex(false)

    init(channel: any Channel) {
        self.channel = channel
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
                payload = .headers(.init(headers: GRPCStreamHandler.responseHeaders + Self.headers(metadata)))
            case .message(let bytes):
                payload = .data(.init(data: .byteBuffer(GRPCStreamHandler.frame(bytes, allocator: channel.allocator))))
            case .status(let status, let metadata):
                var headers = headersSent.withLock { $0 } ? HPACKHeaders() : GRPCStreamHandler.responseHeaders
                headers.add(contentsOf: GRPCStreamHandler.status(status.code, message: status.message))
                headers.add(contentsOf: Self.headers(metadata))
                payload = .headers(.init(headers: headers, endStream: true))
            }
            last = channel.write(payload)
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
        channel.close(promise: nil)
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
