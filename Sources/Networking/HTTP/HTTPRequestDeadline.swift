import NIOCore
import NIOHTTP1

/// Closes an HTTP/1.1 connection whose request is not whole within `timeout` of its first byte, so a client that
/// trickles a request (a slowloris, which the idle timeout alone lets through: every byte is traffic) holds the
/// connection for at most that long. `start` goes before the HTTP decoder and arms the timer when bytes of a new
/// request arrive; `end` goes after it and disarms the timer when the request's end is decoded.
final class HTTPRequestDeadline {
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    var start: Start { Start(deadline: self) }
    var end: End { End(deadline: self) }

    private func arm(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }

    final class Start: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        let deadline: HTTPRequestDeadline
        init(deadline: HTTPRequestDeadline) { self.deadline = deadline }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            deadline.arm(context)
            context.fireChannelRead(data)
        }

        func channelInactive(context: ChannelHandlerContext) {
            deadline.disarm()
            context.fireChannelInactive()
        }
    }

    final class End: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        let deadline: HTTPRequestDeadline
        init(deadline: HTTPRequestDeadline) { self.deadline = deadline }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .end = unwrapInboundIn(data) { deadline.disarm() }
            context.fireChannelRead(data)
        }
    }
}
