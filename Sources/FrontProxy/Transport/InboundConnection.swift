import Identity
import NIOCore
import Networking
import NIOHTTP1
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS

/// Sees connections refused before HTTP and handshakes that failed, by reason (for the metrics and the log).
public protocol ConnectionObserver: Sendable {
    func connectionRefused(reason: String)
    func handshakeFailed(reason: String)
}

/// The TLS side of an inbound listener: server contexts from the workload's certificate files (reloaded when they
/// change) that require or merely accept a client certificate, and the verification of client chains.
public struct InboundTLS: Sendable {
    /// STRICT: a client certificate is required.
    public var requiringClientCertificate: ReloadingTLSContext
    /// PERMISSIVE: a client certificate is verified when presented.
    public var acceptingClientCertificate: ReloadingTLSContext
    public var verification: PeerVerification

    public init(
        requiringClientCertificate: ReloadingTLSContext, acceptingClientCertificate: ReloadingTLSContext,
        verification: PeerVerification
    ) {
        self.requiringClientCertificate = requiringClientCertificate
        self.acceptingClientCertificate = acceptingClientCertificate
        self.verification = verification
    }
}

/// Limits of the connections a listener accepts.
public struct ConnectionLimits: Sendable {
    /// A connection with no traffic for this long is closed.
    public var idleTimeout: Duration
    /// The first bytes, and the TLS handshake, must be done within this long.
    public var handshakeTimeout: Duration
    /// A request head must be whole this long after its first byte (408 otherwise).
    public var headerTimeout: Duration
    /// The header fields of one request together (431 beyond).
    public var maximumHeaderBytes: Int
    /// Concurrent streams of one HTTP/2 connection.
    public var maximumConcurrentStreams: Int

    public init(
        idleTimeout: Duration = .seconds(300), handshakeTimeout: Duration = .seconds(10),
        headerTimeout: Duration = .seconds(10), maximumHeaderBytes: Int = HostileInput.defaultMaximumHeaderBytes,
        maximumConcurrentStreams: Int = 100
    ) {
        self.idleTimeout = idleTimeout
        self.handshakeTimeout = handshakeTimeout
        self.headerTimeout = headerTimeout
        self.maximumHeaderBytes = maximumHeaderBytes
        self.maximumConcurrentStreams = maximumConcurrentStreams
    }
}

/// Builds the HTTP part of a connection's pipeline once it is known whether it speaks TLS, and who the peer is.
struct HTTPPipeline {
    let environment: ProxyEnvironment
    let limits: ConnectionLimits

    /// HTTP/1.1 (`h2` false) or HTTP/2 on `channel`, after the handlers already there.
    func configure(_ channel: any Channel, facts: ConnectionFacts, http2: Bool) throws {
        let sync = channel.pipeline.syncOperations
        if http2 {
            var facts = facts
            facts.httpProtocol = "HTTP/2"
            let streamFacts = facts
            var connection = NIOHTTP2Handler.ConnectionConfiguration()
            connection.initialSettings = [
                HTTP2Setting(parameter: .maxConcurrentStreams, value: limits.maximumConcurrentStreams),
                HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maximumHeaderBytes),
            ]
            let environment = self.environment
            if limits.maximumHeaderBytes > HPACKDecoder.defaultMaxHeaderListSize {
                // The bound applies from the first request, not only once the client has acknowledged it.
                try sync.addHandler(SettingsAcknowledgementGate(maximumHeldBytes: 2 * limits.maximumHeaderBytes + 65_536))
            }
            // Graceful shutdown (ChannelShouldQuiesceEvent) becomes GOAWAY, and the connection closes once its
            // streams are done.
            let management = NIOHTTP2ServerConnectionManagementHandler(
                eventLoop: channel.eventLoop,
                configuration: .init(maxIdleTime: nil, maxAge: nil, maxGraceTime: nil, keepalive: nil))
            _ = try sync.configureHTTP2Pipeline(
                mode: .server, connectionConfiguration: connection, streamConfiguration: .init(),
                streamDelegate: management.http2StreamDelegate
            ) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(EndStreamCoalescer())
                    try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                    try stream.pipeline.syncOperations.addHandler(
                        ProxyHTTPHandler(environment: environment, connection: streamFacts, headTimer: nil))
                }
            }
            try sync.addHandler(management)
            return
        }
        // A client's half-close is an HTTP/1.1 client's way to say it has sent all it will (ProxyHTTPHandler answers
        // what it sent first).
        try channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        let timer = RequestHeadTimer(timeout: TimeAmount(limits.headerTimeout))
        try sync.addHandler(timer)
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderListSize = limits.maximumHeaderBytes
        decoderLimits.maxHeaderFieldSize = limits.maximumHeaderBytes
        // Pipelined requests are ProxyHTTPHandler's to hold (NIO's pipelining handler stops reading around every
        // request).
        try sync.configureHTTPServerPipeline(
            withPipeliningAssistance: false, withErrorHandling: false, withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: decoderLimits)
        try sync.addHandler(ProxyHTTPHandler(environment: environment, connection: facts, headTimer: timer))
    }
}

/// The first handler of an inbound connection: reads until the first bytes say TLS (a whole ClientHello) or
/// plaintext, asks PeerAuthentication (the snapshot's mode for the workload port) what to do, and sets up the rest of
/// the pipeline — TLS with verification of the client's chain, then HTTP — or refuses the connection with a reset
/// (what a plaintext `curl` sees as exit code 56 under STRICT).
final class ConnectionStartHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let environment: ProxyEnvironment
    private let tls: InboundTLS?
    private let http: HTTPPipeline
    private let observer: any ConnectionObserver
    private var buffered: ByteBuffer?
    private var deadline: Scheduled<Void>?
    private var decided = false
    private let mode: MutualTLSMode?

    /// With `mode`, every connection is taken as that mode says (outbound: `DISABLE`, plaintext from the local
    /// application); without, as PeerAuthentication says for the workload's port.
    init(
        environment: ProxyEnvironment, tls: InboundTLS?, http: HTTPPipeline, observer: any ConnectionObserver,
        mode: MutualTLSMode? = nil
    ) {
        self.environment = environment
        self.tls = tls
        self.http = http
        self.observer = observer
        self.mode = mode
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: TimeAmount(http.limits.handshakeTimeout)) {
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if !decided { deadline?.cancel() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !decided else {
            context.fireChannelRead(data)
            return
        }
        var chunk = unwrapInboundIn(data)
        if buffered == nil {
            buffered = chunk
        } else {
            buffered!.writeBuffer(&chunk)
        }
        let start = ConnectionStart.classify(buffered!.readableBytesView)
        if case .needMoreBytes = start { return }
        decided = true
        let plan = ConnectionAdmission.plan(mode: mode ?? environment.snapshot().mode, start: start)
        do {
            try begin(plan, start: start, context: context)
        } catch {
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Shutting down: a connection that has not said anything yet is closed.
        if event is ChannelShouldQuiesceEvent, !decided {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func begin(_ plan: ConnectionAdmission, start: ConnectionStart, context: ChannelHandlerContext) throws {
        let channel = context.channel
        let remote = channel.remoteAddress, local = channel.localAddress
        var facts = ConnectionFacts(
            sourceAddress: remote?.ipAddress, sourcePort: remote?.port, localAddress: local?.ipAddress, localPort: local?.port)
        switch plan {
        case .refuse(let refusal):
            deadline?.cancel()
            observer.connectionRefused(reason: refusal.rawValue)
            Self.reset(channel)
            return
        case .plaintext:
            deadline?.cancel()
            try http.configure(channel, facts: facts, http2: start == .plaintextHTTP2)
        case .terminateTLS(let certificate):
            guard let tls else {
                observer.connectionRefused(reason: "tls_not_configured")
                Self.reset(channel)
                return
            }
            if case .tls(let hello) = start { facts.serverName = hello.serverName }
            facts.isTLS = true
            let box = VerifiedPeerBox()
            let verification = tls.verification
            let observer = self.observer
            let sslContext = certificate == .required
                ? tls.requiringClientCertificate.current : tls.acceptingClientCertificate.current
            let handler = NIOSSLServerHandler(context: sslContext, customVerificationCallback: { certificates, promise in
                verification.verify(certificates, on: channel.eventLoop).whenComplete { result in
                    switch result {
                    case .success(let peer):
                        box.peer = peer
                        promise.succeed(.certificateVerified)
                    case .failure(let error):
                        let failure = (error as? PeerCertificateError) ?? PeerCertificateError(.unknownAuthority)
                        box.failure = failure
                        observer.handshakeFailed(reason: failure.code)
                        promise.succeed(.failed)
                    }
                }
            })
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(handler, position: .after(self))
            try sync.addHandler(
                TLSEstablishedHandler(
                    facts: facts, box: box, verification: verification, http: http, observer: observer,
                    deadline: deadline),
                position: .after(handler))
        }
        if let buffered {
            self.buffered = nil
            context.fireChannelRead(wrapInboundOut(buffered))
        }
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    /// Closes with a TCP reset (SO_LINGER 0), as Envoy's refusal looks to a client that already sent its request.
    static func reset(_ channel: any Channel) {
        guard let provider = channel as? any SocketOptionProvider else {
            channel.close(promise: nil)
            return
        }
        provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Waits for the end of the TLS handshake, then sets up HTTP/1.1 or HTTP/2 (by ALPN) with the peer's identity.
final class TLSEstablishedHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var facts: ConnectionFacts
    private let box: VerifiedPeerBox
    private let verification: PeerVerification
    private let http: HTTPPipeline
    private let observer: any ConnectionObserver
    private let deadline: Scheduled<Void>?
    private var pending: [NIOAny] = []
    private var established = false

    init(
        facts: ConnectionFacts, box: VerifiedPeerBox, verification: PeerVerification, http: HTTPPipeline,
        observer: any ConnectionObserver, deadline: Scheduled<Void>?
    ) {
        self.facts = facts
        self.box = box
        self.verification = verification
        self.http = http
        self.observer = observer
        self.deadline = deadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if established { context.fireChannelRead(data) } else { pending.append(data) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, !established {
            context.close(promise: nil)
            return
        }
        guard case TLSUserEvent.handshakeCompleted(let negotiated) = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        deadline?.cancel()
        if let peer = box.peer {
            finish(peer: peer, negotiated: negotiated, context: context)
            return
        }
        // A resumed session skips verification; verify the certificate it carries again (fail closed).
        let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        guard let certificate = handler?.peerCertificate else {
            finish(peer: nil, negotiated: negotiated, context: context)
            return
        }
        // Answered on this connection's event loop, where the handler and its context live.
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        verification.verify([certificate], on: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(let peer):
                handler.finish(peer: peer, negotiated: negotiated, context: context)
            case .failure(let error):
                handler.observer.handshakeFailed(reason: (error as? PeerCertificateError)?.code ?? "peer_unverified")
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !established {
            if box.failure == nil { observer.handshakeFailed(reason: Self.reason(error)) }
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    private func finish(peer: VerifiedPeer?, negotiated: String?, context: ChannelHandlerContext) {
        facts.peerIdentity = peer?.spiffeID
        facts.peerCertificateHash = peer.map { PeerVerification.hash($0.leaf) }
        // The verification callback, and with it the box, lives as long as the TLS handler: keep only the facts,
        // not the parsed chain (about 2 KB per connection).
        box.peer = nil
        do {
            try http.configure(context.channel, facts: facts, http2: negotiated == "h2")
        } catch {
            context.close(promise: nil)
            return
        }
        established = true
        let pending = self.pending
        self.pending = []
        for data in pending { context.fireChannelRead(data) }
        if !pending.isEmpty { context.fireChannelReadComplete() }
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    /// A short reason for a failed handshake, from BoringSSL's error text.
    static func reason(_ error: any Error) -> String {
        let text = String(describing: error).uppercased()
        if text.contains("UNSUPPORTED_PROTOCOL") || text.contains("WRONG_VERSION") || text.contains("PROTOCOL_VERSION") {
            return "protocol_version"
        }
        if text.contains("NO_SHARED_CIPHER") || text.contains("NO_CIPHERS") { return "no_shared_cipher" }
        if text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") || text.contains("CERTIFICATE_REQUIRED") {
            return "peer_no_certificate"
        }
        if text.contains("EOF") || text.contains("UNCLEAN") { return "closed_during_handshake" }
        return "handshake_failed"
    }
}
