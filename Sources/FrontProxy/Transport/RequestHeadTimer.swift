import NIOCore

/// Bounds how long a request head may take to arrive once its first byte has (the slowloris defence; Envoy's
/// `request_headers_timeout`): sits before the HTTP/1.1 decoder, starts its timer when a read that brought bytes of
/// a request ends without its head whole, and answers 408 and closes when the head is not whole in time. A head that
/// arrives in one read (nearly every request) costs no timer. Idle keep-alive connections are the idle timeout's
/// business.
final class RequestHeadTimer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var awaitingHead = true
    /// Bytes arrived since the last head was whole.
    private var headStarted = false
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if awaitingHead { headStarted = true }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // The decoder has seen this read's bytes: a head they completed has been reported already.
        if awaitingHead, headStarted, timer == nil {
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in self?.expire() }
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    /// The HTTP handler got a whole head.
    func headReceived() {
        awaitingHead = false
        headStarted = false
        timer?.cancel()
        timer = nil
    }

    /// The exchange ended: the next bytes start a new head.
    func exchangeFinished() {
        awaitingHead = true
    }

    private func expire() {
        timer = nil
        guard awaitingHead, let context else { return }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: HostileInput.requestTimeout))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
