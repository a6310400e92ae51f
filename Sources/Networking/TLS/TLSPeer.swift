import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// Who the client of a TLS connection proved to be: the leaf certificate it presented, which the TLS library
/// verified against the listener's trust bundle in the handshake, and what the listener's `PeerIdentifier` made of
/// it. Decided once per connection; Networking carries it to the requests of that connection and never reads it.
public struct TLSPeer: Sendable {
    /// The verified leaf certificate (DER).
    public var certificate: [UInt8]
    /// The name the identifier gave the client.
    public var identity: String
    /// The identifier's verdict on this client for whatever the application guards (an allow-list, say).
    public var authorized: Bool

    public init(certificate: [UInt8], identity: String, authorized: Bool) {
        self.certificate = certificate
        self.identity = identity
        self.authorized = authorized
    }
}

/// Names the client of a TLS connection from its verified leaf certificate (DER); nil leaves it anonymous. Runs
/// once per connection, on its event loop, when the handshake completes, and so also for a resumed session, whose
/// certificate was verified in the handshake that established it.
public typealias PeerIdentifier = @Sendable (_ verifiedLeaf: [UInt8]) -> TLSPeer?

/// Where a connection keeps its `TLSPeer`, read by the tasks that serve its requests.
final class TLSPeerSlot: Sendable {
    private let peer = Mutex<TLSPeer?>(nil)

    var value: TLSPeer? {
        get { peer.withLock { $0 } }
        set { peer.withLock { $0 = newValue } }
    }
}

/// Sits after the TLS handler: when the handshake completes, hands the verified leaf to the identifier and the
/// result to `record`, then leaves the pipeline. It runs before any application data is read, because the TLS
/// handler delivers the handshake event before the bytes that follow it.
final class TLSPeerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let identify: PeerIdentifier
    private let record: (TLSPeer?) -> Void

    init(identify: @escaping PeerIdentifier, record: @escaping (TLSPeer?) -> Void) {
        self.identify = identify
        self.record = record
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            let leaf = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate?
                .toDERBytes()
            record(leaf.flatMap(identify))
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}
