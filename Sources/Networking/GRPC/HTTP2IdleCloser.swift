import NIOCore
import NIOHTTP2

/// Closes an HTTP/2 connection that has had no open stream for `timeout`: a GOAWAY naming the last stream it
/// processed (so the client knows no later stream was seen and may retry it elsewhere), then the close. The clock
/// starts at accept, so a client that connects and never sends a stream (or never finishes its TLS handshake) is
/// closed too. It waits for no PING acknowledgement, unlike a graceful shutdown: a silent client gets none of the
/// server's file descriptors for longer than the timeout.
///
/// It learns of streams from swift-nio-http2's stream events, which pass it on the way to the connection's handler.
final class HTTP2IdleCloser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame

    private let timeout: TimeAmount
    private let onClose: () -> Void
    private var context: ChannelHandlerContext?
    private var openStreams = 0
    private var lastStreamID = HTTP2StreamID.rootStream
    /// When the last stream closed (or the connection opened).
    private var idleSince = NIODeadline.now()
    /// One timer for the connection's life, moved on when it finds the connection was busy: opening and closing a
    /// stream touches no timer.
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount, onClose: @escaping () -> Void) {
        self.timeout = timeout
        self.onClose = onClose
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { arm(at: idleSince + timeout) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if timer == nil { arm(at: NIODeadline.now() + timeout) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let created as NIOHTTP2StreamCreatedEvent: streamCreated(created.streamID)
        case let closed as StreamClosedEvent: streamClosed(closed.streamID)
        default: break
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func streamCreated(_ id: HTTP2StreamID) {
        openStreams += 1
        if id > lastStreamID { lastStreamID = id }
    }

    private func streamClosed(_ id: HTTP2StreamID) {
        openStreams -= 1
        if openStreams == 0 { idleSince = .now() }
    }

    private func arm(at deadline: NIODeadline) {
        guard let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) { loopBound.value.expire() }
    }

    private func expire() {
        timer = nil
        guard let context, context.channel.isActive else { return }
        guard openStreams == 0 else { return arm(at: .now() + timeout) }
        let due = idleSince + timeout
        guard due <= .now() else { return arm(at: due) }
        onClose()
        let goAway = HTTP2Frame(
            streamID: .rootStream, payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil))
        context.writeAndFlush(NIOAny(goAway), promise: nil)
        context.close(promise: nil)
    }
}
