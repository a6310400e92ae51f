import ExtAuthz
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import Networking
import SwiftProtobuf
import Synchronization

/// The ext_authz client answered in place: Check calls as HTTP/2 streams on swift-nio-http2, written and read on the
/// event loop of the request that needs them, with no task and no thread hop — the client side of what the server's
/// `GRPCListener` does with its in-place Check.
///
/// Each event loop keeps one long-lived HTTP/2 connection to the server (with one loop, `--threads 1`, the proxy has
/// exactly one), over which its checks are multiplexed; a lost connection is made again with exponential backoff
/// (jittered, from `initialBackoff` up to `maximumBackoff`). Calls made while a connection is being made wait for it
/// within their deadline; calls made while waiting to retry fail at once as `unavailable` (gRPC's `waitForReady`
/// off). The wire is gRPC's: a POST to `/envoy.service.auth.v3.Authorization/Check` with `content-type:
/// application/grpc`, `te: trailers` and `grpc-timeout`, one length-prefixed message each way, `grpc-status` in
/// the trailers.
///
/// A call whose deadline passes fails as `timeout` at once, but its stream is not reset: the server holds the same
/// deadline (`grpc-timeout`) and ends the stream itself (see `CheckCall`). Under overload that keeps the connection
/// up: resetting every late call is what HTTP/2 peers take for an attack — swift-nio-http2 closes a connection after
/// 200 resets in 30 s, and an answer arriving for a stream reset more than 32 resets ago is a connection error — and
/// closing the one connection fails every check on it.
public final class InPlaceAuthorizationClient: AuthorizationClient {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var initialBackoff: Duration
        public var maximumBackoff: Duration
        /// Answers larger than this fail as `malformed`.
        public var maximumResponseBytes: Int
        /// Mutual TLS to the server (a client context with the proxy's certificate); each new connection takes the
        /// context's current certificate.
        public var tls: ReloadingTLSContext?
        /// With `tls`: what the server's certificate must prove beyond a chain to the roots (its SPIFFE ID), checked
        /// in the handshake; a server that fails it gets no check, and calls fail as `unavailable`.
        public var verifyServer: ServerCertificateCheck?

        public init(
            host: String, port: Int, initialBackoff: Duration = .milliseconds(100), maximumBackoff: Duration = .seconds(3),
            maximumResponseBytes: Int = 4 << 20, tls: ReloadingTLSContext? = nil, verifyServer: ServerCertificateCheck? = nil
        ) {
            self.host = host
            self.port = port
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
            self.maximumResponseBytes = maximumResponseBytes
            self.tls = tls
            self.verifyServer = verifyServer
        }
    }

    public static let path = "/envoy.service.auth.v3.Authorization/Check"

    public let options: Options
    private let group: any EventLoopGroup
    private let connections = Mutex<[ObjectIdentifier: LoopConnection]>([:])
    private let stopped = Mutex<(Bool, [CheckedContinuation<Void, Never>])>((false, []))

    public init(options: Options, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.options = options
        self.group = group
    }

    /// The connection of `eventLoop`.
    private func connection(for eventLoop: any EventLoop) -> LoopConnection {
        connections.withLock { connections in
            if let existing = connections[ObjectIdentifier(eventLoop)] { return existing }
            let made = LoopConnection(eventLoop: eventLoop, options: options)
            connections[ObjectIdentifier(eventLoop)] = made
            return made
        }
    }

    public func check(
        _ message: [UInt8], timeout: Duration, on eventLoop: any EventLoop
    ) -> EventLoopFuture<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>> {
        let connection = connection(for: eventLoop)
        if eventLoop.inEventLoop { return connection.call(message, timeout: TimeAmount(timeout)) }
        return eventLoop.flatSubmit { connection.call(message, timeout: TimeAmount(timeout)) }
    }

    /// Connects every event loop of the group, then waits until `shutDown`.
    public func run() async throws {
        for eventLoop in group.makeIterator() {
            let connection = connection(for: eventLoop)
            eventLoop.execute { connection.start() }
        }
        await withCheckedContinuation { continuation in
            let done = stopped.withLock { state in
                if state.0 { return true }
                state.1.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Stops reconnecting and closes the connections once their calls are done.
    public func shutDown() {
        let waiters = stopped.withLock { state in
            state.0 = true
            defer { state.1 = [] }
            return state.1
        }
        for connection in connections.withLock({ Array($0.values) }) {
            connection.eventLoop.execute { connection.stop() }
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// One event loop's connection to the server; every method runs on that loop.
final class LoopConnection: @unchecked Sendable {
    private enum State {
        case idle
        case connecting([Pending])
        case ready(any Channel, NIOHTTP2Handler.StreamMultiplexer)
        /// Waiting to retry until the deadline; calls fail at once meanwhile.
        case backingOff(NIODeadline)
        case stopped
    }

    private struct Pending {
        var message: [UInt8]
        var deadline: NIODeadline
        var promise: EventLoopPromise<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>>
    }

    let eventLoop: any EventLoop
    let options: InPlaceAuthorizationClient.Options
    private var state = State.idle
    private var failures = 0
    private var connectedAt = NIODeadline.distantPast
    private let authority: String

    init(eventLoop: any EventLoop, options: InPlaceAuthorizationClient.Options) {
        self.eventLoop = eventLoop
        self.options = options
        authority = options.host.contains(":") ? "[\(options.host)]:\(options.port)" : "\(options.host):\(options.port)"
    }

    func start() {
        if case .idle = state { connect() }
    }

    func stop() {
        let previous = state
        state = .stopped
        switch previous {
        case .ready(let channel, _): channel.close(mode: .all, promise: nil)
        case .connecting(let pending): for call in pending { call.promise.succeed(.failure(.unavailable)) }
        default: break
        }
    }

    func call(_ message: [UInt8], timeout: TimeAmount) -> EventLoopFuture<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>> {
        let promise = eventLoop.makePromise(of: Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>.self)
        let deadline = NIODeadline.now() + timeout
        switch state {
        case .ready(_, let multiplexer):
            open(message, deadline: deadline, promise: promise, on: multiplexer)
        case .connecting(var pending):
            pending.append(Pending(message: message, deadline: deadline, promise: promise))
            state = .connecting(pending)
            eventLoop.scheduleTask(deadline: deadline) { promise.succeed(.failure(.timeout)) }
        case .idle:
            state = .connecting([Pending(message: message, deadline: deadline, promise: promise)])
            eventLoop.scheduleTask(deadline: deadline) { promise.succeed(.failure(.timeout)) }
            connect()
        case .backingOff(let until):
            promise.succeed(.failure(.unavailable))
            if NIODeadline.now() >= until { connect() }
        case .stopped:
            promise.succeed(.failure(.unavailable))
        }
        return promise.futureResult
    }

    private func connect() {
        var pending: [Pending] = []
        switch state {
        case .connecting(let waiting): pending = waiting
        case .idle, .backingOff: break
        case .ready, .stopped: return
        }
        state = .connecting(pending)
        let connection = self
        let tls = options.tls, verifyServer = options.verifyServer
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(5))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                // The server's chain is verified against the trust bundle; SPIFFE servers have no host name to check.
                channel.eventLoop.makeCompletedFuture {
                    guard let tls else { return }
                    let handler: NIOSSLClientHandler
                    if let verifyServer {
                        handler = try NIOSSLClientHandler(context: tls.current, serverHostname: nil) { certificates, promise in
                            verifyServer(certificates, channel.eventLoop).map { NIOSSLVerificationResult.certificateVerified }
                                .cascade(to: promise)
                        }
                    } else {
                        handler = try NIOSSLClientHandler(context: tls.current, serverHostname: nil)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: options.host, port: options.port)
            .flatMapThrowing { channel in
                var configuration = NIOHTTP2Handler.ConnectionConfiguration()
                configuration.initialSettings = [HTTP2Setting(parameter: .enablePush, value: 0)]
                // A stream is reset only when the server has not ended it long after its deadline; the server's late
                // frames for such a stream are ignored rather than taken for a protocol error.
                configuration.maximumRecentlyResetStreams = 1024
                let streams = OpenStreams(channel: channel)
                let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: configuration, streamConfiguration: .init(),
                    streamDelegate: streams
                ) { stream in stream.close() }
                try channel.pipeline.syncOperations.addHandler(ConnectionWatcher(connection: connection, streams: streams))
                return (channel, multiplexer)
            }
            .whenComplete { result in
                switch result {
                case .success(let (channel, multiplexer)):
                    connection.connected(channel, multiplexer)
                case .failure:
                    connection.connectFailed()
                }
            }
    }

    private func connected(_ channel: any Channel, _ multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        guard case .connecting(let pending) = state else {
            channel.close(promise: nil)
            return
        }
        failures = 0
        connectedAt = .now()
        state = .ready(channel, multiplexer)
        for call in pending where NIODeadline.now() < call.deadline {
            open(call.message, deadline: call.deadline, promise: call.promise, on: multiplexer)
        }
    }

    private func connectFailed() {
        guard case .connecting(let pending) = state else { return }
        for call in pending { call.promise.succeed(.failure(.unavailable)) }
        backOff()
    }

    /// The connection closed, or the server sent GOAWAY: calls already on it finish there; new calls need a new one.
    func lost(_ channel: any Channel) {
        guard case .ready(let current, _) = state, current === channel else { return }
        state = .idle
        // A connection that lasted is made again at once; one that keeps dropping backs off.
        if NIODeadline.now() - connectedAt > .seconds(1) { connect() } else { backOff() }
    }

    private func backOff() {
        failures += 1
        var capped = options.initialBackoff
        for _ in 1..<min(failures, 20) where capped < options.maximumBackoff { capped = capped * 1.6 }
        capped = min(capped, options.maximumBackoff)
        let nanoseconds = Double(capped.components.seconds) * 1e9 + Double(capped.components.attoseconds) / 1e9
        let jittered = nanoseconds * Double.random(in: 0.8...1.2)
        let until = NIODeadline.now() + .nanoseconds(Int64(jittered))
        state = .backingOff(until)
        eventLoop.scheduleTask(deadline: until) { [self] in
            if case .backingOff = state { connect() }
        }
    }

    private func open(
        _ message: [UInt8], deadline: NIODeadline,
        promise: EventLoopPromise<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>>,
        on multiplexer: NIOHTTP2Handler.StreamMultiplexer
    ) {
        let authority = self.authority, maximumResponseBytes = options.maximumResponseBytes
        multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(CheckCall(
                    message: message, authority: authority, deadline: deadline, maximumResponseBytes: maximumResponseBytes,
                    promise: promise))
            }
        }.whenFailure { _ in promise.succeed(.failure(.unavailable)) }
    }
}

/// Tells the loop's connection when its channel is gone or told to go away.
private final class ConnectionWatcher: ChannelInboundHandler {
    /// Frames of the connection itself (stream 0) reach the handlers after the HTTP/2 handler.
    typealias InboundIn = HTTP2Frame
    let connection: LoopConnection
    let streams: OpenStreams

    init(connection: LoopConnection, streams: OpenStreams) {
        self.connection = connection
        self.streams = streams
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.lost(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .goAway = unwrapInboundIn(data).payload else { return }
        // The server is going away: new calls go to a new connection; this one closes once its calls are done, so
        // the server's drain does not wait for it.
        connection.lost(context.channel)
        streams.closeWhenIdle()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream's error is its call's (`CheckCall` fails it); swift-nio-http2 passes it down the connection's
        // pipeline too. Closing the connection for it would fail every other check in flight.
        if error is NIOHTTP2Errors.StreamError { return }
        context.close(promise: nil)
    }
}

/// Counts a connection's open streams, and closes the connection once none is left after a GOAWAY. Used on the
/// connection's event loop only.
final class OpenStreams: NIOHTTP2StreamDelegate, @unchecked Sendable {
    private let channel: any Channel
    private var open = 0
    private var closing = false

    init(channel: any Channel) {
        self.channel = channel
    }

    func streamCreated(_ id: HTTP2StreamID, channel: any Channel) {
        open += 1
    }

    func streamClosed(_ id: HTTP2StreamID, channel: any Channel) {
        open -= 1
        if closing, open == 0 { self.channel.close(promise: nil) }
    }

    func closeWhenIdle() {
        closing = true
        if open == 0 { channel.close(promise: nil) }
    }
}

/// One Check call on its HTTP/2 stream: writes the request, reads the answer, and completes the promise exactly once.
///
/// At the deadline the promise fails as `timeout`, and the stream is left open for the server to end: it enforces
/// the same deadline from `grpc-timeout` and answers DEADLINE_EXCEEDED, or its late answer arrives and is dropped.
/// Only a stream the server has not ended `abandonAfter` past the deadline is reset, so a slow server costs its
/// late checks and never the connection the others share.
final class CheckCall: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let message: [UInt8]
    private let authority: String
    private let deadline: NIODeadline
    private let maximumResponseBytes: Int
    private let promise: EventLoopPromise<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>>
    private var body: ByteBuffer?
    private var sawHeaders = false
    private var answered = false
    private var finished = false
    /// The server ended the stream (END_STREAM or RST_STREAM): it closes by itself, and closing it here would send
    /// a RST_STREAM the server counts against the connection (swift-nio-http2 sends GOAWAY ENHANCE_YOUR_CALM after
    /// 200 in 30 s, so a reset per call dropped the connection every 200 checks).
    private var streamEnded = false
    private var timer: Scheduled<Void>?

    /// How long past its deadline a stream the server has not ended is kept before it is reset.
    static let abandonAfter = TimeAmount.seconds(5)

    init(
        message: [UInt8], authority: String, deadline: NIODeadline, maximumResponseBytes: Int,
        promise: EventLoopPromise<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>>
    ) {
        self.message = message
        self.authority = authority
        self.deadline = deadline
        self.maximumResponseBytes = maximumResponseBytes
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { send(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context: context)
        context.fireChannelActive()
    }

    private func send(context: ChannelHandlerContext) {
        guard timer == nil, !finished else { return }
        let remaining = max(1, (deadline - .now()).nanoseconds / 1_000_000)
        let headers: HPACKHeaders = [
            ":method": "POST", ":scheme": "http", ":path": InPlaceAuthorizationClient.path, ":authority": authority,
            "content-type": "application/grpc", "te": "trailers", "grpc-timeout": "\(min(remaining, 99_999_999))m",
        ]
        var data = context.channel.allocator.buffer(capacity: message.count + 5)
        data.writeInteger(UInt8(0))
        data.writeInteger(UInt32(message.count))
        data.writeBytes(message)
        context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(data), endStream: true))), promise: nil)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (call, context) = loopBound.value
            call.expire(context: context)
        }
    }

    /// The deadline passed: the check fails now; the stream waits for the server, within `abandonAfter`.
    private func expire(context: ChannelHandlerContext) {
        answer(.failure(.timeout))
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: Self.abandonAfter) {
            let (call, context) = loopBound.value
            call.finish(.failure(.timeout), context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let frame):
            if frame.endStream { streamEnded = true }
            if !sawHeaders && !frame.endStream {
                sawHeaders = true
                guard frame.headers.first(name: ":status") == "200",
                    frame.headers.first(name: "content-type")?.hasPrefix("application/grpc") == true
                else {
                    finish(.failure(.error), context: context)
                    return
                }
            } else {
                trailers(frame.headers, context: context)
            }
        case .data(let frame):
            guard case .byteBuffer(var bytes) = frame.data else { return }
            if (body?.readableBytes ?? 0) + bytes.readableBytes > maximumResponseBytes + 5 {
                finish(.failure(.malformed), context: context)
                return
            }
            if body == nil { body = bytes } else { body!.writeBuffer(&bytes) }
            if frame.endStream {
                streamEnded = true
                finish(.failure(.error), context: context)
            }
        case .rstStream:
            streamEnded = true
            finish(.failure(.unavailable), context: context)
        default:
            break
        }
    }

    private func trailers(_ headers: HPACKHeaders, context: ChannelHandlerContext) {
        guard let status = headers.first(name: "grpc-status").flatMap(Int.init) else {
            finish(.failure(.error), context: context)
            return
        }
        switch status {
        case 0: break
        case 4: return finish(.failure(.timeout), context: context)
        case 14: return finish(.failure(.unavailable), context: context)
        default: return finish(.failure(.error), context: context)
        }
        guard var body, body.readableBytes >= 5, body.readInteger(as: UInt8.self) == 0,
            let length = body.readInteger(as: UInt32.self), Int(length) == body.readableBytes
        else {
            finish(.failure(.malformed), context: context)
            return
        }
        do {
            let response = try body.readableBytesView.withContiguousStorageIfAvailable {
                try Envoy_Service_Auth_V3_CheckResponse(serializedBytes: Array($0))
            } ?? Envoy_Service_Auth_V3_CheckResponse(serializedBytes: Array(body.readableBytesView))
            finish(.success(response), context: context)
        } catch {
            finish(.failure(.malformed), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(.unavailable), context: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(.unavailable), context: context)
    }

    /// Completes the call's promise, once; a stream that ends after its call timed out changes nothing.
    private func answer(_ result: Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>) {
        guard !answered else { return }
        answered = true
        promise.succeed(result)
    }

    /// The stream is done: answers the call if it was not already, and resets the stream if the server has not
    /// ended it.
    private func finish(_ result: Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>, context: ChannelHandlerContext?) {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        answer(result)
        if !streamEnded { context?.close(promise: nil) }
    }
}
