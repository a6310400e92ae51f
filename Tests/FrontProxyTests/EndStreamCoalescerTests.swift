@testable import FrontProxy
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing

/// The proxy's HTTP/2 responses end on their last DATA frame, in the order written, with every write's promise kept.
@Suite struct EndStreamCoalescerTests {
    static func data(_ text: String, end: Bool = false) -> HTTP2Frame.FramePayload {
        .data(.init(data: .byteBuffer(ByteBuffer(string: text)), endStream: end))
    }

    /// What reached the channel: "text" for a DATA frame (with "|end" when it ends the stream), "headers" otherwise.
    static func written(_ channel: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let payload = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) {
            switch payload {
            case .data(let frame):
                guard case .byteBuffer(let bytes) = frame.data else { out.append("file"); continue }
                out.append(String(buffer: bytes) + (frame.endStream ? "|end" : ""))
            case .headers(let headers): out.append(headers.endStream ? "headers|end" : "headers")
            default: out.append("other")
            }
        }
        return out
    }

    @Test func theEndRidesOnTheLastDataFrame() throws {
        let channel = EmbeddedChannel(handler: EndStreamCoalescer())
        let first = channel.eventLoop.makePromise(of: Void.self), last = channel.eventLoop.makePromise(of: Void.self)
        channel.write(Self.data("ab"), promise: nil)
        channel.write(Self.data("cd"), promise: first)
        channel.write(Self.data("", end: true), promise: last)
        channel.flush()
        #expect(try Self.written(channel) == ["ab", "cd|end"])
        try first.futureResult.wait()
        try last.futureResult.wait()
    }

    @Test func aFlushSendsWhatIsHeldAndTrailersFollowIt() throws {
        let channel = EmbeddedChannel(handler: EndStreamCoalescer())
        channel.writeAndFlush(Self.data("ab"), promise: nil)
        #expect(try Self.written(channel) == ["ab"])
        channel.write(Self.data("", end: true), promise: nil)
        channel.flush()
        #expect(try Self.written(channel) == ["|end"], "nothing held: the empty end goes as it is")
        channel.write(Self.data("cd"), promise: nil)
        channel.write(HTTP2Frame.FramePayload.headers(.init(headers: ["grpc-status": "0"], endStream: true)), promise: nil)
        channel.flush()
        #expect(try Self.written(channel) == ["cd", "headers|end"])
        channel.write(Self.data("ef", end: true), promise: nil)
        channel.flush()
        #expect(try Self.written(channel) == ["ef|end"])
    }

    @Test func aHeldFrameFailsItsPromiseWhenTheStreamGoes() throws {
        let channel = EmbeddedChannel(handler: EndStreamCoalescer())
        let held = channel.eventLoop.makePromise(of: Void.self)
        channel.write(Self.data("ab"), promise: held)
        _ = try channel.finish()
        #expect(throws: (any Error).self) { try held.futureResult.wait() }
    }
}
