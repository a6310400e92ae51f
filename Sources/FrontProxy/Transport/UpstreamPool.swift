import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// Receives what an upstream connection reads while it serves one exchange.
protocol UpstreamDelegate: AnyObject {
    func upstream(_ connection: UpstreamConnection, read part: HTTPClientResponsePart)
    func upstreamReadComplete(_ connection: UpstreamConnection)
    /// The connection closed or failed while serving the exchange.
    func upstreamClosed(_ connection: UpstreamConnection)
    func upstreamWritabilityChanged(_ connection: UpstreamConnection, writable: Bool)
}

/// Why an upstream connection could not be made.
public struct UpstreamConnectError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// Refused, unreachable, or no answer within the connect timeout.
        case connect = "connect_failed"
        /// The TLS handshake failed (outbound mode).
        case tls = "tls_failed"
        /// The upstream's certificate names another workload than `--expect-peer` (outbound mode).
        case secureNaming = "secure_naming"
    }

    public var kind: Kind
    public var message: String
    public var description: String { message }

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }
}

/// One HTTP/1.1 connection to the upstream, used by one exchange at a time on its event loop.
final class UpstreamConnection {
    let channel: any Channel
    private let handler: UpstreamHandler
    /// Set by the pool: where an idle connection goes back to.
    weak var pool: UpstreamLoopPool?
    /// When the connection last went idle.
    var idleSince = NIODeadline.now()

    init(channel: any Channel, handler: UpstreamHandler) {
        self.channel = channel
        self.handler = handler
        handler.connection = self
    }

    var isActive: Bool { channel.isActive }
    var isWritable: Bool { channel.isWritable }

    func attach(_ delegate: any UpstreamDelegate) { handler.delegate = delegate }
    func detach() { handler.delegate = nil }

    func write(_ part: HTTPClientRequestPart) {
        channel.write(part, promise: nil)
    }

    func flush() { channel.flush() }

    func setReading(_ reading: Bool) {
        channel.setOption(ChannelOptions.autoRead, value: reading).whenComplete { _ in }
        if reading { channel.read() }
    }

    func close() {
        detach()
        channel.close(promise: nil)
    }

    /// After a `101`: the HTTP/1.1 handlers leave the pipeline and `end` relays its bytes; what the upstream sent
    /// after its 101 (read already) reaches `end` as the decoder goes, when the returned future completes. The
    /// connection never returns to the pool.
    func becomeTunnelEnd(_ end: TunnelHandler) throws -> EventLoopFuture<Void> {
        detach()
        let sync = channel.pipeline.syncOperations
        try channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        try sync.addHandler(end)
        channel.removeOrClose(handler)
        channel.removeOrClose(try sync.handler(type: HTTPRequestEncoder.self))
        if let validator = try? sync.handler(type: NIOHTTPRequestHeadersValidator.self) { channel.removeOrClose(validator) }
        let decoderGone = sync.removeHandler(try sync.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self))
        // Reading may have been paused while the client could take no more; the tunnel ends pause it from now on.
        try channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        channel.read()
        return decoderGone
    }
}

/// The upstream end of the pipeline: hands response parts to the exchange that owns the connection.
final class UpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    weak var delegate: (any UpstreamDelegate)?
    /// Weak: the pool may let go of a connection it closed (at shutdown, or when enough are idle) before the close
    /// completes, which over TLS waits for the peer's close_notify.
    weak var connection: UpstreamConnection?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection else { return }
        delegate?.upstream(connection, read: unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard let connection else { return }
        delegate?.upstreamReadComplete(connection)
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard let connection else { return }
        let delegate = delegate
        self.delegate = nil
        delegate?.upstreamClosed(connection)
        connection.pool?.remove(connection)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard let connection else { return }
        delegate?.upstreamWritabilityChanged(connection, writable: context.channel.isWritable)
    }
}

/// How the proxy connects to its upstream: plain TCP (inbound mode, to the local workload), or mutual TLS with the
/// workload's own certificate and a check of the server's identity (outbound mode).
public struct UpstreamSettings: Sendable {
    public var host: String
    public var port: Int
    public var connectTimeout: TimeAmount
    /// Idle connections kept per event loop.
    public var maximumIdlePerLoop: Int
    /// An idle connection older than this is closed rather than reused (upstreams close idle connections too, and
    /// a request written as they do is lost).
    public var maximumIdleTime: TimeAmount
    /// TLS for outbound mode: the client context, and the check of the server's chain run in the handshake.
    public var tls: UpstreamTLS?
    /// HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1: one connection per event loop, an exchange a stream.
    public var http2: Bool

    public init(host: String, port: Int, connectTimeout: TimeAmount = .seconds(5), maximumIdlePerLoop: Int = 64,
                maximumIdleTime: TimeAmount = .seconds(30), tls: UpstreamTLS? = nil, http2: Bool = false) {
        self.maximumIdleTime = maximumIdleTime
        self.host = host
        self.port = port
        self.connectTimeout = connectTimeout
        self.maximumIdlePerLoop = maximumIdlePerLoop
        self.tls = tls
        self.http2 = http2
    }

    public var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// TLS towards the upstream.
public struct UpstreamTLS: Sendable {
    public var context: @Sendable () -> NIOSSLContext
    /// Verifies the server's chain (leaf first); fails with the reason the connection is refused.
    public var verify: @Sendable ([NIOSSLCertificate], any EventLoop) -> EventLoopFuture<Void>
    public var serverName: String?

    public init(
        context: @escaping @Sendable () -> NIOSSLContext,
        verify: @escaping @Sendable ([NIOSSLCertificate], any EventLoop) -> EventLoopFuture<Void>, serverName: String? = nil
    ) {
        self.context = context
        self.verify = verify
        self.serverName = serverName
    }
}

/// Keep-alive HTTP/1.1 connections to the upstream, one set per event loop, so an exchange uses a connection on the
/// loop of its client connection and never crosses threads.
public final class UpstreamPool: Sendable {
    public let settings: UpstreamSettings
    private let pools = Mutex<[ObjectIdentifier: UpstreamLoopPool]>([:])

    public init(settings: UpstreamSettings) {
        self.settings = settings
    }

    /// The pool of `eventLoop`, for use on it only.
    func pool(for eventLoop: any EventLoop) -> UpstreamLoopPool {
        pools.withLock { pools in
            if let existing = pools[ObjectIdentifier(eventLoop)] { return existing }
            let made = UpstreamLoopPool(eventLoop: eventLoop, settings: settings)
            pools[ObjectIdentifier(eventLoop)] = made
            return made
        }
    }

    /// Closes every idle connection.
    public func closeIdle() {
        for pool in pools.withLock({ Array($0.values) }) {
            pool.eventLoop.execute { pool.closeAll() }
        }
    }
}

/// The upstream connections of one event loop; every method runs on that loop.
final class UpstreamLoopPool: @unchecked Sendable {
    let eventLoop: any EventLoop
    let settings: UpstreamSettings
    private var idle: [UpstreamConnection] = []
    /// With `settings.http2`: the loop's connection to the upstream (being made, or made), whose streams carry the
    /// exchanges, and which attempt it is (a closed connection forgets itself only if no newer one replaced it).
    private var http2: EventLoopFuture<HTTP2Upstream>?
    private var http2Attempt = 0

    init(eventLoop: any EventLoop, settings: UpstreamSettings) {
        self.eventLoop = eventLoop
        self.settings = settings
    }

    /// An idle connection, or a new one.
    func acquire() -> (reused: Bool, EventLoopFuture<UpstreamConnection>) {
        eventLoop.preconditionInEventLoop()
        if settings.http2 { return (false, openStream()) }
        let stale = NIODeadline.now() - settings.maximumIdleTime
        while let connection = idle.popLast() {
            if connection.isActive, connection.idleSince > stale {
                return (true, eventLoop.assumeIsolated().makeSucceededFuture(connection))
            }
            connection.close()
        }
        return (false, connect())
    }

    /// Puts a connection whose exchange is over back (or closes it when enough are idle).
    func release(_ connection: UpstreamConnection) {
        eventLoop.preconditionInEventLoop()
        connection.detach()
        // An HTTP/2 stream carries one exchange.
        if settings.http2 { return connection.close() }
        guard connection.isActive, idle.count < settings.maximumIdlePerLoop else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        idle.append(connection)
    }

    func remove(_ connection: UpstreamConnection) {
        idle.removeAll { $0 === connection }
    }

    func closeAll() {
        let all = idle
        idle = []
        for connection in all { connection.close() }
        http2?.whenSuccess { $0.channel.close(promise: nil) }
        http2 = nil
    }

    /// A new stream on the loop's HTTP/2 connection, made first if there is none.
    private func openStream() -> EventLoopFuture<UpstreamConnection> {
        let upstream = http2 ?? connectHTTP2()
        http2 = upstream
        let made = eventLoop.makePromise(of: UpstreamConnection.self)
        upstream.whenComplete { result in
            switch result {
            case .failure(let error):
                made.fail(error)
            case .success(let upstream):
                let stream = self.eventLoop.makePromise(of: (any Channel).self)
                // `:scheme` says how the connection is carried: https over the outbound mode's TLS.
                let scheme: HTTP2FramePayloadToHTTP1ClientCodec.HTTPProtocol = self.settings.tls == nil ? .http : .https
                upstream.multiplexer.createStreamChannel(promise: stream) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: scheme))
                    }
                }
                stream.futureResult.whenComplete { result in
                    self.adopt(result.mapError { error in
                        UpstreamConnectError(
                            kind: .connect, message: "cannot open a stream to the upstream \(self.settings.authority): \(error)")
                    }, into: made)
                }
            }
        }
        return made.futureResult
    }

    /// The loop's HTTP/2 connection (h2c with prior knowledge, or h2 by ALPN over TLS); forgotten when it fails or
    /// closes, so the next exchange makes another.
    private func connectHTTP2() -> EventLoopFuture<HTTP2Upstream> {
        http2Attempt += 1
        let attempt = http2Attempt
        let made = connectChannel { channel in
            var connection = NIOHTTP2Handler.ConnectionConfiguration()
            connection.initialSettings = [
                HTTP2Setting(parameter: .enablePush, value: 0),
                HTTP2Setting(parameter: .maxHeaderListSize, value: 1 << 16),
            ]
            _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                mode: .client, connectionConfiguration: connection, streamConfiguration: .init()
            ) { pushed in pushed.close() }  // push is refused in SETTINGS; nothing else opens streams
        }.flatMapThrowing { channel in
            HTTP2Upstream(
                channel: channel,
                multiplexer: try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer())
        }
        let forget: @Sendable (Result<Void, any Error>) -> Void = { _ in
            if self.http2Attempt == attempt { self.http2 = nil }
        }
        made.whenComplete { result in
            switch result {
            case .success(let upstream): upstream.channel.closeFuture.whenComplete(forget)
            case .failure(let error): forget(.failure(error))
            }
        }
        return made
    }

    /// A new HTTP/1.1 connection.
    private func connect() -> EventLoopFuture<UpstreamConnection> {
        let made = eventLoop.makePromise(of: UpstreamConnection.self)
        // Bytes the upstream sends right after a 101 are the tunnel's (`becomeTunnelEnd`).
        connectChannel { try $0.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes) }
            .whenComplete { result in self.adopt(result, into: made) }
        return made.futureResult
    }

    /// A connection to the upstream, ready for requests: TCP; then, in outbound mode, TLS with the server's chain
    /// and identity checked inside the handshake (and ALPN `h2` agreed, for HTTP/2); then the protocol's handlers,
    /// added by `protocolHandlers`. Fails with the reason (`UpstreamConnectError`) when any step does.
    private func connectChannel(
        _ protocolHandlers: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        let settings = self.settings
        let handshake = eventLoop.makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls = settings.tls {
                        let handler = try NIOSSLClientHandler(
                            context: tls.context(), serverHostname: tls.serverName
                        ) { certificates, promise in
                            tls.verify(certificates, channel.eventLoop).map { NIOSSLVerificationResult.certificateVerified }
                                .cascade(to: promise)
                        }
                        try sync.addHandler(handler)
                        try sync.addHandler(HandshakeWaiter(promise: handshake, requiring: settings.http2 ? "h2" : nil))
                    } else {
                        handshake.succeed()
                    }
                    try protocolHandlers(channel)
                }
            }
        return bootstrap.connect(host: settings.host, port: settings.port)
            .flatMapError { error in
                handshake.fail(error)
                return self.eventLoop.makeFailedFuture(UpstreamConnectError(
                    kind: .connect, message: "cannot connect to the upstream \(settings.authority): \(error)"))
            }
            .flatMap { channel in
                handshake.futureResult.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    if let refused = error as? UpstreamConnectError { throw refused }
                    throw UpstreamConnectError(kind: .tls, message: "TLS with the upstream \(settings.authority) failed: \(error)")
                }.map { channel }
            }
    }

    /// A channel made for the pool (a connection, or an HTTP/2 stream) as an `UpstreamConnection`, handed over on
    /// the loop through `made`: the connection object never leaves it.
    private func adopt(_ result: Result<any Channel, any Error>, into made: EventLoopPromise<UpstreamConnection>) {
        do {
            let channel = try result.get()
            let handler = UpstreamHandler()
            try channel.pipeline.syncOperations.addHandler(handler)
            let connection = UpstreamConnection(channel: channel, handler: handler)
            connection.pool = self
            made.assumeIsolated().succeed(connection)
        } catch {
            made.fail(error)
        }
    }
}

/// An HTTP/2 connection to the upstream and the multiplexer that opens its streams.
struct HTTP2Upstream: Sendable {
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
}

/// Completes a promise when the TLS handshake finishes (or the connection fails first).
final class HandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let promise: EventLoopPromise<Void>
    /// The application protocol the server must agree to (ALPN), if any.
    private let required: String?

    init(promise: EventLoopPromise<Void>, requiring required: String? = nil) {
        self.promise = promise
        self.required = required
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
            if let required, negotiated != required {
                promise.fail(UpstreamConnectError(
                    kind: .tls, message: "the upstream did not agree to \(required) (ALPN: \(negotiated ?? "none"))"))
                context.close(promise: nil)
            } else {
                promise.succeed()
            }
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}
