import Identity
import NIOCore
import NIOPosix
import Networking
import ServiceLifecycle

/// The proxy's listening socket: inbound (first bytes sniffed, PeerAuthentication, TLS, HTTP/1.1 or HTTP/2) or
/// outbound (plaintext HTTP/1.1 or h2c from the local application). Connections are admitted through a
/// `ConnectionTracker`; graceful shutdown stops accepting, asks every connection to finish its exchange (HTTP/1.1
/// closes after the response in flight, HTTP/2 sends GOAWAY) and returns when the last has closed. Each connection
/// opened and closed is activity for `memory`, which gives the heap back once the proxy goes quiet.
public final class ProxyListener: Service, Sendable {
    public enum Kind: Sendable {
        /// TLS when configured (nil: plaintext only).
        case inbound(InboundTLS?)
        case outbound
    }

    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var maximumConnections: Int
        public var limits: ConnectionLimits

        public init(host: String, port: Int, maximumConnections: Int = 10_000, limits: ConnectionLimits = .init()) {
            self.host = host
            self.port = port
            self.maximumConnections = maximumConnections
            self.limits = limits
        }
    }

    public let options: Options
    public let kind: Kind
    public let tracker: ConnectionTracker
    let environment: ProxyEnvironment
    let observer: any ConnectionObserver
    private let channel: any Channel

    /// The bound port (the real one when 0 was asked for).
    public var port: Int { channel.localAddress?.port ?? options.port }

    /// Binds the socket; connections are accepted from then on.
    public init(
        options: Options, kind: Kind, environment: ProxyEnvironment, observer: any ConnectionObserver,
        memory: QuietMemoryTrim? = nil, group: MultiThreadedEventLoopGroup = .singleton
    ) async throws {
        self.options = options
        self.kind = kind
        self.environment = environment
        self.observer = observer
        let tracker = ConnectionTracker(maximumConnections: options.maximumConnections)
        self.tracker = tracker
        let http = HTTPPipeline(environment: environment, limits: options.limits)
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    guard tracker.admit(child) else { return }
                    if let memory {
                        memory.noteActivity()
                        child.closeFuture.whenComplete { _ in memory.noteActivity() }
                    }
                    let sync = child.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(allTimeout: TimeAmount(options.limits.idleTimeout)))
                    try sync.addHandler(IdleCloser())
                    switch kind {
                    case .inbound(let tls):
                        try sync.addHandler(
                            ConnectionStartHandler(environment: environment, tls: tls, http: http, observer: observer))
                    case .outbound:
                        // Plaintext from the local application: HTTP/1.1, or HTTP/2 with prior knowledge (gRPC).
                        try sync.addHandler(ConnectionStartHandler(
                            environment: environment, tls: nil, http: http, observer: observer, mode: .disable))
                    }
                }
            }
            .bind(host: options.host, port: options.port).get()
        tracker.setListener(channel)
    }

    /// Serves until graceful shutdown (then drains) or cancellation (then closes everything).
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await tracker.drained()
            } onCancel: {
                tracker.closeAll()
            }
        } onGracefulShutdown: {
            self.tracker.beginGracefulShutdown()
        }
    }
}

/// Closes a connection idle past the timeout.
final class IdleCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
