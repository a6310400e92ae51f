import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The HTTP/1.1 listener: one task per connection, each reading whole requests through an
/// `HTTPRequestAssembler` and answering them with the `HTTPAPI`. A bad connection only ever closes itself.
public struct HTTPServer: Sendable {
    public struct Connection: Sendable {
        public var remoteIP: String?
        public var remotePort: Int?
        public var localIP: String?
        public var localPort: Int?
    }

    public let host: String
    public let port: Int
    public let tls: NIOSSLContext?
    public let maxBodyBytes: Int
    /// Connections idle for this long are closed.
    public let idleTimeout: TimeAmount
    public let handle: @Sendable (HTTPRequest, Connection) async -> HTTPResponse

    public init(
        host: String, port: Int, tls: NIOSSLContext? = nil, maxBodyBytes: Int, idleTimeout: TimeAmount = .seconds(60),
        handle: @escaping @Sendable (HTTPRequest, Connection) async -> HTTPResponse
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeout = idleTimeout
        self.handle = handle
    }

    typealias ConnectionChannel = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// Binds the socket; `serve` then accepts connections until its task is cancelled.
    public func bind(group: MultiThreadedEventLoopGroup = .singleton) async throws -> Listener {
        let tls = self.tls
        let idleTimeout = self.idleTimeout
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { child in
                child.eventLoop.makeCompletedFuture {
                    if let tls { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try child.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                    try child.pipeline.syncOperations.addHandler(IdleConnectionCloser())
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try ConnectionChannel(wrappingChannelSynchronously: child)
                }
            }
        return Listener(channel: channel, server: self)
    }

    public struct Listener: Sendable {
        let channel: NIOAsyncChannel<ConnectionChannel, Never>
        let server: HTTPServer

        /// The bound address (the real port when 0 was asked for).
        public var port: Int? { channel.channel.localAddress?.port }

        /// Accepts connections until cancelled.
        public func serve() async throws {
            try await withThrowingDiscardingTaskGroup { group in
                try await channel.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await server.serve(connection) }
                    }
                }
            }
        }
    }

    func serve(_ connection: ConnectionChannel) async {
        let remote = connection.channel.remoteAddress
        let local = connection.channel.localAddress
        let info = Connection(remoteIP: remote?.ipAddress, remotePort: remote?.port, localIP: local?.ipAddress, localPort: local?.port)
        do {
            try await connection.executeThenClose { inbound, outbound in
                var assembler = HTTPRequestAssembler(maxBodyBytes: maxBodyBytes)
                for try await part in inbound {
                    switch assembler.receive(part) {
                    case .none:
                        continue
                    case .deliver(let request):
                        let response = await handle(request, info)
                        try await write(response, keepAlive: request.keepAlive, to: outbound)
                        if !request.keepAlive { return }
                    case .reject(let response):
                        try await write(response, keepAlive: false, to: outbound)
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
