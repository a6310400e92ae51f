import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A real HTTP(S) server on 127.0.0.1 serving documents the test changes while it runs: key rotation, errors,
/// slow or silent answers, and being down.
final class JWKSTestServer: Sendable {
    struct Document: Sendable {
        var status: Int = 200
        var body: String
        var delay: TimeAmount? = nil
        /// Never answer (to test timeouts).
        var silent = false
        var location: String? = nil
    }

    /// What the server serves and what it was asked, shared with its connection handlers.
    final class Shared: Sendable {
        struct State {
            var documents: [String: Document] = [:]
            var requests: [String] = []
        }

        let state = Mutex(State())
    }

    let shared = Shared()
    private let channel: Mutex<(any Channel)?> = Mutex(nil)
    let port: Int
    let isSecure: Bool

    /// Starts a server on a free port (or `port`), with TLS when `tls` is given.
    init(tls: TLSConfiguration? = nil, port: Int = 0) async throws {
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        isSecure = tls != nil
        let shared = self.shared
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(DocumentHandler(shared: shared))
                }
            }
        let server = try await bootstrap.bind(host: "127.0.0.1", port: port).get()
        self.port = server.localAddress?.port ?? port
        channel.withLock { $0 = server }
    }

    var baseURL: String { (isSecure ? "https" : "http") + "://127.0.0.1:\(port)" }

    func serve(_ path: String, _ document: Document) {
        shared.state.withLock { $0.documents[path] = document }
    }

    func serve(_ path: String, body: String) { serve(path, Document(body: body)) }

    func requestCount(_ path: String) -> Int { shared.state.withLock { $0.requests.filter { $0 == path }.count } }

    /// Closes the listening socket: later connections are refused.
    func stop() async throws {
        let server = channel.withLock { current -> (any Channel)? in
            defer { current = nil }
            return current
        }
        try await server?.close()
    }
}

private final class DocumentHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let shared: JWKSTestServer.Shared
    var path = "/"

    init(shared: JWKSTestServer.Shared) { self.shared = shared }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): path = head.uri
        case .body: break
        case .end: respond(context)
        }
    }

    private func respond(_ context: ChannelHandlerContext) {
        let path = self.path
        let document = shared.state.withLock { state -> JWKSTestServer.Document? in
            state.requests.append(path)
            return state.documents[path]
        }
        let chosen = document ?? JWKSTestServer.Document(status: 404, body: "not found")
        if chosen.silent { return }
        let send = { [self] in
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(chosen.body.utf8.count))
            headers.add(name: "Connection", value: "close")
            if let location = chosen.location { headers.add(name: "Location", value: location) }
            let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: chosen.status), headers: headers)
            context.write(self.wrapOutboundOut(.head(head)), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: chosen.body.utf8.count)
            buffer.writeString(chosen.body)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
        if let delay = chosen.delay {
            let loop = context.eventLoop
            loop.assumeIsolated().scheduleTask(in: delay) { send() }
        } else {
            send()
        }
    }
}
