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
/// `GRPCListener` does with its in-place Check. One handler per connection writes and reads every call's frames
/// (`CheckStreams`): no channel is made per call.
///
/// Each event loop keeps one long-lived HTTP/2 connection to the server (with one loop, `--threads 1`, the proxy has
/// exactly one), over which its checks are multiplexed; a connection lost in use is made again with exponential
/// backoff (jittered, from `initialBackoff` up to `maximumBackoff`), one lost idle by the next call that needs it.
/// Calls made while a connection is being made wait for it within their deadline; calls made while waiting to retry
/// fail at once as `unavailable` (gRPC's `waitForReady` off). The wire is gRPC's: a POST to
/// `/envoy.service.auth.v3.Authorization/Check` with `content-type: application/grpc`, `te: trailers` and
/// `grpc-timeout`, one length-prefixed message each way, `grpc-status` in the trailers.
///
/// A call whose deadline passes fails as `timeout` at once, but its stream is not reset: the server holds the same
/// deadline (`grpc-timeout`) and ends the stream itself (see `CheckStreams`). Under overload that keeps the connection
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
        /// The first stream ID of each connection (odd). Tests start it near the last, 2^31 − 1, to run a
        /// connection out of stream IDs in a few calls.
        var firstStreamID = 1

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
        case ready(any Channel, CheckStreams)
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
        case .ready(_, let streams):
            streams.start(message, deadline: deadline, promise: promise)
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
        let authority = self.authority, maximumResponseBytes = options.maximumResponseBytes
        let firstStreamID = options.firstStreamID
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
                configuration.initialSettings = [
                    HTTP2Setting(parameter: .enablePush, value: 0),
                    // Every answer fits its stream's first window, so no stream needs a WINDOW_UPDATE.
                    HTTP2Setting(parameter: .initialWindowSize, value: CheckStreams.streamWindow(maximumResponseBytes)),
                ]
                // A stream is reset only when the server has not ended it long after its deadline; the server's late
                // frames for such a stream are ignored rather than taken for a protocol error.
                configuration.maximumRecentlyResetStreams = 1024
                let streams = CheckStreams(
                    connection: connection, authority: authority, maximumResponseBytes: maximumResponseBytes,
                    firstStreamID: firstStreamID)
                try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .client, connectionConfiguration: configuration))
                try channel.pipeline.syncOperations.addHandler(streams)
                return (channel, streams)
            }
            .whenComplete { result in
                switch result {
                case .success(let (channel, streams)):
                    connection.connected(channel, streams)
                case .failure:
                    connection.connectFailed()
                }
            }
    }

    private func connected(_ channel: any Channel, _ streams: CheckStreams) {
        guard case .connecting(let pending) = state else {
            channel.close(promise: nil)
            return
        }
        failures = 0
        connectedAt = .now()
        state = .ready(channel, streams)
        for call in pending where NIODeadline.now() < call.deadline {
            send(call)
        }
    }

    /// A waiting call goes to the connection ready now, or, when the calls sent before it took that connection's
    /// last stream IDs, waits for the next one (its deadline is already set).
    private func send(_ call: Pending) {
        switch state {
        case .ready(_, let streams):
            streams.start(call.message, deadline: call.deadline, promise: call.promise)
        case .connecting(var pending):
            pending.append(call)
            state = .connecting(pending)
        case .idle, .backingOff, .stopped:
            call.promise.succeed(.failure(.unavailable))
        }
    }

    private func connectFailed() {
        guard case .connecting(let pending) = state else { return }
        for call in pending { call.promise.succeed(.failure(.unavailable)) }
        backOff()
    }

    /// Why a connection takes no more calls.
    enum Loss {
        /// Closed, or told to go away, with no call in flight.
        case idle
        /// Closed, or told to go away, with calls in flight.
        case inUse
        /// Its stream IDs ran out: nothing is wrong with the server.
        case streamIDsRanOut
    }

    /// The connection closed, or the server sent GOAWAY, or its stream IDs ran out: calls already on it finish there;
    /// new calls need a new one.
    func lost(_ channel: any Channel, _ loss: Loss) {
        guard case .ready(let current, _) = state, current === channel else { return }
        state = .idle
        switch loss {
        case .idle:
            // Made again by the next call, as a gRPC channel goes idle (the server closed it for idleness, or
            // restarted while nothing was asked): reconnecting at once would have the server close an idle loop's
            // connection every idle timeout.
            break
        case .streamIDsRanOut:
            connect()
        case .inUse:
            // One that lasted is made again at once; one that keeps dropping backs off.
            if NIODeadline.now() - connectedAt > .seconds(1) { connect() } else { backOff() }
        }
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
}

/// Every Check call of one connection, each an HTTP/2 stream whose frames this handler writes and reads (after
/// swift-nio-http2's `NIOHTTP2Handler`, which keeps the streams' states): a call's HEADERS and DATA go out together,
/// its answer's frames are matched to it by stream ID. Making a child channel per call cost about a twentieth of
/// the proxy's time per request (BENCHMARKS.md).
///
/// Without per-stream channels the flow-control windows are this handler's: each stream's window (advertised in
/// SETTINGS) holds the largest answer accepted, and the connection's is given back as answers are read.
///
/// At a call's deadline its promise fails as `timeout`, and the stream is left open for the server to end: it
/// enforces the same deadline from `grpc-timeout` and answers DEADLINE_EXCEEDED, or its late answer arrives and is
/// dropped. Only a stream the server has not ended `abandonAfter` past the deadline is reset, so a slow server costs
/// its late checks and never the connection the others share. Used on the connection's event loop only.
final class CheckStreams: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// How long past its deadline a stream the server has not ended is kept before it is reset.
    static let abandonAfter = TimeAmount.seconds(5)
    /// The connection window kept open for answers; given back once half of it has been read.
    static let connectionWindow = 1 << 20

    /// The stream window that holds the largest answer accepted (its gRPC prefix included).
    static func streamWindow(_ maximumResponseBytes: Int) -> Int {
        min(Int(Int32.max), max(65_535, maximumResponseBytes + 5))
    }

    private let connection: LoopConnection
    private let authority: String
    private let maximumResponseBytes: Int
    private var context: ChannelHandlerContext?
    private var calls: [HTTP2StreamID: CheckCall] = [:]
    private var nextStreamID: Int
    /// Answer bytes read since the connection window was last given back.
    private var unacknowledged = 0
    /// No new calls: the connection closes once its calls are done (GOAWAY received, or stream IDs ran out).
    private var draining = false
    private var flushScheduled = false

    init(connection: LoopConnection, authority: String, maximumResponseBytes: Int, firstStreamID: Int) {
        self.connection = connection
        self.authority = authority
        self.maximumResponseBytes = maximumResponseBytes
        nextStreamID = firstStreamID
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The connection window starts at 65,535 bytes for every HTTP/2 connection; widen it once.
        let update = HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: Self.connectionWindow - 65_535))
        context.writeAndFlush(wrapOutboundOut(update), promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Opens a call's stream and sends its request.
    func start(
        _ message: [UInt8], deadline: NIODeadline,
        promise: EventLoopPromise<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>>
    ) {
        guard let context, !draining else {
            promise.succeed(.failure(.unavailable))
            return
        }
        let id = HTTP2StreamID(nextStreamID)
        nextStreamID += 2
        let call = CheckCall(streamID: id, promise: promise)
        calls[id] = call

        let remaining = max(1, (deadline - .now()).nanoseconds / 1_000_000)
        let headers: HPACKHeaders = [
            ":method": "POST", ":scheme": "http", ":path": InPlaceAuthorizationClient.path, ":authority": authority,
            "content-type": "application/grpc", "te": "trailers", "grpc-timeout": "\(min(remaining, 99_999_999))m",
        ]
        var data = context.channel.allocator.buffer(capacity: message.count + 5)
        data.writeInteger(UInt8(0))
        data.writeInteger(UInt32(message.count))
        data.writeBytes(message)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers)))), promise: nil)
        // The stream could not be opened (the connection is going away, or the server's stream limit was reached
        // and the buffered stream was dropped): the call fails now rather than at its deadline.
        let sent = context.eventLoop.makePromise(of: Void.self)
        sent.futureResult.whenFailure { [self] _ in
            finish(call, .failure(.unavailable), streamEnded: true)
        }
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(data), endStream: true)))), promise: sent)
        call.timer = context.eventLoop.scheduleTask(deadline: deadline) { [self] in expire(call) }
        flushSoon(context)
        if nextStreamID > Int(Int32.max) {
            // This call had the connection's last stream ID: the next goes to a new connection, and this one closes
            // once its calls are done.
            connection.lost(context.channel, .streamIDsRanOut)
            drain()
        }
    }

    /// Flushes once the event loop has handled the events it woke for: the checks of every request that arrived
    /// together leave in one write.
    private func flushSoon(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.execute { [self] in
            flushScheduled = false
            self.context?.flush()
        }
    }

    /// The deadline passed: the check fails now; the stream waits for the server, within `abandonAfter`.
    private func expire(_ call: CheckCall) {
        call.answer(.failure(.timeout))
        guard let context, !call.finished else { return }
        call.timer = context.eventLoop.scheduleTask(in: Self.abandonAfter) { [self] in finish(call, .failure(.timeout)) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if case .data(let payload) = frame.payload {
            // Every DATA frame counts against the connection window, whoever it was for.
            unacknowledged += payload.data.readableBytes + (payload.paddingBytes.map { $0 + 1 } ?? 0)
        }
        guard frame.streamID != .rootStream else {
            if case .goAway = frame.payload {
                // The server is going away: new calls go to a new connection; this one closes once its calls are
                // done, so the server's drain does not wait for it.
                connection.lost(context.channel, calls.isEmpty ? .idle : .inUse)
                drain()
            }
            return
        }
        guard let call = calls[frame.streamID] else { return }
        switch frame.payload {
        case .headers(let payload):
            if payload.endStream { call.streamEnded = true }
            if !call.sawHeaders && !payload.endStream {
                call.sawHeaders = true
                guard payload.headers.first(name: ":status") == "200",
                    payload.headers.first(name: "content-type")?.hasPrefix("application/grpc") == true
                else { return finish(call, .failure(.error)) }
            } else {
                finish(call, call.result(trailers: payload.headers))
            }
        case .data(let payload):
            guard case .byteBuffer(var bytes) = payload.data else { return }
            if (call.body?.readableBytes ?? 0) + bytes.readableBytes > maximumResponseBytes + 5 {
                return finish(call, .failure(.malformed))
            }
            if call.body == nil { call.body = bytes } else { call.body!.writeBuffer(&bytes) }
            if payload.endStream {
                finish(call, .failure(.error), streamEnded: true)
            }
        case .rstStream:
            finish(call, .failure(.unavailable), streamEnded: true)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unacknowledged >= Self.connectionWindow / 2 {
            let update = HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: unacknowledged))
            unacknowledged = 0
            context.writeAndFlush(wrapOutboundOut(update), promise: nil)
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A stream closed before its call finished: dropped by the server's GOAWAY, or reset by swift-nio-http2 for
        // a protocol error.
        if let closed = event as? StreamClosedEvent, let call = calls[closed.streamID] {
            finish(call, .failure(.unavailable), streamEnded: true)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let open = calls.values
        calls = [:]
        for call in open {
            finish(call, .failure(.unavailable), streamEnded: true)
        }
        connection.lost(context.channel, open.isEmpty ? .idle : .inUse)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream's error is its call's; closing the connection for it would fail every other check in flight.
        if let streamError = error as? NIOHTTP2Errors.StreamError {
            // swift-nio-http2 has reset the stream already.
            if let call = calls[streamError.streamID] {
                finish(call, .failure(.unavailable), streamEnded: true)
            }
            return
        }
        context.close(promise: nil)
    }

    /// Completes a call, once, and resets its stream unless the stream is over (`streamEnded`: the server ended or
    /// reset it, or it never opened); a stream that ends after its call timed out changes nothing.
    private func finish(
        _ call: CheckCall, _ result: Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>, streamEnded: Bool = false
    ) {
        guard !call.finished else { return }
        call.finished = true
        if streamEnded { call.streamEnded = true }
        call.timer?.cancel()
        call.answer(result)
        calls.removeValue(forKey: call.streamID)
        // Resetting a stream the server has ended would send a RST_STREAM the server counts against the connection
        // (swift-nio-http2 sends GOAWAY ENHANCE_YOUR_CALM after 200 in 30 s).
        if !call.streamEnded, let context {
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: call.streamID, payload: .rstStream(.cancel))), promise: nil)
        }
        if draining, calls.isEmpty { context?.close(promise: nil) }
    }

    private func drain() {
        draining = true
        if calls.isEmpty { context?.close(promise: nil) }
    }
}

/// One Check call's state, kept by `CheckStreams` while its stream is open; used on the connection's event loop only.
final class CheckCall: @unchecked Sendable {
    let streamID: HTTP2StreamID
    private let promise: EventLoopPromise<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>>
    var body: ByteBuffer?
    var sawHeaders = false
    var answered = false
    var finished = false
    /// The server ended the stream (END_STREAM or RST_STREAM), or it never opened.
    var streamEnded = false
    var timer: Scheduled<Void>?

    init(streamID: HTTP2StreamID, promise: EventLoopPromise<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>>) {
        self.streamID = streamID
        self.promise = promise
    }

    /// Completes the promise, once.
    func answer(_ result: Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>) {
        guard !answered else { return }
        answered = true
        promise.succeed(result)
    }

    /// The call's result from the server's trailers and the body read before them.
    func result(trailers: HPACKHeaders) -> Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure> {
        guard let status = trailers.first(name: "grpc-status").flatMap(Int.init) else { return .failure(.error) }
        switch status {
        case 0: break
        case 4: return .failure(.timeout)
        case 14: return .failure(.unavailable)
        default: return .failure(.error)
        }
        guard var body, body.readableBytes >= 5, body.readInteger(as: UInt8.self) == 0,
            let length = body.readInteger(as: UInt32.self), Int(length) == body.readableBytes
        else { return .failure(.malformed) }
        do {
            return .success(try body.withUnsafeReadableBytes { try Envoy_Service_Auth_V3_CheckResponse(checkResponseBytes: $0) })
        } catch {
            return .failure(.malformed)
        }
    }
}
