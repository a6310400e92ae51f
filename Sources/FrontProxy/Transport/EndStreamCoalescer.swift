import NIOCore
import NIOHTTP2

/// Sends a response's END_STREAM on its last DATA frame instead of on an empty frame after it.
///
/// NIO's HTTP/1-to-HTTP/2 codec writes a response's end as an empty DATA frame of its own. A client that counts a
/// response done once it has its `content-length` (curl does) may read that frame only after it has finished with
/// the stream, and then reset a stream the proxy already answered. Every reset counts toward swift-nio-http2's
/// limit of 200 a connection may send in 30 s, past which the connection is ended with GOAWAY ENHANCE_YOUR_CALM:
/// a busy HTTP/2 client lost its connection every few hundred requests. Holding each DATA frame until the next
/// write or flush lets the end ride on it.
final class EndStreamCoalescer: ChannelOutboundHandler {
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var held: (frame: HTTP2Frame.FramePayload.Data, promise: EventLoopPromise<Void>?)?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = unwrapOutboundIn(data)
        if let (frame, heldPromise) = held {
            held = nil
            if case .data(let end) = payload, Self.isBareEnd(end) {
                var merged = frame
                merged.endStream = true
                if let promise { heldPromise?.futureResult.cascade(to: promise) }
                context.write(wrapOutboundOut(.data(merged)), promise: heldPromise ?? promise)
                return
            }
            context.write(wrapOutboundOut(.data(frame)), promise: heldPromise)
        }
        if case .data(let frame) = payload, !frame.endStream {
            held = (frame, promise)
            return
        }
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        if let (frame, promise) = held {
            held = nil
            context.write(wrapOutboundOut(.data(frame)), promise: promise)
        }
        context.flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        held?.promise?.fail(ChannelError.ioOnClosedChannel)
        held = nil
    }

    /// An END_STREAM DATA frame that carries nothing else.
    static func isBareEnd(_ frame: HTTP2Frame.FramePayload.Data) -> Bool {
        guard frame.endStream, frame.paddingBytes == nil, case .byteBuffer(let bytes) = frame.data else { return false }
        return bytes.readableBytes == 0
    }
}
