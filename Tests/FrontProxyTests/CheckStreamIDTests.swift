import ExtAuthz
@testable import FrontProxy
import GRPCCore
import Networking
import NIOCore
import NIOPosix
import SwiftProtobuf
import Synchronization
import Testing

/// A connection's client stream IDs end at 2^31 − 1: the call that takes the last one sends the next calls to a new
/// connection, and the old one closes once its calls are done. Each connection here starts two IDs from the end.
@Suite struct CheckStreamIDTests {
    @Test func checksMoveToANewConnectionWhenStreamIDsRunOut() async throws {
        let answered = Atomic<Int>(0)
        let check = InPlaceMethod(descriptor: Envoy_Service_Auth_V3_Authorization.Method.Check.descriptor) { bytes, _ in
            _ = try Envoy_Service_Auth_V3_CheckRequest(serializedBytes: bytes)
            answered.add(1, ordering: .relaxed)
            var response = Envoy_Service_Auth_V3_CheckResponse()
            response.status = .init()
            response.okResponse = .init()
            return try response.serializedBytes()
        }
        let listener = GRPCListener(options: .init(host: "127.0.0.1", port: 0), inPlace: [check])
        try await withGRPCServer(transport: listener, services: []) { _ in
            let port = try await #require(listener.listeningAddress.port)
            var options = InPlaceAuthorizationClient.Options(host: "127.0.0.1", port: port)
            options.firstStreamID = Int(Int32.max) - 2
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let client = InPlaceAuthorizationClient(options: options, group: group)
            let loop = group.next()
            let message: [UInt8] = try Envoy_Service_Auth_V3_CheckRequest().serializedBytes()
            // One at a time: every second call takes a connection's last ID.
            for index in 0..<7 {
                let result = try await client.check(message, timeout: .seconds(5), on: loop).get()
                #expect((try? result.get())?.status.code == 0, "call \(index): \(result)")
            }
            // Several at once: calls made while the next connection is being made wait for it.
            let calls = (0..<6).map { _ in client.check(message, timeout: .seconds(5), on: loop) }
            for (index, call) in calls.enumerated() {
                let result = try await call.get()
                #expect((try? result.get())?.status.code == 0, "concurrent call \(index): \(result)")
            }
            client.shutDown()
            try await group.shutdownGracefully()
        }
        #expect(answered.load(ordering: .relaxed) == 13)
    }
}
