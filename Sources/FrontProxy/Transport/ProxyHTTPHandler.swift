import ExtAuthz
import Identity
import NIOCore
import NIOHTTP1

/// Sees every finished exchange: the access log and the metrics.
public protocol ExchangeObserver: Sendable {
    func exchangeFinished(_ record: ExchangeRecord, connection: ConnectionFacts)
}

/// The configuration a connection or request starts with: swapped whole on reload, so a reload never changes a
/// request half-way.
public struct ProxySnapshot: Sendable {
    public var settings: ExchangeSettings
    /// How PeerAuthentication resolved for the workload.
    public var peerAuthentication: PeerAuthenticationSet.Resolution
    public var revision: Int

    public init(settings: ExchangeSettings, peerAuthentication: PeerAuthenticationSet.Resolution, revision: Int) {
        self.settings = settings
        self.peerAuthentication = peerAuthentication
        self.revision = revision
    }

    /// The mutual TLS mode of the workload port.
    public var mode: MutualTLSMode { peerAuthentication.mode(forPort: settings.workload.port) }
}

/// What every connection of a proxy shares: the configuration snapshot in force, the authorization client, the
/// upstream pool, the timeouts and the observer.
public final class ProxyEnvironment: Sendable {
    public let snapshot: @Sendable () -> ProxySnapshot
    public let authorization: (any AuthorizationClient)?
    public let checkTimeout: Duration
    public let upstream: UpstreamPool
    /// No response head within this long after the request was sent: 504.
    public let upstreamTimeout: TimeAmount
    public let observer: any ExchangeObserver

    public init(
        snapshot: @escaping @Sendable () -> ProxySnapshot, authorization: (any AuthorizationClient)?, checkTimeout: Duration,
        upstream: UpstreamPool, upstreamTimeout: TimeAmount, observer: any ExchangeObserver
    ) {
        self.snapshot = snapshot
        self.authorization = authorization
        self.checkTimeout = checkTimeout
        self.upstream = upstream
        self.upstreamTimeout = upstreamTimeout
        self.observer = observer
    }
}

/// Carries one client's HTTP/1.1 connection, or one HTTP/2 stream, through `ExchangeStateMachine`s: it feeds the
/// machine what arrives (request parts, the check's answer, the upstream's response parts, timers) and performs the
/// one action each event returns. All of it runs on the connection's event loop.
///
/// HTTP/1.1 requests are answered one at a time, in order. The connection keeps reading while a request is in
/// flight (a client that waits for its answer sends nothing meanwhile, so nothing arrives, and the socket's read
/// interest is not dropped and restored around every request); requests a client pipelines behind it, and a parse
/// error among them, are held until it is answered, and reading stops while any are held. On graceful shutdown an
/// idle connection closes, and one with a request in flight closes once it is answered.
final class ProxyHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let environment: ProxyEnvironment
    private let connection: ConnectionFacts
    private let headTimer: RequestHeadTimer?
    private var exchange: ExchangeStateMachine?
    /// Bumped when an exchange ends, so a late answer for an earlier one is dropped.
    private var generation = 0
    /// Serializes this connection's checks, keeping the fields its requests share.
    private var checkEncoder = CheckRequestEncoder()
    private var upstream: UpstreamConnection?
    private var upstreamKeepAlive = true
    private var upstreamDeadline: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private var readingPaused = false
    private var pendingRead = false
    /// The request of the exchange in flight has ended.
    private var requestEnded = false
    /// Pipelined requests' parts (HTTP/1.1), held until the request in flight is answered.
    private var pipelined = CircularBuffer<Pipelined>()
    private var replaying = false
    /// Graceful shutdown: close once the request in flight is answered.
    private var closeAfterResponse = false
    /// The client closed its side of the connection (HTTP/1.1): what it sent is answered, then the connection closes.
    private var inputClosed = false
    /// The response being written is the connection's last.
    private var lastResponse: Bool { closeAfterResponse || (inputClosed && pipelined.isEmpty) }
    /// The connection is closing: nothing held is served.
    private var closing = false
    private var loopPool: UpstreamLoopPool?

    private enum Pipelined {
        case part(HTTPServerRequestPart)
        case parseError(HTTPParserError)
    }

    init(environment: ProxyEnvironment, connection: ConnectionFacts, headTimer: RequestHeadTimer?) {
        self.environment = environment
        self.connection = connection
        self.headTimer = headTimer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loopPool = environment.upstream.pool(for: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    private static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    // MARK: - The client

    /// An HTTP/1.1 connection (an HTTP/2 stream has no head timer).
    private var isHTTP1: Bool { headTimer != nil }

    /// A request in flight has arrived whole: what comes next is a pipelined request's.
    private var wholeRequestInFlight: Bool { exchange != nil && requestEnded }

    /// What arrives now waits for the request in flight to be answered.
    private var mustHold: Bool { !pipelined.isEmpty || wholeRequestInFlight }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if mustHold {
            hold(.part(part))
        } else {
            receive(part)
        }
    }

    private func hold(_ held: Pipelined) {
        guard !closing else { return }
        pipelined.append(held)
        readingPaused = true
    }

    /// Feeds what was held behind the request just answered, up to the next request that must wait; reading
    /// resumes once nothing is held.
    private func replayPipelined() {
        guard !replaying else { return }
        replaying = true
        defer { replaying = false }
        while !closing, !wholeRequestInFlight, let next = pipelined.popFirst() {
            switch next {
            case .part(let part): receive(part)
            case .parseError(let error): if let context { failed(error, context: context) }
            }
        }
        if closing { pipelined.removeAll() }
        resumeReading()
    }

    private func receive(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            headTimer?.headReceived()
            requestEnded = false
            guard exchange == nil else {
                // A new head while a request is still arriving: only a confused client does this.
                closing = true
                context?.close(promise: nil)
                return
            }
            var machine = ExchangeStateMachine(settings: environment.snapshot().settings, connection: connection)
            let action = machine.receiveHead(head, now: Self.now())
            exchange = machine
            perform(action)
        case .body(let chunk):
            guard exchange != nil else { return }
            let action = exchange!.receiveBody(chunk, now: Self.now())
            perform(action)
        case .end:
            guard exchange != nil else { return }
            requestEnded = true
            let action = exchange!.receiveEnd(now: Self.now())
            perform(action)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream?.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        pipelined.removeAll()
        if exchange != nil {
            let action = exchange!.clientClosed(now: Self.now())
            perform(action)
        }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        upstream?.setReading(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parseError = error as? HTTPParserError, context.channel.isActive, mustHold {
            hold(.parseError(parseError))
            return
        }
        failed(error, context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A client that sends its requests and then closes its side (`shutdown(SHUT_WR)`, as BusyBox's wget does)
        // still gets its answers (RFC 9112 §9.6); the connection closes after the last.
        if isHTTP1, case ChannelEvent.inputClosed? = event as? ChannelEvent {
            inputClosed = true
            if exchange == nil && pipelined.isEmpty {
                closing = true
                context.close(promise: nil)
            }
            return
        }
        // HTTP/2's graceful shutdown is the connection's (GOAWAY); its streams never see this.
        guard isHTTP1, event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        pipelined.removeAll()
        if exchange == nil {
            closing = true
            context.close(promise: nil)
        } else {
            closeAfterResponse = true
        }
    }

    private func failed(_ error: any Error, context: ChannelHandlerContext) {
        // A request that could not be parsed is answered when no response has begun; any other error (the
        // connection failed) only closes. Either way the connection closes.
        closing = true
        pipelined.removeAll()
        guard error is HTTPParserError, context.channel.isActive else {
            if exchange != nil {
                let action = exchange!.clientClosed(now: Self.now())
                perform(action)
            }
            context.close(promise: nil)
            return
        }
        let response = HostileInput.response(for: error)
        if exchange == nil || exchange?.isDone == true {
            var machine = ExchangeStateMachine(settings: environment.snapshot().settings, connection: connection)
            machine.recordRejection(status: response.status, now: Self.now())
            environment.observer.exchangeFinished(machine.record, connection: connection)
            let (head, body) = ForwardingStage.localResponse(response, version: .http1_1, keepAlive: false)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            closeWhenWritten(context.writeAndFlush(wrapOutboundOut(.end(nil))), context: context)
        } else {
            let action = exchange!.clientClosed(now: Self.now())
            perform(action)
            context.close(promise: nil)
        }
    }

    func read(context: ChannelHandlerContext) {
        if readingPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    private func resumeReading() {
        guard readingPaused, pipelined.isEmpty else { return }
        readingPaused = false
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    // MARK: - Actions

    private func perform(_ action: ExchangeStateMachine.Action) {
        guard let context else { return }
        switch action {
        case .none:
            break
        case .pauseReading:
            readingPaused = true
        case .authenticate(let authenticator, let request):
            let generation = self.generation
            context.eventLoop.makeFutureWithTask { await authenticator.authenticate(request) }.assumeIsolated().whenSuccess { result in
                guard generation == self.generation, self.exchange != nil else { return }
                let action = self.exchange!.authenticated(result, now: Self.now())
                self.perform(action)
            }
        case .check(let parts):
            let generation = self.generation
            guard let authorization = environment.authorization else {
                // Outbound mode without --authz: nothing to ask.
                let action = exchange!.checked(.success(Self.allowAll), now: Self.now())
                perform(action)
                return
            }
            guard let request = try? checkEncoder.encode(parts) else {
                perform(exchange!.checked(.failure(.error), now: Self.now()))
                return
            }
            let timeout = environment.checkTimeout
            authorization.check(request, timeout: timeout, on: context.eventLoop).assumeIsolated().whenSuccess { result in
                guard generation == self.generation, self.exchange != nil else { return }
                let action = self.exchange!.checked(result, now: Self.now())
                self.perform(action)
            }
        case .respond(let response, let close):
            let close = close || lastResponse
            let version = exchange?.requestVersion ?? .http1_1
            let (head, body) = ForwardingStage.localResponse(response, version: version, keepAlive: !close)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil) }
            let trailers = response.trailers.isEmpty ? nil : HTTPHeaders(response.trailers.map { ($0.name, $0.value) })
            let written = context.writeAndFlush(wrapOutboundOut(.end(trailers)))
            if close { closeWhenWritten(written, context: context) }
            releaseUpstream(keep: false)
            endExchange()
        case .sendContinue:
            sendContinue(context)
        case .connectUpstream(let sendContinue):
            if sendContinue { self.sendContinue(context) }
            connectUpstream(context: context)
        case .sendRequest(let head, let body, let end):
            guard let upstream else { return }
            upstream.write(.head(head))
            for chunk in body { upstream.write(.body(.byteBuffer(chunk))) }
            if end { upstream.write(.end(nil)) }
            upstream.flush()
            if upstream.isWritable { resumeReading() } else { readingPaused = true }
        case .sendRequestBody(let chunk):
            upstream?.write(.body(.byteBuffer(chunk)))
        case .sendRequestEnd:
            upstream?.write(.end(nil))
            upstream?.flush()
        case .sendResponseHead(var head):
            upstreamDeadline?.cancel()
            upstreamDeadline = nil
            if lastResponse { head.headers.replaceOrAdd(name: "connection", value: "close") }
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .sendResponseBody(let chunk):
            context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
        case .finish(let release, let closeDownstream, let trailers):
            let written = context.writeAndFlush(wrapOutboundOut(.end(trailers)))
            if closeDownstream || lastResponse { closeWhenWritten(written, context: context) }
            releaseUpstream(keep: release)
            endExchange()
        case .abort:
            closing = true
            releaseUpstream(keep: false)
            endExchange()
            context.close(promise: nil)
        case .switchProtocols(let head):
            upstreamDeadline?.cancel()
            upstreamDeadline = nil
            guard let upstream else { return }
            self.upstream = nil
            upstream.detach()
            closing = true
            pipelined.removeAll()
            // The upstream's decoder is still handing over the 101's end: the pipelines change on the next turn of
            // the loop.
            context.eventLoop.assumeIsolated().execute { self.becomeTunnel(head, context: context, upstream: upstream) }
        }
    }

    /// Turns both connections into the ends of a tunnel: their HTTP handlers (this one included) leave the
    /// pipelines, a `TunnelHandler` takes their place, and the exchange is reported once both have closed.
    ///
    /// The 101 goes to the client only once the client's HTTP decoder has left (its removal completes on a later
    /// turn of the loop): what a client sends as soon as it has the 101 is then the tunnel's, never the decoder's.
    private func becomeTunnel(_ head: HTTPResponseHead, context: ChannelHandlerContext, upstream: UpstreamConnection) {
        let generation = self.generation
        let ledger = TunnelLedger { ledger in
            guard generation == self.generation, self.exchange != nil else { return }
            self.exchange!.tunnelClosed(
                clientBytes: ledger.clientBytes, upstreamBytes: ledger.upstreamBytes, now: Self.now())
            self.endExchange()
        }
        let (client, server) = TunnelHandler.pair(ledger: ledger)
        let channel = context.channel
        func fail() {
            upstream.close()
            channel.close(promise: nil)
            guard generation == self.generation else { return }
            exchange?.tunnelClosed(clientBytes: 0, upstreamBytes: 0, now: Self.now())
            endExchange()
        }
        guard channel.isActive, upstream.isActive else { return fail() }
        do {
            let sync = context.pipeline.syncOperations
            let decoder = try sync.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            let encoder = try sync.handler(type: HTTPResponseEncoder.self)
            let validator = try? sync.handler(type: NIOHTTPResponseHeadersValidator.self)
            try sync.addHandler(client)
            sync.removeHandler(context: context).whenFailure { _ in channel.close(promise: nil) }
            if let headTimer { channel.removeOrClose(headTimer) }
            sync.removeHandler(decoder).assumeIsolated().whenComplete { result in
                guard case .success = result, channel.isActive, upstream.isActive else { return fail() }
                // Written from the tail, the 101 passes the client's tunnel end untouched and the encoder frames it;
                // then the encoder leaves too.
                sync.writeAndFlush(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
                channel.removeOrClose(encoder)
                if let validator { channel.removeOrClose(validator) }
                do {
                    // What the upstream sent after its 101 reaches the client's end as the upstream's decoder leaves.
                    try upstream.becomeTunnelEnd(server).assumeIsolated().whenComplete { _ in channel.flush() }
                } catch {
                    return fail()
                }
                // A read this handler held while it paused the client left with it.
                channel.read()
            }
        } catch {
            fail()
        }
    }

    private func sendContinue(_ context: ChannelHandlerContext) {
        let version = exchange?.requestVersion ?? .http1_1
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .continue))), promise: nil)
    }

    private func closeWhenWritten(_ written: EventLoopFuture<Void>, context: ChannelHandlerContext) {
        closing = true
        written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func connectUpstream(context: ChannelHandlerContext) {
        guard let loopPool else { return }
        let generation = self.generation
        upstreamDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: environment.upstreamTimeout) {
            guard generation == self.generation, self.exchange != nil else { return }
            let action = self.exchange!.upstreamTimedOut(now: Self.now())
            self.perform(action)
        }
        let (_, future) = loopPool.acquire()
        future.assumeIsolated().whenComplete { result in
            guard generation == self.generation, self.exchange != nil else {
                if case .success(let connection) = result { loopPool.release(connection) }
                return
            }
            switch result {
            case .success(let connection):
                self.upstream = connection
                self.upstreamKeepAlive = true
                connection.attach(self)
                let action = self.exchange!.upstreamConnected(now: Self.now())
                self.perform(action)
            case .failure(let error):
                let action = self.exchange!.upstreamConnectFailed(
                    (error as? UpstreamConnectError) ?? UpstreamConnectError(kind: .connect, message: "\(error)"), now: Self.now())
                self.perform(action)
            }
        }
    }

    private func releaseUpstream(keep: Bool) {
        upstreamDeadline?.cancel()
        upstreamDeadline = nil
        guard let upstream else { return }
        self.upstream = nil
        if keep, let loopPool { loopPool.release(upstream) } else { upstream.close() }
    }

    private func endExchange() {
        if let record = exchange?.record { environment.observer.exchangeFinished(record, connection: connection) }
        exchange = nil
        generation &+= 1
        headTimer?.exchangeFinished()
        replayPipelined()
    }

    /// The answer used when the proxy has no authorization server to ask (outbound mode without `--authz`).
    static let allowAll: Envoy_Service_Auth_V3_CheckResponse = {
        var response = Envoy_Service_Auth_V3_CheckResponse()
        response.status.code = ExtAuthzDecision.RPCCode.ok
        response.okResponse = .init()
        return response
    }()

    // MARK: - The upstream

    func upstream(_ connection: UpstreamConnection, read part: HTTPClientResponsePart) {
        guard connection === upstream, exchange != nil else { return }
        let action: ExchangeStateMachine.Action
        switch part {
        case .head(let head):
            upstreamKeepAlive = head.isKeepAlive
            action = exchange!.upstreamResponseHead(head, now: Self.now())
        case .body(let chunk):
            action = exchange!.upstreamResponseBody(chunk)
        case .end(let trailers):
            action = exchange!.upstreamResponseEnd(upstreamKeepAlive: upstreamKeepAlive, trailers: trailers, now: Self.now())
        }
        perform(action)
    }

    func upstreamReadComplete(_ connection: UpstreamConnection) {
        context?.flush()
    }

    func upstreamClosed(_ connection: UpstreamConnection) {
        guard connection === upstream, exchange != nil else { return }
        upstream = nil
        let action = exchange!.upstreamFailed(now: Self.now())
        perform(action)
    }

    func upstreamWritabilityChanged(_ connection: UpstreamConnection, writable: Bool) {
        if writable { resumeReading() } else { readingPaused = true }
    }
}
