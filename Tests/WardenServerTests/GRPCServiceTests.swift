import DecisionPoint
import ExtAuthz
import GRPCCore
import GRPCNIOTransportHTTP2
import PolicyCore
import SwiftProtobuf
import Testing
@testable import WardenServer

/// The gRPC listener over 127.0.0.1 with grpc-swift-2's HTTP/2 client: every response shape of Check and health.
@Suite struct GRPCServiceTests {
    func withServices<T: Sendable>(
        _ snapshot: PolicySnapshot?,
        _ body: @Sendable (Envoy_Service_Auth_V3_Authorization.Client<HTTP2ClientTransport.Posix>,
                           Grpc_Health_V1_Health.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        try await withGRPCServices(snapshot, body)
    }

    @Test func allowsWhatAnAllowPolicyMatches() async throws {
        let response = try await withServices(try snapshot()) { auth, _ in try await auth.check(apiCheck(path: "/items")) }
        #expect(response.status.code == 0)
        #expect(response.okResponse.headers.isEmpty)
    }

    @Test func deniesWithTheDecidingPolicy() async throws {
        let response = try await withServices(try snapshot()) { auth, _ in try await auth.check(apiCheck(path: "//admin/../admin")) }
        #expect(response.status.code == 7)
        #expect(response.deniedResponse.status.code == .forbidden)
        let headers = response.deniedResponse.headers.dictionary
        #expect(headers["x-warden-policy"] == "backend/deny-admin")
        #expect(headers["x-warden-reason"] == "deny_matched")
        #expect(headers["x-warden-decision-id"]?.count == 36)
        #expect(response.deniedResponse.body.contains("backend/deny-admin"))
    }

    @Test func deniesWhenNoAllowRuleMatches() async throws {
        let response = try await withServices(try snapshot()) { auth, _ in try await auth.check(apiCheck(method: "POST", path: "/items")) }
        #expect(response.deniedResponse.status.code == .forbidden)
        #expect(response.deniedResponse.headers.dictionary["x-warden-reason"] == "no_allow_matched")
        #expect(response.deniedResponse.headers.dictionary["x-warden-policy"] == nil)
    }

    @Test func aCustomProviderObjectDecisionSetsStatusHeadersAndBody() async throws {
        let provider = FixedDecisionProvider(decision: [
            "allowed": false, "http_status": 429, "body": "slow down", "headers": ["retry-after": "30"],
        ])
        let response = try await withServices(try snapshot(providers: ["ext": provider])) { auth, _ in
            try await auth.check(apiCheck(path: "/ext/thing"))
        }
        #expect(response.deniedResponse.status.code == .tooManyRequests)
        #expect(response.deniedResponse.body == "slow down")
        #expect(response.deniedResponse.headers.dictionary["retry-after"] == "30")
        #expect(response.deniedResponse.headers.dictionary["x-warden-reason"] == "custom_denied")
    }

    @Test func aCustomProviderAllowanceAddsHeaders() async throws {
        let provider = FixedDecisionProvider(decision: [
            "allowed": true, "headers": ["x-user": "alice"], "request_headers_to_remove": ["x-debug"],
            "dynamic_metadata": ["plan": "pro"],
        ])
        let response = try await withServices(try snapshot(providers: ["ext": provider])) { auth, _ in
            try await auth.check(apiCheck(path: "/ext/thing"))
        }
        #expect(response.status.code == 0)
        #expect(response.okResponse.headers.dictionary == ["x-user": "alice"])
        #expect(response.okResponse.headersToRemove == ["x-debug"])
        #expect(response.dynamicMetadata.fields["plan"]?.stringValue == "pro")
    }

    @Test func anUnknownOrBrokenProviderFailsClosed() async throws {
        let missing = try await withServices(try snapshot()) { auth, _ in try await auth.check(apiCheck(path: "/ext/thing")) }
        #expect(missing.deniedResponse.status.code == .forbidden)
        #expect(missing.deniedResponse.headers.dictionary["x-warden-reason"] == "custom_failed")

        let broken = FixedDecisionProvider(decision: ["allowed": "yes"])
        let response = try await withServices(try snapshot(providers: ["ext": broken])) { auth, _ in
            try await auth.check(apiCheck(path: "/ext/thing"))
        }
        #expect(response.deniedResponse.headers.dictionary["x-warden-reason"] == "custom_failed")
    }

    @Test func withoutPoliciesEveryCheckFailsClosed() async throws {
        let response = try await withServices(nil) { auth, _ in try await auth.check(apiCheck(path: "/items")) }
        #expect(response.status.code == 14)
        #expect(response.deniedResponse.status.code == .serviceUnavailable)
    }

    @Test func healthReportsReadiness() async throws {
        let serving = try await withServices(try snapshot()) { _, health in try await health.check(.init()) }
        #expect(serving.status == .serving)
        let named = try await withServices(try snapshot()) { _, health in
            try await health.check(.with { $0.service = HealthService.authorizationService })
        }
        #expect(named.status == .serving)
        let notServing = try await withServices(nil) { _, health in try await health.check(.init()) }
        #expect(notServing.status == .notServing)
        await #expect(throws: RPCError.self) {
            _ = try await withServices(try snapshot()) { _, health in try await health.check(.with { $0.service = "nope" }) }
        }
    }
}
