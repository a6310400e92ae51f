import NIOCore

/// One end of a tunnel: after a `101 Switching Protocols`, the client's connection and the upstream's carry one byte
/// stream (a WebSocket's frames, which the proxy does not read). What one end reads the other writes; an end stops
/// reading while the other cannot take more; a half-close is passed on; either end closing closes both. The two ends
/// run on one event loop (upstream connections are per loop), so they call each other directly.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The other end.
    weak var partner: TunnelHandler?
    private let side: TunnelLedger.Side
    private let ledger: TunnelLedger
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var inputClosed = false

    init(_ side: TunnelLedger.Side, ledger: TunnelLedger) {
        self.side = side
        self.ledger = ledger
    }

    /// The two ends of one tunnel, joined.
    static func pair(ledger: TunnelLedger) -> (client: TunnelHandler, upstream: TunnelHandler) {
        let client = TunnelHandler(.client, ledger: ledger), upstream = TunnelHandler(.upstream, ledger: ledger)
        client.partner = upstream
        upstream.partner = client
        return (client, upstream)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        ledger.count(bytes.readableBytes, from: side)
        partner?.send(bytes)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let partner, let other = partner.context, !other.channel.isWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            // This end has sent all it will: the other end's peer is told so, and once both have, both close.
            inputClosed = true
            guard let partner, !partner.inputClosed else { return closeBoth() }
            partner.shutDownOutput()
        case is ChannelShouldQuiesceEvent:
            // Graceful shutdown: a tunnel has no request to finish, and would hold the drain until its peer left.
            closeBoth()
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        ledger.endClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeBoth()
    }

    /// Writes what the other end read.
    private func send(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    private func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    private func shutDownOutput() {
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenFailure { _ in self.closeBoth() }
        context.close(mode: .output, promise: promise)
    }

    private func closeBoth() {
        partner?.context?.close(promise: nil)
        context?.close(promise: nil)
    }
}

/// What the two ends of a tunnel share: the bytes each way, and the report once both have closed.
final class TunnelLedger {
    enum Side { case client, upstream }

    /// Read from the client (and written to the upstream).
    private(set) var clientBytes = 0
    /// Read from the upstream (and written to the client).
    private(set) var upstreamBytes = 0
    private var openEnds = 2
    private let finished: (TunnelLedger) -> Void

    init(finished: @escaping (TunnelLedger) -> Void) {
        self.finished = finished
    }

    func count(_ bytes: Int, from side: Side) {
        switch side {
        case .client: clientBytes += bytes
        case .upstream: upstreamBytes += bytes
        }
    }

    func endClosed() {
        openEnds -= 1
        if openEnds == 0 { finished(self) }
    }
}

extension Channel {
    /// Removes a handler (at once: none of those a tunnel removes defers it), closing the channel if it cannot be.
    /// On the channel's event loop.
    func removeOrClose(_ handler: any RemovableChannelHandler) {
        pipeline.syncOperations.removeHandler(handler).whenFailure { _ in self.close(promise: nil) }
    }
}
