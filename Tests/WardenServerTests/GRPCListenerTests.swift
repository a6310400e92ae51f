import ExtAuthz
import GRPCCore
import GRPCNIOTransportHTTP2
import Networking
import SwiftProtobuf
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
}
