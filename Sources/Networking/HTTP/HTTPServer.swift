import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// An HTTP/1.1 listener. Each connection's requests are read whole through an `HTTPRequestAssembler` and
/// answered by the server's `Answer`: in place on the connection's event loop (no hop to another thread, the
/// cheapest round trip — for routes that only compute; `InPlaceHTTPConnection`) or by an async function (NIO's
/// pipelining handler keeps those responses in request order). A bad connection only ever closes itself.
///
/// Graceful shutdown stops accepting, closes idle keep-alive connections and lets each busy one finish its
/// response before closing; `serve` returns when the last connection has closed.
public struct HTTPServer: Sendable {
    /// The addresses of a connection.
    public struct Connection: Sendable {
        public var remoteIP: String?
        public var remotePort: Int?
        public var localIP: String?
        public var localPort: Int?
        /// The client's verified certificate and identity, on a TLS listener with a `PeerIdentifier`.
        public var peer: TLSPeer?

        public init(
            remoteIP: String? = nil, remotePort: Int? = nil, localIP: String? = nil, localPort: Int? = nil,
            peer: TLSPeer? = nil
        ) {
            self.remoteIP = remoteIP
            self.remotePort = remotePort
            self.localIP = localIP
            self.localPort = localPort
            self.peer = peer
        }
    }

    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var tls: ReloadingTLSContext?
        /// Names each TLS client from the certificate it presented (the context must ask for client certificates
        /// and verify them against a trust bundle); the name reaches the handler as `Connection.peer`.
        public var identifyPeer: PeerIdentifier?
        public var maxBodyBytes: Int
        /// Connections with no traffic for this long are closed.
        public var idleTimeout: TimeAmount
        /// A request must be whole this long after its first byte; the connection is closed otherwise.
        public var requestTimeout: TimeAmount
        /// Connections beyond this many are closed as they are accepted.
        public var maxConnections: Int
        /// The body bytes all connections hold together; a request whose body would pass it is answered 503 and its
        /// connection closed (see `ListenerByteBudget`).
        public var maxBufferedBytes: Int

        public init(
            host: String, port: Int, tls: ReloadingTLSContext? = nil, identifyPeer: PeerIdentifier? = nil,
            maxBodyBytes: Int = 1 << 20, idleTimeout: TimeAmount = .seconds(60), requestTimeout: TimeAmount = .seconds(10),
            maxConnections: Int = 10_000, maxBufferedBytes: Int = 256 << 20
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.identifyPeer = identifyPeer
            self.maxBodyBytes = maxBodyBytes
            self.idleTimeout = idleTimeout
            self.requestTimeout = requestTimeout
            self.maxConnections = maxConnections
            self.maxBufferedBytes = maxBufferedBytes
        }
    }

    /// How a whole request is answered.
    public enum Answer: Sendable {
        /// On the connection's event loop, before the next read: for routes that compute and never wait.
        case inPlace(@Sendable (HTTPRequest, Connection) -> HTTPResponse)
        /// By a task, for routes that wait (file writes, other services); the response is written when it ends.
        case async(@Sendable (HTTPRequest, Connection) async -> HTTPResponse)
    }

    public let options: Options
    public let reject: @Sendable (HTTPRejection) -> HTTPResponse
    public let answer: Answer

    public init(
        options: Options,
        reject: @escaping @Sendable (HTTPRejection) -> HTTPResponse = HTTPResponse.plain,
        handle: @escaping @Sendable (HTTPRequest, Connection) async -> HTTPResponse
    ) {
        self.init(options: options, reject: reject, answer: .async(handle))
    }

    public init(
        options: Options, reject: @escaping @Sendable (HTTPRejection) -> HTTPResponse = HTTPResponse.plain,
        answer: Answer
    ) {
        self.options = options
        self.reject = reject
        self.answer = answer
    }

    /// Binds the socket; `serve` (or running the listener as a service) then accepts connections.
    public func bind(group: MultiThreadedEventLoopGroup = .singleton) async throws -> Listener {
        let tls = options.tls
        let identifyPeer = options.identifyPeer
        let idleTimeout = options.idleTimeout, requestTimeout = options.requestTimeout
        let tracker = ConnectionTracker(maximumConnections: options.maxConnections)
        let budget = ListenerByteBudget(limit: options.maxBufferedBytes)
        let server = self
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: options.host, port: options.port) { child in
                child.eventLoop.makeCompletedFuture {
                    tracker.admit(child)
                    let sync = child.pipeline.syncOperations
                    var slot: TLSPeerSlot?
                    if let tls {
                        try sync.addHandler(NIOSSLServerHandler(context: tls.current))
                        if let identifyPeer {
                            let peer = TLSPeerSlot()
                            try sync.addHandler(TLSPeerHandler(identify: identifyPeer) { peer.value = $0 })
                            slot = peer
                        }
                    }
                    switch server.answer {
                    case .inPlace(let answer):
                        try InPlaceHTTPConnection.configure(sync, server: server, answer: answer, peer: slot, budget: budget)
                    case .async(let answer):
                        try sync.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                        try sync.addHandler(IdleConnectionCloser())
                        let deadline = HTTPRequestDeadline(timeout: requestTimeout)
                        try sync.addHandler(deadline.start)
                        try sync.configureHTTPServerPipeline(withErrorHandling: true)
                        try sync.addHandler(deadline.end)
                        try sync.addHandler(HTTPConnectionHandler(server: server, answer: answer, peer: slot, budget: budget))
                    }
                    return child
                }
            }
        tracker.setListener(channel.channel)
        return Listener(channel: channel, tracker: tracker, budget: budget)
    }

    /// A bound HTTP listener. As a `Service`, it serves until graceful shutdown or cancellation.
    public struct Listener: Service {
        let channel: NIOAsyncChannel<any Channel, Never>
        public let tracker: ConnectionTracker
        let budget: ListenerByteBudget

        /// The request body bytes the connections hold now.
        public var bufferedBytes: Int { budget.held }

        /// The bound port (the real one when 0 was asked for).
        public var port: Int? { channel.channel.localAddress?.port }

        /// Accepts connections until shutdown; returns when every connection has closed. Cancellation closes
        /// them all at once.
        public func serve() async throws {
            try await withTaskCancellationHandler {
                try await withThrowingDiscardingTaskGroup { group in
                    try await channel.executeThenClose { inbound in
                        for try await connection in inbound {
                            group.addTask { try? await connection.closeFuture.get() }
                        }
                    }
                }
            } onCancel: {
                tracker.closeAll()
            }
        }

        public func beginGracefulShutdown() { tracker.beginGracefulShutdown() }

        public func run() async throws {
            try await withGracefulShutdownHandler {
                try await serve()
            } onGracefulShutdown: {
                beginGracefulShutdown()
            }
        }
    }
}

/// One connection's requests on a listener that answers by tasks: assembled whole, answered, written in order.
/// Requests that arrive while one is being answered wait in NIO's pipelining handler, which also closes the
/// connection on graceful shutdown once its response is out. (In-place listeners use `InPlaceHTTPConnection`.)
final class HTTPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: HTTPServer
    private let answer: @Sendable (HTTPRequest, HTTPServer.Connection) async -> HTTPResponse
    private let peerSlot: TLSPeerSlot?
    private var assembler: HTTPRequestAssembler
    private var connection: HTTPServer.Connection?

    init(server: HTTPServer, answer: @escaping @Sendable (HTTPRequest, HTTPServer.Connection) async -> HTTPResponse,
         peer: TLSPeerSlot?, budget: ListenerByteBudget) {
        self.server = server
        self.answer = answer
        self.peerSlot = peer
        self.assembler = HTTPRequestAssembler(maxBodyBytes: server.options.maxBodyBytes, budget: budget)
    }

    func channelInactive(context: ChannelHandlerContext) {
        assembler.giveBack()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch assembler.receive(unwrapInboundIn(data)) {
        case .none:
            break
        case .deliver(let request):
            let connection = self.connection ?? HTTPServer.Connection(context.channel, peer: peerSlot?.value)
            self.connection = connection
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let promise = context.eventLoop.makePromise(of: HTTPResponse.self)
            let answer = self.answer
            // The body is the request's now; the next one on this connection waits in NIO's pipelining handler.
            assembler.giveBack()
            promise.completeWithTask { await answer(request, connection) }
            promise.futureResult.whenSuccess { response in
                let (handler, context) = bound.value
                handler.write(response, keepAlive: request.keepAlive, context: context)
            }
        case .reject(let rejection):
            write(server.reject(rejection), keepAlive: false, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The peer went away or sent garbage; only this connection is affected.
        context.close(promise: nil)
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headers.count + 2)
        for field in response.headers { headers.add(name: field.name, value: field.value) }
        headers.replaceOrAdd(name: "content-length", value: String(response.body.count))
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

extension HTTPResponse {
    /// A refusal as plain text: 413 for a body over the limit, 400 for a malformed request, 503 past the listener's
    /// bound on held bytes.
    public static func plain(_ rejection: HTTPRejection) -> HTTPResponse {
        let status = switch rejection {
        case .bodyTooLarge: 413
        case .malformed: 400
        case .overloaded: 503
        }
        var headers = [(name: "content-type", value: "text/plain; charset=utf-8")]
        if case .overloaded = rejection { headers.append(("retry-after", "1")) }
        return .init(status: status, headers: headers, body: Array((rejection.message + "\n").utf8))
    }
}

/// Closes a connection that has been idle past the timeout.
final class IdleConnectionCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
