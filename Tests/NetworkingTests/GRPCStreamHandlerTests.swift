import Foundation
import GRPCCore
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing
@testable import Networking

/// The gRPC wire rules of one stream of `GRPCListener`, on an embedded loop with virtual time: an in-place method
/// that echoes its request.
@Suite struct GRPCStreamHandlerTests {

    func embedded(
        budget: RequestByteBudget = RequestByteBudget(limit: 1 << 20),
        listenerBudget: ListenerByteBudget = ListenerByteBudget(limit: 1 << 30), reads: ReadCounter? = nil
    ) throws -> EmbeddedChannel {
        let (_, handOffs) = AsyncStream.makeStream(of: GRPCListener.HandOff.self)
        let handler = GRPCStreamHandler(
            inPlace: ["/test.Echo/Echo": InPlaceMethod(
                descriptor: MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Echo")) { message, _ in message }],
            limits: .init(maxMessageBytes: 1024, requestTimeout: .seconds(10), observer: nil), budget: budget,
            listenerBudget: listenerBudget, peers: .init(remote: "test", local: "test"), handOffs: handOffs)
        let channel = EmbeddedChannel()
        if let reads { try channel.pipeline.syncOperations.addHandler(reads) }
        try channel.pipeline.syncOperations.addHandler(handler)
        return channel
    }

    /// Counts the reads that pass towards the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var count = 0
        func read(context: ChannelHandlerContext) {
            count += 1
            context.read()
        }
    }

    func headers(timeout: String? = nil, encoding: String? = nil, method: String = "POST", endStream: Bool = false)
        -> HTTP2Frame.FramePayload {
        var headers: HPACKHeaders = [
            ":method": method, ":path": "/test.Echo/Echo", ":scheme": "http",
            "content-type": "application/grpc", "te": "trailers",
        ]
        if let timeout { headers.add(name: "grpc-timeout", value: timeout) }
        if let encoding { headers.add(name: "grpc-encoding", value: encoding) }
        return .headers(.init(headers: headers, endStream: endStream))
    }

    func body(_ message: [UInt8], endStream: Bool = true) -> HTTP2Frame.FramePayload {
        .data(.init(data: .byteBuffer(GRPCStreamHandler.frame(message, allocator: .init())), endStream: endStream))
    }

    /// The frames written back, as header lists and data.
    func written(_ channel: EmbeddedChannel) throws -> [HTTP2Frame.FramePayload] {
        var out: [HTTP2Frame.FramePayload] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) { out.append(frame) }
        return out
    }

    func status(_ frames: [HTTP2Frame.FramePayload]) -> String? {
        guard case .headers(let last)? = frames.last, last.endStream else { return nil }
        return last.headers.first(name: "grpc-status")
    }

    @Test func aWholeUnaryCallIsAnsweredWithHeadersOneMessageAndOKTrailers() throws {
        let channel = try embedded()
        try channel.writeInbound(headers())
        try channel.writeInbound(body([1, 2, 3]))
        let frames = try written(channel)
        #expect(frames.count == 3)
        guard case .data(let data) = frames[1], case .byteBuffer(let bytes) = data.data else {
            Issue.record("no data frame")
            return
        }
        #expect(Array(bytes.readableBytesView) == [0, 0, 0, 0, 3, 1, 2, 3])
        #expect(status(frames) == "0")
    }

    @Test func aMessageSplitAcrossDataFramesArrivesWhole() throws {
        let channel = try embedded()
        try channel.writeInbound(headers())
        var framed = GRPCStreamHandler.frame([1, 2, 3, 4], allocator: .init())
        let head = framed.readSlice(length: 6)!
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(head))))
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(framed), endStream: true)))
        let frames = try written(channel)
        guard frames.count == 3, case .data(let data) = frames[1], case .byteBuffer(let bytes) = data.data else {
            Issue.record("expected headers, one message and trailers, got \(frames)")
            return
        }
        #expect(Array(bytes.readableBytesView) == [0, 0, 0, 0, 4, 1, 2, 3, 4])
        #expect(status(frames) == "0")
    }

    @Test func aDeadlineThatPassesBeforeTheRequestEndsIsDeadlineExceeded() throws {
        let channel = try embedded()
        try channel.writeInbound(headers(timeout: "5m"))
        try channel.writeInbound(body([1], endStream: false))
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(4))
        #expect(try written(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        #expect(status(try written(channel)) == String(Status.Code.deadlineExceeded.rawValue))
    }

    @Test func aRequestNotWholeWithinTheRequestTimeoutIsResetWithoutAClientDeadline() throws {
        let channel = try embedded()
        try channel.writeInbound(headers())
        try channel.writeInbound(body([1], endStream: false))
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(try written(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        let frames = try written(channel)
        #expect(status(frames) == String(Status.Code.deadlineExceeded.rawValue))
        guard case .headers(let trailers)? = frames.last else { return }
        #expect(trailers.headers.first(name: "grpc-message")?.contains("request timeout") == true)
        #expect(!channel.isActive)
    }

    @Test func aMessageOverTheLimitIsResourceExhaustedAndTheStreamReset() throws {
        let budget = RequestByteBudget(limit: 1 << 20)
        let channel = try embedded(budget: budget)
        try channel.writeInbound(headers())
        try channel.writeInbound(body([UInt8](repeating: 7, count: 1000), endStream: false))
        #expect(budget.used == 1005)
        try channel.writeInbound(body([UInt8](repeating: 7, count: 100), endStream: false))
        #expect(status(try written(channel)) == String(Status.Code.resourceExhausted.rawValue))
        #expect(!channel.isActive)
        #expect(budget.used == 0)
    }

    @Test func aStreamStopsReadingWhileItsConnectionHoldsTheMostBytesAndResumesWhenOthersFinish() throws {
        let budget = RequestByteBudget(limit: 1000)
        let readsA = ReadCounter()
        let a = try embedded(budget: budget, reads: readsA)
        let b = try embedded(budget: budget)
        try b.writeInbound(headers())
        try b.writeInbound(body([UInt8](repeating: 1, count: 600), endStream: false))
        try a.writeInbound(headers())
        try a.writeInbound(body([UInt8](repeating: 2, count: 600), endStream: false))
        #expect(budget.isSpent)
        a.read()
        #expect(readsA.count == 0)
        // B's request completes: its bytes come back, and A reads again on the next tick.
        try b.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        #expect(budget.used == 605)
        a.embeddedEventLoop.run()
        #expect(readsA.count == 1)
        a.read()
        #expect(readsA.count == 2)
    }

    /// Streams of different connections share the listener's bound: the one whose bytes would pass it is reset
    /// with RESOURCE_EXHAUSTED, the other keeps its bytes and is answered, and every byte comes back.
    @Test func aStreamThatWouldTakeTheListenerPastItsBoundIsResetAndTheOthersFinish() throws {
        let shared = ListenerByteBudget(limit: 1000)
        let a = try embedded(budget: RequestByteBudget(limit: 1 << 20), listenerBudget: shared)
        let b = try embedded(budget: RequestByteBudget(limit: 1 << 20), listenerBudget: shared)
        try a.writeInbound(headers())
        try a.writeInbound(body([UInt8](repeating: 1, count: 600), endStream: false))
        try b.writeInbound(headers())
        try b.writeInbound(body([UInt8](repeating: 2, count: 600), endStream: false))
        #expect(status(try written(b)) == String(Status.Code.resourceExhausted.rawValue))
        #expect(!b.isActive)
        #expect(shared.held == 605)
        try a.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        #expect(status(try written(a)) == "0")
        #expect(shared.held == 0)
    }

    @Test func aCallThatArrivesInTimeIsNotTimedOut() throws {
        let channel = try embedded()
        try channel.writeInbound(headers(timeout: "5m"))
        channel.pipeline.fireChannelReadComplete()
        try channel.writeInbound(body([1]))
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let frames = try written(channel)
        #expect(frames.count == 3)
        #expect(status(frames) == "0")
    }

    @Test func compressionIsRefusedNamingWhatIsAccepted() throws {
        let channel = try embedded()
        try channel.writeInbound(headers(encoding: "gzip"))
        let frames = try written(channel)
        #expect(status(frames) == String(Status.Code.unimplemented.rawValue))
        guard case .headers(let trailers)? = frames.last else { return }
        #expect(trailers.headers.first(name: "grpc-accept-encoding") == "identity")
    }

    @Test func aCompressedMessageWithoutAnEncodingIsAnInternalError() throws {
        let channel = try embedded()
        try channel.writeInbound(headers())
        var framed = GRPCStreamHandler.frame([1], allocator: .init())
        framed.setInteger(UInt8(1), at: 0)
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(framed), endStream: true)))
        #expect(status(try written(channel)) == String(Status.Code.internalError.rawValue))
    }

    @Test func twoMessagesOnAUnaryMethodAreRefused() throws {
        let channel = try embedded()
        try channel.writeInbound(headers())
        try channel.writeInbound(body([1], endStream: false))
        try channel.writeInbound(body([2]))
        #expect(status(try written(channel)) == String(Status.Code.unimplemented.rawValue))
    }

    @Test func aGETIsNotAGRPCCall() throws {
        let channel = try embedded()
        try channel.writeInbound(headers(method: "GET", endStream: true))
        guard case .headers(let response)? = try written(channel).first else {
            Issue.record("no response")
            return
        }
        #expect(response.headers.first(name: ":status") == "405")
    }

    @Test func statusMessagesArePercentEncoded() {
        let headers = GRPCStreamHandler.status(.internalError, message: "100% café\n")
        #expect(headers.first(name: "grpc-message") == "100%25 caf%C3%A9%0A")
        #expect(GRPCStreamHandler.status(.ok, message: "").first(name: "grpc-message") == nil)
    }

    @Test func grpcTimeoutUnits() {
        #expect(GRPCStreamHandler.timeout("200m") == .milliseconds(200))
        #expect(GRPCStreamHandler.timeout("1S") == .seconds(1))
        #expect(GRPCStreamHandler.timeout("3H") == .hours(3))
        #expect(GRPCStreamHandler.timeout("7n") == .nanoseconds(7))
        #expect(GRPCStreamHandler.timeout("123456789m") == nil)
        #expect(GRPCStreamHandler.timeout("m") == nil)
        #expect(GRPCStreamHandler.timeout("5x") == nil)
    }
}

