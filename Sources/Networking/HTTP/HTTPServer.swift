import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// An HTTP/1.1 listener: one task per connection, each reading whole requests through an `HTTPRequestAssembler`
/// and answering them with `handle`. A bad connection only ever closes itself.
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

        public init(
            host: String, port: Int, tls: ReloadingTLSContext? = nil, identifyPeer: PeerIdentifier? = nil,
            maxBodyBytes: Int = 1 << 20, idleTimeout: TimeAmount = .seconds(60), requestTimeout: TimeAmount = .seconds(10),
            maxConnections: Int = 10_000
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.identifyPeer = identifyPeer
            self.maxBodyBytes = maxBodyBytes
            self.idleTimeout = idleTimeout
            self.requestTimeout = requestTimeout
            self.maxConnections = maxConnections
        }
    }

    public let options: Options
    public let reject: @Sendable (HTTPRejection) -> HTTPResponse
    public let handle: @Sendable (HTTPRequest, Connection) async -> HTTPResponse

    public init(
        options: Options,
        reject: @escaping @Sendable (HTTPRejection) -> HTTPResponse = HTTPResponse.plain,
        handle: @escaping @Sendable (HTTPRequest, Connection) async -> HTTPResponse
    ) {
        self.options = options
        self.reject = reject
        self.handle = handle
    }

    typealias ConnectionChannel = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// An accepted connection and, on a listener that identifies its TLS clients, where its peer is kept.
    struct Accepted: Sendable {
        var channel: ConnectionChannel
        var peer: TLSPeerSlot?
    }

    /// Binds the socket; `serve` (or running the listener as a service) then accepts connections.
    public func bind(group: MultiThreadedEventLoopGroup = .singleton) async throws -> Listener {
        let tls = options.tls
        let identifyPeer = options.identifyPeer
        let idleTimeout = options.idleTimeout, requestTimeout = options.requestTimeout
        let tracker = ConnectionTracker(maximumConnections: options.maxConnections)
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
                    try sync.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                    try sync.addHandler(IdleConnectionCloser())
                    let deadline = HTTPRequestDeadline(timeout: requestTimeout)
                    try sync.addHandler(deadline.start)
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(deadline.end)
                    return Accepted(channel: try ConnectionChannel(wrappingChannelSynchronously: child), peer: slot)
                }
            }
        tracker.setListener(channel.channel)
        return Listener(channel: channel, server: self, tracker: tracker)
    }

    /// A bound HTTP listener. As a `Service`, it serves until graceful shutdown or cancellation.
    public struct Listener: Service {
        let channel: NIOAsyncChannel<Accepted, Never>
        let server: HTTPServer
        public let tracker: ConnectionTracker

        /// The bound port (the real one when 0 was asked for).
        public var port: Int? { channel.channel.localAddress?.port }

        /// Accepts connections until shutdown; returns when every connection has closed. Cancellation closes
        /// them all at once.
        public func serve() async throws {
            try await withTaskCancellationHandler {
                try await withThrowingDiscardingTaskGroup { group in
                    try await channel.executeThenClose { inbound in
                        for try await connection in inbound {
                            group.addTask { await server.serve(connection) }
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

    func serve(_ accepted: Accepted) async {
        let connection = accepted.channel
        let remote = connection.channel.remoteAddress
        let local = connection.channel.localAddress
        var info = Connection(remoteIP: remote?.ipAddress, remotePort: remote?.port, localIP: local?.ipAddress, localPort: local?.port)
        do {
            try await connection.executeThenClose { inbound, outbound in
                var assembler = HTTPRequestAssembler(maxBodyBytes: options.maxBodyBytes)
                for try await part in inbound {
                    switch assembler.receive(part) {
                    case .none:
                        continue
                    case .deliver(let request):
                        // A request is read only after the handshake, so the peer is known by now.
                        if let slot = accepted.peer, info.peer == nil { info.peer = slot.value }
                        let response = await handle(request, info)
                        try await write(response, keepAlive: request.keepAlive, to: outbound)
                        if !request.keepAlive { return }
                    case .reject(let rejection):
                        try await write(reject(rejection), keepAlive: false, to: outbound)
                        return
                    }
                }
            }
        } catch {
            // The peer went away or sent garbage; only this connection is affected.
        }
    }

    func write(
        _ response: HTTPResponse, keepAlive: Bool, to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
        headers.replaceOrAdd(name: "content-length", value: String(response.body.count))
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        try await outbound.write(contentsOf: [
            .head(head), .body(.byteBuffer(ByteBuffer(bytes: response.body))), .end(nil),
        ])
    }
}

extension HTTPResponse {
    /// A refusal as plain text: 413 for a body over the limit, 400 for a malformed request.
    public static func plain(_ rejection: HTTPRejection) -> HTTPResponse {
        switch rejection {
        case .bodyTooLarge(let limit):
            .init(status: 413, headers: [("content-type", "text/plain; charset=utf-8")],
                  body: Array("request body exceeds the limit of \(limit) bytes\n".utf8))
        case .malformed:
            .init(status: 400, headers: [("content-type", "text/plain; charset=utf-8")], body: Array("malformed HTTP request\n".utf8))
        }
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
