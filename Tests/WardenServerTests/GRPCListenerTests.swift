import ExtAuthz
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing
@testable import WardenServer

/// Raw bytes as a gRPC message, to send what no generated client would.
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

/// The gRPC wire rules of `GRPCListener`: what a call that is not a well-formed Check gets back.
@Suite struct GRPCListenerTests {
    func call(_ message: [UInt8], method: MethodDescriptor = Envoy_Service_Auth_V3_Authorization.Method.Check.descriptor,
              maxMessageBytes: Int = 4 << 20) async throws -> RPCError? {
        try await withGRPCListener(try snapshot(), maxMessageBytes: maxMessageBytes) { client in
            do {
                _ = try await client.unary(
                    request: ClientRequest(message: message), descriptor: method, serializer: RawBytes(),
                    deserializer: RawBytes(), options: .defaults
                ) { try $0.message }
                return nil
            } catch let error as RPCError {
                return error
            }
        }
    }

    @Test func aMessageThatDoesNotDecodeIsAnInvalidArgument() async throws {
        let error = try await call([0xFF, 0xFF, 0xFF])
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("CheckRequest") == true)
    }

    @Test func aMessageOverTheLimitIsRefused() async throws {
        let check = apiCheck(path: "/items", headers: ["x-big": String(repeating: "a", count: 2000)])
        let error = try await call(try check.serializedBytes(), maxMessageBytes: 1000)
        #expect(error?.code == .resourceExhausted)
    }

    @Test func anUnknownMethodIsUnimplemented() async throws {
        let error = try await call([], method: MethodDescriptor(fullyQualifiedService: "warden.Nope", method: "Nope"))
        #expect(error?.code == .unimplemented)
    }

    @Test func healthWatchStreamsTheStatusAndEndsWhenTheClientGoesAway() async throws {
        let first = try await withGRPCServices(try snapshot()) { _, health in
            try await health.watch(.init()) { response -> Grpc_Health_V1_HealthCheckResponse.ServingStatus? in
                for try await message in response.messages { return message.status }
                return nil
            }
        }
        #expect(first == .serving)
    }

    // MARK: - The stream handler alone, on an embedded loop

    func embedded() throws -> EmbeddedChannel {
        let (_, handOffs) = AsyncStream.makeStream(of: GRPCListener.HandOff.self)
        let handler = GRPCStreamHandler(
            inPlace: ["/envoy.service.auth.v3.Authorization/Check": InPlaceMethod(
                descriptor: Envoy_Service_Auth_V3_Authorization.Method.Check.descriptor) { $0 }],
            maxMessageBytes: 1024, peers: .init(remote: "test", local: "test"), handOffs: handOffs)
        return EmbeddedChannel(handler: handler)
    }

    func headers(timeout: String? = nil, encoding: String? = nil, method: String = "POST", endStream: Bool = false)
        -> HTTP2Frame.FramePayload {
        var headers: HPACKHeaders = [
            ":method": method, ":path": "/envoy.service.auth.v3.Authorization/Check", ":scheme": "http",
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

