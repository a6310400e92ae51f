import Foundation
import GRPCCore
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing
@testable import Networking

/// The gRPC wire rules of `GRPCListener`'s connection handler, on an embedded loop with virtual time: an in-place
/// method that echoes its request. Frames go in as swift-nio-http2 hands them over (with their stream IDs), and
/// its stream and window events are fired as it would fire them.
@Suite struct GRPCConnectionHandlerTests {

    func embedded(
        budget: RequestByteBudget = RequestByteBudget(limit: 1 << 20),
        listenerBudget: ListenerByteBudget = ListenerByteBudget(limit: 1 << 30)
    ) throws -> EmbeddedChannel {
        let (_, handOffs) = AsyncStream.makeStream(of: GRPCListener.HandOff.self)
        let handler = GRPCConnectionHandler(
            inPlace: ["/test.Echo/Echo": InPlaceMethod(
                descriptor: MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Echo")) { message, _ in message }],
            limits: .init(maxMessageBytes: 1024, requestTimeout: .seconds(10), observer: nil), budget: budget,
            listenerBudget: listenerBudget, peers: .init(remote: "test", local: "test"), handOffs: handOffs)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        return channel
    }

    func headers(_ stream: HTTP2StreamID = 1, timeout: String? = nil, encoding: String? = nil, method: String = "POST",
                 endStream: Bool = false) -> HTTP2Frame {
        var headers: HPACKHeaders = [
            ":method": method, ":path": "/test.Echo/Echo", ":scheme": "http",
            "content-type": "application/grpc", "te": "trailers",
        ]
        if let timeout { headers.add(name: "grpc-timeout", value: timeout) }
        if let encoding { headers.add(name: "grpc-encoding", value: encoding) }
        return HTTP2Frame(streamID: stream, payload: .headers(.init(headers: headers, endStream: endStream)))
    }

    func body(_ message: [UInt8], endStream: Bool = true) -> HTTP2Frame {
        body(1, message, endStream: endStream)
    }

    func data(_ bytes: ByteBuffer, endStream: Bool = false) -> HTTP2Frame {
        data(1, bytes, endStream: endStream)
    }

    func body(_ stream: HTTP2StreamID, _ message: [UInt8], endStream: Bool = true) -> HTTP2Frame {
        data(stream, GRPCConnectionHandler.frame(message, allocator: .init()), endStream: endStream)
    }

    func data(_ stream: HTTP2StreamID, _ bytes: ByteBuffer, endStream: Bool = false) -> HTTP2Frame {
        HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(bytes), endStream: endStream)))
    }

    /// The frames written back for `stream`, window updates aside.
    func written(_ channel: EmbeddedChannel, stream: HTTP2StreamID = 1) throws -> [HTTP2Frame.FramePayload] {
        try frames(channel).filter { $0.streamID == stream }.map(\.payload).filter {
            if case .windowUpdate = $0 { false } else { true }
        }
    }

    func frames(_ channel: EmbeddedChannel) throws -> [HTTP2Frame] {
        var out: [HTTP2Frame] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) { out.append(frame) }
        return out
    }

    /// The `grpc-status` of the answer's end of stream (a reset may follow it).
    func status(_ frames: [HTTP2Frame.FramePayload]) -> String? {
        let ends = frames.compactMap { if case .headers(let h) = $0, h.endStream { h } else { nil } }
        guard ends.count == 1 else { return nil }
        return ends[0].headers.first(name: "grpc-status")
    }

    func isReset(_ frames: [HTTP2Frame.FramePayload]) -> Bool {
        if case .rstStream? = frames.last { true } else { false }
    }

    func window(_ stream: HTTP2StreamID, _ size: Int) -> NIOHTTP2WindowUpdatedEvent {
        NIOHTTP2WindowUpdatedEvent(streamID: stream, inboundWindowSize: size, outboundWindowSize: 65_535)
    }

    @Test func aWholeUnaryCallIsAnsweredWithHeadersOneMessageAndOKTrailers() throws {
        let channel = try embedded()
        try channel.writeInbound(headers())
        try channel.writeInbound(body([1, 2, 3]))
        let frames = try written(channel)
        #expect(frames.count == 3)
        guard frames.count == 3, case .data(let data) = frames[1], case .byteBuffer(let bytes) = data.data else {
            Issue.record("no data frame")
            return
        }
        #expect(Array(bytes.readableBytesView) == [0, 0, 0, 0, 3, 1, 2, 3])
        #expect(status(frames) == "0")
    }

    /// Calls on several streams of one connection, interleaved and arriving in one read, are each answered on
    /// their own stream, in one flush.
    @Test func interleavedStreamsAreAnsweredEachOnItsOwn() throws {
        let channel = try embedded()
        channel.pipeline.syncOperations.fireChannelRead(NIOAny(headers(1)))
        channel.pipeline.syncOperations.fireChannelRead(NIOAny(headers(3)))
        channel.pipeline.syncOperations.fireChannelRead(NIOAny(body(3, [3])))
        channel.pipeline.syncOperations.fireChannelRead(NIOAny(body(1, [1])))
        #expect(try frames(channel).isEmpty, "nothing flushed before the read completes")
        channel.pipeline.fireChannelReadComplete()
        let all = try frames(channel)
        #expect(all.map(\.streamID) == [3, 3, 3, 1, 1, 1])
        for stream: HTTP2StreamID in [1, 3] {
            let payloads = all.filter { $0.streamID == stream }.map(\.payload)
            guard payloads.count == 3, case .data(let data) = payloads[1], case .byteBuffer(let bytes) = data.data else {
                Issue.record("stream \(stream): \(payloads)")
                continue
            }
            #expect(Array(bytes.readableBytesView) == [0, 0, 0, 0, 1, UInt8(Int(stream))])
        }
    }

    @Test func aMessageSplitAcrossDataFramesArrivesWhole() throws {
        let channel = try embedded()
        try channel.writeInbound(headers())
        var framed = GRPCConnectionHandler.frame([1, 2, 3, 4], allocator: .init())
        let head = framed.readSlice(length: 6)!
        try channel.writeInbound(data(head))
        try channel.writeInbound(data(framed, endStream: true))
        let frames = try written(channel)
        guard frames.count == 3, case .data(let data) = frames[1], case .byteBuffer(let bytes) = data.data else {
            Issue.record("expected headers, one message and trailers, got \(frames)")
            return
        }
        #expect(Array(bytes.readableBytesView) == [0, 0, 0, 0, 4, 1, 2, 3, 4])
        #expect(status(frames) == "0")
    }

    @Test func requestTrailersEndACall() throws {
        let channel = try embedded()
        try channel.writeInbound(headers())
        try channel.writeInbound(body([9], endStream: false))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: ["x-trailer": "1"], endStream: true))))
        #expect(status(try written(channel)) == "0")
    }

    /// Trailers that arrive after a call was answered (here refused for its compression) are not a new call.
    @Test func trailersAfterTheAnswerAreNotANewCall() throws {
        let channel = try embedded()
        try channel.writeInbound(headers(encoding: "gzip"))
        #expect(status(try written(channel)) == String(Status.Code.unimplemented.rawValue))
        try channel.writeInbound(body([1], endStream: false))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: ["x-trailer": "1"], endStream: true))))
        #expect(try written(channel).isEmpty)
        try channel.writeInbound(headers(3))
        try channel.writeInbound(body(3, [3]))
        #expect(status(try written(channel, stream: 3)) == "0")
    }

    /// A call whose request is still arriving: nothing is answered `before`, then DEADLINE_EXCEEDED and a reset
    /// once `after` more has passed; returns the answer.
    func answerToACallStillArriving(
        _ channel: EmbeddedChannel, timeout: String? = nil, before: TimeAmount, after: TimeAmount,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> [HTTP2Frame.FramePayload] {
        try channel.writeInbound(headers(timeout: timeout))
        try channel.writeInbound(body([1], endStream: false))
        channel.embeddedEventLoop.advanceTime(by: before)
        #expect(try written(channel).isEmpty, sourceLocation: sourceLocation)
        channel.embeddedEventLoop.advanceTime(by: after)
        let frames = try written(channel)
        #expect(status(frames) == String(Status.Code.deadlineExceeded.rawValue), sourceLocation: sourceLocation)
        #expect(isReset(frames), sourceLocation: sourceLocation)
        return frames
    }

    @Test func aDeadlineThatPassesBeforeTheRequestEndsIsDeadlineExceeded() throws {
        _ = try answerToACallStillArriving(try embedded(), timeout: "5m", before: .milliseconds(4), after: .milliseconds(2))
    }

    @Test func aRequestNotWholeWithinTheRequestTimeoutIsResetWithoutAClientDeadline() throws {
        let channel = try embedded()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        let frames = try answerToACallStillArriving(channel, before: .seconds(9), after: .seconds(2))
        let trailers = frames.compactMap { if case .headers(let h) = $0 { h } else { nil } }.last
        #expect(trailers?.headers.first(name: "grpc-message")?.contains("request timeout") == true)
        #expect(channel.isActive, "only the stream is reset, not the connection")
    }

    @Test func aMessageOverTheLimitIsResourceExhaustedAndTheStreamReset() throws {
        let budget = RequestByteBudget(limit: 1 << 20)
        let channel = try embedded(budget: budget)
        try channel.writeInbound(headers())
        try channel.writeInbound(body([UInt8](repeating: 7, count: 1000), endStream: false))
        #expect(budget.used == 1005)
        try channel.writeInbound(body([UInt8](repeating: 7, count: 100), endStream: false))
        let frames = try written(channel)
        #expect(status(frames) == String(Status.Code.resourceExhausted.rawValue))
        #expect(isReset(frames))
        #expect(budget.used == 0)
        // The stream's later frames are not read.
        try channel.writeInbound(body([UInt8](repeating: 7, count: 100)))
        #expect(try written(channel).isEmpty)
        #expect(budget.used == 0)
    }

    /// Flow control is the handler's: a stream still arriving has its window topped up; the connection's window is
    /// withheld while the connection's calls hold their budget, and topped up once a call gives bytes back.
    @Test func theConnectionWindowIsWithheldWhileTheBudgetIsSpent() throws {
        let budget = RequestByteBudget(limit: 1000)
        let channel = try embedded(budget: budget)
        try channel.writeInbound(headers(1))
        try channel.writeInbound(body(1, [UInt8](repeating: 1, count: 600), endStream: false))
        // swift-nio-http2 reports the windows the data used.
        channel.pipeline.fireUserInboundEventTriggered(window(1, 20_000))
        channel.pipeline.fireUserInboundEventTriggered(window(.rootStream, 20_000))
        channel.pipeline.fireChannelReadComplete()
        var updates = try frames(channel).compactMap { frame -> (HTTP2StreamID, Int)? in
            if case .windowUpdate(let size) = frame.payload { (frame.streamID, size) } else { nil }
        }
        #expect(updates.map(\.0) == [1, .rootStream])
        #expect(updates.map(\.1) == [65_535 - 20_000, 65_535 - 20_000])

        try channel.writeInbound(headers(3))
        try channel.writeInbound(body(3, [UInt8](repeating: 2, count: 600), endStream: false))
        #expect(budget.isSpent)
        channel.pipeline.fireUserInboundEventTriggered(window(.rootStream, 1_000))
        channel.pipeline.fireChannelReadComplete()
        updates = try frames(channel).compactMap { frame in
            if case .windowUpdate(let size) = frame.payload { (frame.streamID, size) } else { nil }
        }
        #expect(updates.isEmpty, "no window while the budget is spent: \(updates)")

        // Stream 1 ends: its bytes come back and the connection's window is topped up with its answer.
        try channel.writeInbound(data(1, ByteBuffer(), endStream: true))
        #expect(budget.used == 605)
        let after = try frames(channel)
        #expect(after.contains { $0.streamID == .rootStream && $0.payload.isWindowUpdate(64_535) })
        #expect(status(after.filter { $0.streamID == 1 }.map(\.payload)) == "0")
    }

    /// Calls of different connections share the listener's bound: the one whose bytes would pass it is reset with
    /// RESOURCE_EXHAUSTED, the other keeps its bytes and is answered, and every byte comes back.
    @Test func aStreamThatWouldTakeTheListenerPastItsBoundIsResetAndTheOthersFinish() throws {
        let shared = ListenerByteBudget(limit: 1000)
        let a = try embedded(budget: RequestByteBudget(limit: 1 << 20), listenerBudget: shared)
        let b = try embedded(budget: RequestByteBudget(limit: 1 << 20), listenerBudget: shared)
        try a.writeInbound(headers())
        try a.writeInbound(body([UInt8](repeating: 1, count: 600), endStream: false))
        try b.writeInbound(headers())
        try b.writeInbound(body([UInt8](repeating: 2, count: 600), endStream: false))
        let refused = try written(b)
        #expect(status(refused) == String(Status.Code.resourceExhausted.rawValue))
        #expect(isReset(refused))
        #expect(shared.held == 605)
        try a.writeInbound(data(ByteBuffer(), endStream: true))
        #expect(status(try written(a)) == "0")
        #expect(shared.held == 0)
    }

    /// A client that resets a stream, or a connection that closes, gives the stream's bytes back.
    @Test func aResetStreamAndAClosedConnectionGiveTheirBytesBack() throws {
        let shared = ListenerByteBudget(limit: 1 << 20)
        let budget = RequestByteBudget(limit: 1 << 20)
        let channel = try embedded(budget: budget, listenerBudget: shared)
        try channel.writeInbound(headers(1))
        try channel.writeInbound(body(1, [1, 2, 3], endStream: false))
        try channel.writeInbound(headers(3))
        try channel.writeInbound(body(3, [1, 2, 3, 4], endStream: false))
        #expect(budget.used == 17)
        channel.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 1, reason: .cancel))
        #expect(budget.used == 9 && shared.held == 9)
        _ = try channel.finish()
        #expect(budget.used == 0 && shared.held == 0)
    }

    @Test func aCallThatArrivesInTimeIsNotTimedOut() throws {
        let channel = try embedded()
        try channel.writeInbound(headers(timeout: "5m"))
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
        var framed = GRPCConnectionHandler.frame([1], allocator: .init())
        framed.setInteger(UInt8(1), at: 0)
        try channel.writeInbound(data(framed, endStream: true))
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
        let frames = try written(channel)
        guard case .headers(let response)? = frames.first else {
            Issue.record("no response")
            return
        }
        #expect(response.headers.first(name: ":status") == "405")
        #expect(isReset(frames))
    }

    @Test func statusMessagesArePercentEncoded() {
        let headers = GRPCConnectionHandler.status(.internalError, message: "100% café\n")
        #expect(headers.first(name: "grpc-message") == "100%25 caf%C3%A9%0A")
        #expect(GRPCConnectionHandler.status(.ok, message: "").first(name: "grpc-message") == nil)
    }

    @Test func grpcTimeoutUnits() {
        #expect(GRPCConnectionHandler.timeout("200m") == .milliseconds(200))
        #expect(GRPCConnectionHandler.timeout("1S") == .seconds(1))
        #expect(GRPCConnectionHandler.timeout("3H") == .hours(3))
        #expect(GRPCConnectionHandler.timeout("7n") == .nanoseconds(7))
        #expect(GRPCConnectionHandler.timeout("123456789m") == nil)
        #expect(GRPCConnectionHandler.timeout("m") == nil)
        #expect(GRPCConnectionHandler.timeout("5x") == nil)
    }
}


extension HTTP2Frame.FramePayload {
    func isWindowUpdate(_ size: Int) -> Bool {
        if case .windowUpdate(let increment) = self { increment == size } else { false }
    }
}
