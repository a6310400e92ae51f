import GRPCCore
import GRPCNIOTransportHTTP2
import Identity
import NIOCore
import NIOPosix
import NIOSSL
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

    /// A listener on `host:port` (port 0: any free port) presenting `certificateChain` with `key`.
    public init(
        host: String, port: Int, certificateChain: [Certificate], key: SigningKey,
        eventLoopGroup: MultiThreadedEventLoopGroup = .singleton, maximumRequestSize: Int = 64 * 1024
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
        base = HTTP2ServerTransport.Custom(
            listenerFactory: ListenerFactory(
                eventLoopGroup: eventLoopGroup, host: host, port: port, sslContext: context, presented: presented),
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
            context.transportSpecific = PresentedCertificates(chain: presented.chain(forPeer: context.remotePeer))
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

        func makeListeningChannel(
            listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
            connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
        ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
            let presented = self.presented
            let sslContext = self.sslContext
            return try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { channel in listenerConfigurator.configure(channel: channel) }
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let peer = PresentedChains.key(channel.remoteAddress)
                        let connection = presented.opened(peer: peer)
                        let handler = NIOSSLServerHandler(
                            context: sslContext,
                            customVerificationCallbackWithMetadata: { certificates, promise in
                                presented.record(certificates, peer: peer, connection: connection)
                                promise.succeed(.certificateVerified(VerificationMetadata(nil)))
                            })
                        try channel.pipeline.syncOperations.addHandler(handler)
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

    func chain(forPeer peer: String) -> [Certificate] {
        state.withLock { $0.entries[peer]?.chain ?? [] }
    }

    /// A connection's remote address written as grpc-swift-nio-transport writes `ServerContext.remotePeer`.
    static func key(_ address: NIOCore.SocketAddress?) -> String? {
        guard let address, let port = address.port, let host = address.ipAddress else { return nil }
        switch address {
        case .v4: return "ipv4:\(host):\(port)"
        case .v6: return "ipv6:[\(host)]:\(port)"
        case .unixDomainSocket: return nil
        }
    }
}
