import ExtAuthz
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

// `CheckNoopServer serve-frames PORT`: the same no-op Check (the request decoded, an OK response encoded) answered
// by one connection-level handler over swift-nio-http2's frames, with no child channel per stream and no
// grpc-swift. A measurement baseline for what a frame-level gRPC listener could save over Warden's (which opens a
// child channel per stream); it has none of a listener's bounds, so it is for loopback benchmarks only.

/// Collects each stream's request frames and answers when the request ends: HEADERS, DATA and trailers, written
/// together and flushed once per read, with the connection's window given back as the bytes arrive.
final class FrameCheckHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame
    private var bodies: [HTTP2StreamID: ByteBuffer] = [:]
    /// Request bytes read since the last connection-level WINDOW_UPDATE (without a multiplexer, swift-nio-http2
    /// leaves that to the handler).
    private var unacknowledged = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            bodies[frame.streamID] = context.channel.allocator.buffer(capacity: 0)
            if headers.endStream { respond(context, frame.streamID) }
        case .data(let payload):
            if case .byteBuffer(var bytes) = payload.data {
                unacknowledged += bytes.readableBytes
                bodies[frame.streamID, default: context.channel.allocator.buffer(capacity: 0)].writeBuffer(&bytes)
            }
            if payload.endStream { respond(context, frame.streamID) }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unacknowledged > 0 {
            let update = HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: unacknowledged))
            context.write(wrapOutboundOut(update), promise: nil)
            unacknowledged = 0
        }
        context.flush()
    }

    private func respond(_ context: ChannelHandlerContext, _ id: HTTP2StreamID) {
        guard var body = bodies.removeValue(forKey: id), body.readableBytes >= 5 else { return }
        body.moveReaderIndex(forwardBy: 5)  // the gRPC message prefix: one message, uncompressed
        let request = try? Envoy_Service_Auth_V3_CheckRequest(serializedBytes: Array(body.readableBytesView))
        let response: [UInt8] = request.flatMap { try? okResponse(to: $0).serializedBytes() } ?? []
        let headers: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers)))), promise: nil)
        var message = context.channel.allocator.buffer(capacity: 5 + response.count)
        message.writeInteger(UInt8(0))
        message.writeInteger(UInt32(response.count))
        message.writeBytes(response)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(message))))), promise: nil)
        let trailers: HPACKHeaders = ["grpc-status": request == nil ? "13" : "0"]
        context.write(
            wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: trailers, endStream: true)))), promise: nil)
    }
}

/// Serves h2c on 127.0.0.1:`port` until killed.
func serveFrames(port: Int) throws {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
                try channel.pipeline.syncOperations.addHandler(FrameCheckHandler())
            }
        }
        .bind(host: "127.0.0.1", port: port).wait()
    try channel.closeFuture.wait()
}
