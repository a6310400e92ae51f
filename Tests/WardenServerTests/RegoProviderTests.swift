import DecisionPoint
import ExtAuthz
import Foundation
import PolicyCore
import PolicyLoading
import Testing
@testable import WardenServer
import WardenTesting

/// CUSTOM policies answered by Rego rules on OPA-Envoy's input, through the gRPC service.
@Suite struct RegoProviderTests {
    func loaded(_ rego: String = extRego, providers: [String: String] = [:]) throws -> PolicySnapshot {
        let directory = try TemporaryDirectory()
        try directory.write("policies.yaml", serverPolicies)
        try directory.write("authz.rego", rego)
        let (snapshot, result) = PolicyLoader(options: .init(providers: providers)).load([directory.path])
        return try #require(snapshot, "\(result.diagnostics)")
    }

    @Test func anObjectDecisionDenialSetsStatusHeadersAndBody() async throws {
        let snapshot = try loaded()
        #expect(snapshot.moduleCount == 1)
        let response = try await withGRPCServices(snapshot) { auth, _ in
            try await auth.check(apiCheck(path: "/ext/orders", headers: ["x-user": "mallory"]))
        }
        #expect(response.status.code == 7)
        #expect(response.deniedResponse.status.code == .unauthorized)
        #expect(response.deniedResponse.body == "sign in first")
        let headers = response.deniedResponse.headers.dictionary
        #expect(headers["www-authenticate"] == #"Bearer realm="api""#)
        #expect(headers["x-warden-reason"] == "custom_denied")
        #expect(headers["x-warden-policy"] == "backend/ext")
    }

    @Test func anObjectDecisionAllowanceChangesTheRequest() async throws {
        let response = try await withGRPCServices(try loaded()) { auth, _ in
            try await auth.check(apiCheck(path: "/ext/orders?id=1", headers: ["x-user": "user-alice"]))
        }
        #expect(response.status.code == 0)
        #expect(response.okResponse.headers.dictionary == ["x-user": "user-alice"])
        #expect(response.okResponse.headersToRemove == ["x-user-token"])
    }

    @Test func aBooleanRuleAtAConfiguredPath() async throws {
        let rego = """
            package team.authz

            import rego.v1

            allowed if input.attributes.request.http.method == "GET"
            """
        let snapshot = try loaded(rego, providers: ["ext": "team/authz/allowed"])
        let (get, post) = try await withGRPCServices(snapshot) { auth, _ in
            (try await auth.check(apiCheck(path: "/ext/a")), try await auth.check(apiCheck(method: "POST", path: "/ext/a")))
        }
        #expect(get.status.code == 0)
        #expect(post.deniedResponse.headers.dictionary["x-warden-reason"] == "custom_failed", "undefined fails closed")
    }

    @Test func evaluationErrorsFailClosed() async throws {
        let rego = """
            package envoy.authz

            import rego.v1

            allow := true if input.attributes.request.http.method == "GET"
            allow := false if input.attributes.request.http.host == "api.backend"
            """
        let response = try await withGRPCServices(try loaded(rego)) { auth, _ in
            try await auth.check(apiCheck(path: "/ext/a"))
        }
        #expect(response.status.code == 7)
        #expect(response.deniedResponse.headers.dictionary["x-warden-reason"] == "custom_failed")
    }

    @Test func regoErrorsRefuseTheSetWithTheirPlace() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("authz.rego", "package envoy.authz\n\nallow if {\n  x := \n}\n")
        let (snapshot, result) = PolicyLoader().load([directory.path])
        #expect(snapshot == nil)
        let error = try #require(result.diagnostics.first { $0.isError })
        #expect(error.code == "rego_parse_error")
        #expect(error.span?.file == file)
        #expect(error.span?.line == 5)
    }

    @Test func aRequestGivenAsAttributesReachesTheProviderAsEnvoyWouldSendIt() throws {
        var request = AuthzRequest()
        request.source.principal = "cluster.local/ns/frontend/sa/web"
        request.destination.namespace = "backend"
        request.destination.labels = ["app": "api"]
        request.http.method = "GET"
        request.http.path = "/ext/orders"
        request.http.headers = Headers(["x-user": "user-bob"])
        let response = try loaded().decide(request) { OPAEnvoyInput.document(forAttributesOf: request) }
        #expect(response.decision == .allow)
        #expect(response.customOutcome?.headers == [HeaderValue("x-user", "user-bob")])
    }
}
