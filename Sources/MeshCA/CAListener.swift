import GRPCCore
import GRPCNIOTransportHTTP2
import Identity
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Networking
import SwiftASN1
import Synchronization
import X509

/// The CA's gRPC listener: HTTP/2 over TLS where a client certificate is optional, as the certificate service
/// needs (a workload renews with its certificate, but asks for its first one with a bootstrap token and none).
///
/// grpc-swift-nio-transport's Posix transport either requires a client certificate or asks for none, so this
/// listener makes its own TLS handler (swift-nio-ssl, optional client certificates) and hands each connection to
/// grpc-swift-nio-transport's `HTTP2ServerTransport.Custom`. The chain a client presents is accepted in the
/// handshake as it is (the handshake still proves the client holds the leaf's key) and kept per connection; the
/// transport below puts it in each call's context as `PresentedCertificates`, and the service verifies it.
public struct CAListener: ServerTransport {
    public typealias Bytes = GRPCNIOTransportBytes

    private let base: HTTP2ServerTransport.Custom<ListenerFactory>
    private let presented: PresentedChains

    /// A listener on `host:port` (port 0: any free port) presenting `certificateChain` with `key`. A connection
    /// whose TLS handshake takes longer than `handshakeTimeout` is closed.
    public init(
        host: String, port: Int, certificateChain: [Certificate], key: SigningKey,
        eventLoopGroup: MultiThreadedEventLoopGroup = .singleton, maximumRequestSize: Int = 64 * 1024,
        handshakeTimeout: Duration = .seconds(10), maximumConnections: Int = 1024
    ) throws {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try certificateChain.map { .certificate(try NIOSSLCertificate(bytes: PEMCertificates.der($0), format: .der)) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pem.utf8), format: .pem)))
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .optionalVerification
        tls.applicationProtocols = ["grpc-exp", "h2"]
        let context = try NIOSSLContext(configuration: tls)
        let presented = PresentedChains()
        self.presented = presented
        var config = HTTP2ServerTransport.Custom<ListenerFactory>.Config.defaults
        config.rpc.maxRequestPayloadSize = maximumRequestSize
        config.http2.maxConcurrentStreams = 16
        config.connection.maxIdleTime = .seconds(300)
        base = HTTP2ServerTransport.Custom(
            listenerFactory: ListenerFactory(
                eventLoopGroup: eventLoopGroup, host: host, port: port, sslContext: context, presented: presented,
                handshakeTimeout: .nanoseconds(Int64(handshakeTimeout / .nanoseconds(1))),
                tracker: ConnectionTracker(maximumConnections: maximumConnections)),
            config: config)
    }

    /// The bound address (`host:port`), once listening.
    public var listeningAddress: (host: String, port: Int)? {
        get async {
            guard let address = await base.listeningAddress else { return nil }
            if let ipv4 = address.ipv4 { return (ipv4.host, ipv4.port) }
            if let ipv6 = address.ipv6 { return (ipv6.host, ipv6.port) }
            return nil
        }
    }

    public func configure(context: GRPCServerContext) {
        base.configure(context: context)
    }

    public func listen(
        streamHandler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void
    ) async throws {
        let presented = self.presented
        try await base.listen { stream, context in
            var context = context
            context.transportSpecific = PresentedCertificates(
                chain: presented.chain(for: PresentedChains.key(remote: context.remotePeer, local: context.localPeer)))
            await streamHandler(stream, context)
        }
    }

    public func beginGracefulShutdown() {
        base.beginGracefulShutdown()
    }

    struct ListenerFactory: HTTP2ServerTransport.ListenerFactory {
        let eventLoopGroup: any EventLoopGroup
        let host: String
        let port: Int
        let sslContext: NIOSSLContext
        let presented: PresentedChains
        let handshakeTimeout: TimeAmount
        /// Admission under the connection limit (the transport itself drains connections on shutdown).
        let tracker: ConnectionTracker

        func makeListeningChannel(
            listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
            connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
        ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
            let presented = self.presented
            let sslContext = self.sslContext
            let handshakeTimeout = self.handshakeTimeout
            let tracker = self.tracker
            return try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { channel in listenerConfigurator.configure(channel: channel) }
                .bind(host: host, port: port) { channel in
                    guard tracker.admit(channel) else {
                        return channel.eventLoop.makeFailedFuture(ChannelError.inputClosed)
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        let peer = PresentedChains.key(channel)
                        let connection = presented.opened(peer: peer)
                        let handler = NIOSSLServerHandler(
                            context: sslContext,
                            customVerificationCallbackWithMetadata: { certificates, promise in
                                presented.record(certificates, peer: peer, connection: connection)
                                promise.succeed(.certificateVerified(VerificationMetadata(nil)))
                            })
                        try channel.pipeline.syncOperations.addHandler(handler)
                        try channel.pipeline.syncOperations.addHandler(HandshakeDeadline(channel: channel, limit: handshakeTimeout))
                        channel.closeFuture.whenComplete { _ in presented.closed(peer: peer, connection: connection) }
                    }.flatMap {
                        connectionConfigurator.configure(channel: channel, tls: .configured(requireALPN: false))
                    }
                }
        }
    }
}

/// The chains clients presented, per open connection, found again by the peer address gRPC gives each call.
final class PresentedChains: Sendable {
    private struct Entry {
        var connection: UInt64
        var chain: [Certificate]
    }

    private let state = Mutex<(next: UInt64, entries: [String: Entry])>((0, [:]))
    /// A client may present at most this many certificates.
    static let maximumChainLength = 10

    /// Registers a new connection from `peer` with no certificate yet; returns its id.
    func opened(peer: String?) -> UInt64 {
        state.withLock { state in
            state.next += 1
            if let peer { state.entries[peer] = Entry(connection: state.next, chain: []) }
            return state.next
        }
    }

    func record(_ certificates: [NIOSSLCertificate], peer: String?, connection: UInt64) {
        guard let peer else { return }
        let chain = certificates.prefix(Self.maximumChainLength).compactMap { certificate -> Certificate? in
            guard let der = try? certificate.toDERBytes() else { return nil }
            return try? Certificate(derEncoded: der)
        }
        state.withLock { state in
            if state.entries[peer]?.connection == connection { state.entries[peer]?.chain = chain }
        }
    }

    func closed(peer: String?, connection: UInt64) {
        guard let peer else { return }
        state.withLock { state in
            if state.entries[peer]?.connection == connection { state.entries[peer] = nil }
        }
    }

    func chain(for peer: String) -> [Certificate] {
        state.withLock { $0.entries[peer]?.chain ?? [] }
    }

    /// A connection's key: its remote and local addresses (together unique among open TCP connections), written
    /// as grpc-swift-nio-transport writes `ServerContext.remotePeer` and `localPeer`, so a call finds its own
    /// connection's chain and never another's. Should the spelling ever differ, calls find no chain: certificate
    /// callers are then refused, never given another connection's identity.
    static func key(_ channel: any Channel) -> String? {
        guard let remote = address(channel.remoteAddress), let local = address(channel.localAddress) else { return nil }
        return key(remote: remote, local: local)
    }

    static func key(remote: String, local: String) -> String { remote + " " + local }

    private static func address(_ address: NIOCore.SocketAddress?) -> String? {
        switch address {
        case .v4(let v4)?: address?.port.map { "ipv4:\(v4.host):\($0)" }
        case .v6(let v6)?: address?.port.map { "ipv6:[\(v6.host)]:\($0)" }
        default: nil
        }
    }
}

/// Closes a connection whose TLS handshake has not completed within `limit`, so a client that connects and stays
/// silent holds nothing for long.
final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private var timeout: Scheduled<Void>?

    init(channel: any Channel, limit: TimeAmount) {
        timeout = channel.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            timeout?.cancel()
            timeout = nil
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }
}
