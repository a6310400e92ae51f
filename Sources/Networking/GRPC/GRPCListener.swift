import Foundation
import GRPCCore
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import Synchronization

/// A unary method answered in place: on the event loop that read the request, with no task, no async sequence
/// and one flush. The ext_authz Check is one, because proxies call it on every request.
public struct InPlaceMethod: Sendable {
    public let descriptor: MethodDescriptor
    /// Turns the request message into the response message, or throws an `RPCError` that becomes the status.
    /// `peer` is the connection's TLS client, when the listener identifies its clients (`Options.identifyPeer`).
    public let respond: @Sendable (_ request: [UInt8], _ peer: TLSPeer?) throws -> [UInt8]

    public init(
        descriptor: MethodDescriptor, respond: @escaping @Sendable (_ request: [UInt8], _ peer: TLSPeer?) throws -> [UInt8]
    ) {
        self.descriptor = descriptor
        self.respond = respond
    }
}

/// The gRPC listener: HTTP/2 (h2c, or TLS with ALPN `h2`) on swift-nio-http2, as a grpc-swift-2
/// `ServerTransport`. Each connection's frames are read by one `GRPCConnectionHandler`, with no channel per stream:
/// methods in `inPlace` are answered on the event loop; every other call is read whole and handed to the
/// `GRPCServer` listening on this transport, which serves the remaining services (health) with grpc-swift-2's own
/// semantics.
///
/// Why not grpc-swift-2's NIO transport for everything: there a unary call runs through a task, async sequences,
/// an async writer and a timeout task, about four times the CPU of the whole call answered in place
/// (BENCHMARKS.md), and a decision costs a fraction of either.
public final class GRPCListener: ServerTransport {
    public typealias Bytes = [UInt8]

    public struct Options: Sendable {
        public var host: String
        public var port: Int
        /// TLS for the listener; its settings must offer ALPN `h2`.
        public var tls: ReloadingTLSContext?
        /// Names each TLS client from the certificate it presented (the context must ask for client certificates
        /// and verify them against a trust bundle), once per connection; in-place methods receive the result.
        public var identifyPeer: PeerIdentifier?
        /// The largest request message accepted; a stream sending more is reset with RESOURCE_EXHAUSTED.
        public var maxMessageBytes: Int
        /// The request bytes one connection's calls may hold together; past it, the connection's flow-control window
        /// is no longer topped up, so HTTP/2 flow control stops the client (see `RequestByteBudget`).
        public var maxConnectionBufferBytes: Int
        /// The request bytes all connections' streams may hold together; a stream that would take them past it is
        /// reset with RESOURCE_EXHAUSTED (see `ListenerByteBudget`).
        public var maxBufferedBytes: Int
        /// SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on a stream before the server reads it.
        public var streamWindowBytes: Int
        /// SETTINGS_MAX_CONCURRENT_STREAMS offered to each client; swift-nio-http2 refuses a stream beyond it.
        public var maxConcurrentStreams: Int
        /// A request must be whole this long after its headers; a stream still arriving then is reset.
        public var requestTimeout: TimeAmount
        /// A connection with no open stream for this long gets a GOAWAY and is closed.
        public var idleTimeout: TimeAmount
        /// Connections beyond this many are closed as they are accepted.
        public var maxConnections: Int
        /// Told of each limit enforced.
        public var observer: (any ListenerLimitObserver)?

        public init(host: String, port: Int, tls: ReloadingTLSContext? = nil, identifyPeer: PeerIdentifier? = nil,
                    maxMessageBytes: Int = 4 << 20, maxConnectionBufferBytes: Int = 16 << 20,
                    maxBufferedBytes: Int = 256 << 20,
                    streamWindowBytes: Int = 65_535, maxConcurrentStreams: Int = 100,
                    requestTimeout: TimeAmount = .seconds(10), idleTimeout: TimeAmount = .seconds(60),
                    maxConnections: Int = 10_000, observer: (any ListenerLimitObserver)? = nil) {
            self.host = host
            self.port = port
            self.tls = tls
            self.identifyPeer = identifyPeer
            self.maxMessageBytes = maxMessageBytes
            self.maxConnectionBufferBytes = maxConnectionBufferBytes
            self.maxBufferedBytes = maxBufferedBytes
            self.streamWindowBytes = streamWindowBytes
            self.maxConcurrentStreams = maxConcurrentStreams
            self.requestTimeout = requestTimeout
            self.idleTimeout = idleTimeout
            self.maxConnections = maxConnections
            self.observer = observer
        }
    }

    public let options: Options
    let inPlace: [String: InPlaceMethod]
    /// The listener's connections: admission, graceful and forced shutdown.
    public let tracker: ConnectionTracker
    /// The request bytes held by all connections' streams.
    let buffered: ListenerByteBudget

    private struct State {
        var handOffs: AsyncStream<HandOff>.Continuation?
        var address: Result<SocketAddress, any Error>?
        var addressWaiters: [CheckedContinuation<SocketAddress, any Error>] = []
    }
    private let state = Mutex(State())

    public init(options: Options, inPlace: [InPlaceMethod]) {
        self.options = options
        self.tracker = ConnectionTracker(maximumConnections: options.maxConnections)
        self.buffered = ListenerByteBudget(limit: options.maxBufferedBytes)
        self.inPlace = Self.routes(inPlace)
    }

    /// The in-place methods by `:path`; the first of two with one name wins.
    static func routes(_ inPlace: [InPlaceMethod]) -> [String: InPlaceMethod] {
        Dictionary(inPlace.map { ("/" + $0.descriptor.fullyQualifiedMethod, $0) }) { first, _ in first }
    }

    /// The address bound, once `listen` has bound it (the port, when 0 asked for an ephemeral one).
    public var listeningAddress: SocketAddress {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let known: Result<SocketAddress, any Error>? = state.withLock { state in
                    if state.address == nil { state.addressWaiters.append(continuation) }
                    return state.address
                }
                if let known { continuation.resume(with: known) }
            }
        }
    }

    /// A stream for `GRPCServer`: the whole request, a writer onto the stream, and when the stream closes.
    struct HandOff: Sendable {
        var stream: RPCStream<Inbound, Outbound>
        var descriptor: MethodDescriptor
        var peers: Peers
        /// Completes when the stream closes (answered, reset by the client, or its connection gone).
        var closed: EventLoopFuture<Void>
    }

    struct Peers: Sendable {
        var remote: String
        var local: String
    }

    public func listen(
        streamHandler: @escaping @Sendable (_ stream: RPCStream<Inbound, Outbound>, _ context: ServerContext) async -> Void
    ) async throws {
        let (handOffs, continuation) = AsyncStream.makeStream(of: HandOff.self)
        state.withLock { $0.handOffs = continuation }
        let server: any Channel
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture { try self.configure(connection: channel, handOffs: continuation) }
                }
                .bind(host: options.host, port: options.port).get()
        } catch {
            publish(address: .failure(error))
            throw error
        }
        tracker.setListener(server)
        Task { [self] in
            // Once shutdown has begun and the last connection closed, no stream can be handed off any more.
            await tracker.drained()
            state.withLock { $0.handOffs?.finish() }
        }
        publish(address: server.localAddress.map { .success($0) } ?? .failure(ChannelError.unknownLocalAddress))

        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                for await handOff in handOffs {
                    group.addTask { await Self.serve(handOff, with: streamHandler) }
                }
            }
        } onCancel: {
            closeEverything()
        }
        try? await server.closeFuture.get()
    }

    /// Stops accepting; each connection gets a GOAWAY and closes once its streams finish; `listen` returns then.
    public func beginGracefulShutdown() {
        tracker.beginGracefulShutdown()
    }

    private func closeEverything() {
        tracker.closeAll()
        state.withLock { $0.handOffs?.finish() }
    }

    private func publish(address: Result<SocketAddress, any Error>) {
        let waiters = state.withLock { state in
            state.address = address
            defer { state.addressWaiters = [] }
            return state.addressWaiters
        }
        for waiter in waiters { waiter.resume(with: address) }
    }

    /// One connection: TLS when configured, HTTP/2 with the listener's limits, and one `GRPCConnectionHandler` for
    /// its calls with the connection's `RequestByteBudget`.
    private func configure(connection channel: any Channel, handOffs: AsyncStream<HandOff>.Continuation) throws {
        let observer = options.observer
        guard tracker.admit(channel) else {
            observer?.limitEnforced(.maxConnections)
            return
        }
        let sync = channel.pipeline.syncOperations
        let budget = RequestByteBudget(limit: options.maxConnectionBufferBytes)
        let calls = GRPCConnectionHandler(
            inPlace: inPlace,
            limits: .init(maxMessageBytes: options.maxMessageBytes, requestTimeout: options.requestTimeout,
                          streamWindowBytes: options.streamWindowBytes, observer: observer),
            budget: budget, listenerBudget: buffered,
            peers: Peers(remote: Self.describe(channel.remoteAddress), local: Self.describe(channel.localAddress)),
            handOffs: handOffs)
        if let tls = options.tls {
            try sync.addHandler(NIOSSLServerHandler(context: tls.current))
            if let identify = options.identifyPeer {
                // The client's identity is decided when the handshake completes, before any stream opens, and read
                // on this event loop by each call: nothing per call.
                let handler = NIOLoopBound(calls, eventLoop: channel.eventLoop)
                try sync.addHandler(TLSPeerHandler(identify: identify) { handler.value.tlsPeer = $0 })
            }
        }
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: options.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16 << 10),
            HTTP2Setting(parameter: .initialWindowSize, value: options.streamWindowBytes),
        ]
        // Graceful shutdown (ChannelShouldQuiesceEvent) becomes GOAWAY; the connection closes once its streams are
        // done. Idleness is the closer's, which does not wait for a silent client's PING acknowledgement. Both
        // count streams from swift-nio-http2's stream events.
        let management = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop, configuration: .init(maxIdleTime: nil, maxAge: nil, maxGraceTime: nil, keepalive: nil))
        let connectionBudget = NIOLoopBound(budget, eventLoop: channel.eventLoop)
        channel.closeFuture.whenComplete { _ in
            if connectionBudget.value.peak >= Self.heavyConnectionBytes { MemoryTrim.soon() }
        }
        try sync.addHandler(NIOHTTP2Handler(mode: .server, connectionConfiguration: connection))
        try sync.addHandler(management)
        try sync.addHandler(HTTP2IdleCloser(timeout: options.idleTimeout) { observer?.limitEnforced(.idleTimeout) })
        try sync.addHandler(calls)
    }

    /// A connection whose streams once held this many request bytes together has the heap trimmed when it closes.
    static let heavyConnectionBytes = 1 << 20

    /// Runs a handed-off stream through `GRPCServer`; ends the handler if the stream goes away first (the client
    /// reset it or the connection closed), as a server-streaming handler would otherwise never notice.
    private static func serve(
        _ handOff: HandOff,
        with streamHandler: @escaping @Sendable (_ stream: RPCStream<Inbound, Outbound>, _ context: ServerContext) async -> Void
    ) async {
        await withServerContextRPCCancellationHandle { handle in
            handOff.closed.whenComplete { _ in handle.cancel() }
            let context = ServerContext(
                descriptor: handOff.descriptor, remotePeer: handOff.peers.remote, localPeer: handOff.peers.local,
                cancellation: handle)
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await streamHandler(handOff.stream, context) }
                group.addTask { try? await handOff.closed.get() }
                _ = await group.next()
                group.cancelAll()
            }
        }
    }

    /// grpc-swift's peer form: `ipv4:127.0.0.1:9191`.
    static func describe(_ address: SocketAddress?) -> String {
        switch address {
        case .v4(let a)?: "ipv4:\(a.host):\(address?.port ?? 0)"
        case .v6(let a)?: "ipv6:[\(a.host)]:\(address?.port ?? 0)"
        case .unixDomainSocket?: "unix:\(address?.pathname ?? "")"
        case nil: "unknown"
        }
    }
}
