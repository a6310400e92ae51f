import ExtAuthz
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PolicyCore
import SwiftProtobuf
import Testing
import WardenTesting

let denyAdminPolicy = """
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: deny-admin, namespace: backend}
    spec:
      action: DENY
      rules:
      - to: [{operation: {paths: ["/admin"]}}]
    """

func check(path: String, method: String = "GET") -> Envoy_Service_Auth_V3_CheckRequest {
    CheckFixtures.sidecar(method: method, path: path, headers: ["authorization": "Bearer secret-token"], labels: [:])
        .checkRequest
}

/// Calls the server over real HTTP/2 with grpc-swift's NIO client.
func withClient<T: Sendable>(
    port: Int, _ body: @Sendable (Envoy_Service_Auth_V3_Authorization.Client<HTTP2ClientTransport.Posix>,
                                   Grpc_Health_V1_Health.Client<HTTP2ClientTransport.Posix>) async throws -> T
) async throws -> T {
    let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
    return try await withGRPCClient(transport: transport) { client in
        try await body(Envoy_Service_Auth_V3_Authorization.Client(wrapping: client), Grpc_Health_V1_Health.Client(wrapping: client))
    }
}

/// The real `warden serve` binary on 127.0.0.1, called with a gRPC client and with curl.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ServeTests {
    /// Run as deployed by default, and with checks on the event loops (`--threads 1`), where policy loads must
    /// not block the loop.
    /// The shipped policies select their workloads: a server told which workload it guards applies them (the
    /// README's first curl), and one told nothing says at start what that means.
    @Test func theGuardedWorkloadIsSaidAndSetByFlag() async throws {
        let plain = try await ServerProcess(["--policies", Repository.path("policies"), "--decision-log", "off"])
        defer { plain.stop() }
        try await waitUntil { plain.stderr.contains("checks that name no workload are for namespace `default` without labels") }
        #expect(try await curl([plain.httpBase + "/ext_authz/details/1"]).status == 200)

        let details = try await ServerProcess([
            "--policies", Repository.path("policies"), "--decision-log", "off", "--destination-labels", "app=details,version=v1",
        ])
        defer { details.stop() }
        try await waitUntil { details.stderr.contains("checks that name no workload are for namespace `default` {app=details,version=v1}") }
        // details requires a verified JWT (the proxy verifies it): without one the check is denied.
        #expect(try await curl([details.httpBase + "/ext_authz/details/1"]).status == 403)

        let bad = try await ProcessRunner.warden(["serve", "--destination-labels", "app"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--destination-labels must be key=value pairs joined by commas, found `app`"))
    }

    @Test(arguments: [[], ["--threads", "1"]])
    func servesChecksOverGRPCAndHTTPAndShutsDownOnSIGTERM(threads: [String]) async throws {
        let directory = try TemporaryDirectory()
        try directory.write("policies/deny-admin.yaml", denyAdminPolicy)
        let log = directory.path + "/decisions.jsonl"
        let server = try await ServerProcess([
            "--policies", directory.path + "/policies", "--decision-log", log, "--destination-namespace", "backend",
            "--allow-policy-writes",
        ] + threads)

        let (allowed, denied, health) = try await withClient(port: server.grpcPort) { auth, health in
            (try await auth.check(check(path: "/items")), try await auth.check(check(path: "/a/../admin?x=1")),
             try await health.check(.init()))
        }
        #expect(allowed.status.code == 0)
        #expect(denied.status.code == 7)
        #expect(denied.deniedResponse.status.code == .forbidden)
        #expect(denied.deniedResponse.headers.contains { $0.header.key == "x-warden-policy" && $0.header.value == "backend/deny-admin" })
        #expect(health.status == .serving)

        let ready = try await curl([server.httpBase + "/health"])
        #expect(ready.status == 200)
        let httpDenied = try await curl(["-H", "host: api.backend", server.httpBase + "/ext_authz//admin"])
        #expect(httpDenied.status == 403)
        #expect(httpDenied.headers.lowercased().contains("x-warden-policy: backend/deny-admin"))
        #expect(httpDenied.body.contains("backend/deny-admin"))
        let metrics = try await curl([server.adminBase + "/metrics"])
        #expect(metrics.body.contains(#"warden_decisions_total{action="DENY",result="deny"} 2"#), "\(metrics.body)")

        let put = try await curl([
            "-X", "PUT", "-H", "content-type: application/yaml", "--data-binary",
            denyAdminPolicy.replacingOccurrences(of: "deny-admin", with: "deny-ops").replacingOccurrences(of: "/admin", with: "/ops"),
            server.adminBase + "/v1/policies/deny-ops",
        ])
        #expect(put.status == 200, "\(put.body)")
        #expect(FileManager.default.fileExists(atPath: directory.path + "/policies/deny-ops.yaml"), "persisted")
        let ops = try await withClient(port: server.grpcPort) { auth, _ in try await auth.check(check(path: "/ops")) }
        #expect(ops.status.code == 7)

        #expect(server.stop() == 0, "graceful exit\n\(server.stderr)")
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4)
        let first = try JSONReader.parse(String(lines[0]))
        #expect(first["attributes"]?["request.path"] == "/items")
        #expect(first["attributes"]?["request.headers"]?["authorization"] == "<masked>")
        #expect(first["attributes"]?["source.principal"] == "cluster.local/ns/frontend/sa/web")
        #expect(first["result"] == "allow")
        #expect(first["transport"] == "grpc")
        #expect(first["revision"] == 1)
        let second = try JSONReader.parse(String(lines[1]))
        #expect(second["policy"] == "backend/deny-admin")
        #expect(second["decision"]?["reason"] == "deny_matched")

        // The log replays: under the policies that served, nothing changes; a new DENY on /items flips exactly one.
        let same = try await ProcessRunner.warden(["replay", "--log", log, "--policies", directory.path + "/policies", "--format", "json"])
        #expect(same.status == 0, "\(same.stdout)\(same.stderr)")
        #expect(try JSONReader.parse(same.stdout)["changed"] == 0, "\(same.stdout)")
        try directory.write("next/deny-items.yaml", denyAdminPolicy.replacingOccurrences(of: "/admin", with: "/items"))
        let next = try await ProcessRunner.warden(["replay", "--log", log, "--policies", directory.path + "/next", "--format", "json"])
        #expect(next.status == 3, "\(next.stdout)\(next.stderr)")
        let report = try JSONReader.parse(next.stdout)
        #expect(report["allow_to_deny"] == 1, "\(next.stdout)")
        #expect(report["deny_to_allow"] == 3, "\(next.stdout)")
    }

    @Test(arguments: [[], ["--threads", "1"]])
    func aBrokenFileLeavesTheOldDecisionsServingAndStatusNamesIt(threads: [String]) async throws {
        let directory = try TemporaryDirectory()
        try directory.write("deny-admin.yaml", denyAdminPolicy)
        let server = try await ServerProcess(["--policies", directory.path, "--decision-log", "off", "--watch-interval-ms", "100"] + threads)
        defer { server.stop() }

        let broken = try directory.write("broken.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: broken, namespace: backend}
            spec:
              action: DENY
              rules:
              - to: [{operation: {paths: ["/admin"], methods: GET}}]
            """)
        var status: Value = .null
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            status = try JSONReader.parse(try await curl([server.adminBase + "/v1/status"]).body)
            if status["result"]?["reload_failures"] != 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status["result"]?["reload_failures"] == 1, "\(status)")
        #expect(status["result"]?["revision"] == 1)
        let message = status["result"]?["last_error_message"]?.stringValue ?? ""
        #expect(message.hasPrefix("\(broken):7:"), "\(message)")
        // The status changes before the log line is written whole.
        try await waitUntil { server.stderr.contains("\(broken):7:") }

        let (denied, allowed) = try await withClient(port: server.grpcPort) { auth, _ in
            (try await auth.check(check(path: "/admin")), try await auth.check(check(path: "/items")))
        }
        #expect(denied.status.code == 7, "the old set still denies")
        #expect(allowed.status.code == 0)
        let metrics = try await curl([server.adminBase + "/metrics"]).body
        #expect(metrics.contains("warden_policy_reload_failures_total 1"))

        // Fixing the file and sending SIGHUP loads the new set at once (the directory watch may load it too, so
        // the revision is 2 or 3).
        try directory.remove("broken.yaml")
        server.signal(SIGHUP)
        let fixedDeadline = ContinuousClock.now + .seconds(20)
        func revision() -> Int { status["result"]?["revision"]?.numberValue?.intValue ?? 0 }
        while ContinuousClock.now < fixedDeadline {
            status = try JSONReader.parse(try await curl([server.adminBase + "/v1/status"]).body)
            if revision() >= 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(revision() >= 2, "\(status)")
        #expect(status["result"]?["last_error"] == .null)
    }

    /// A policy Istio accepts with a warning loads and decides; the warning is logged and shown on `/v1/status`.
    @Test func aWarnedPolicyLoadsDecidesAndIsReported() async throws {
        let directory = try TemporaryDirectory()
        let warned = try directory.write("deny-admin.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-admin, namespace: backend}
            spec:
              selector: {}
              action: DENY
              rules:
              - to: [{operation: {paths: ["/admin"]}}]
            """)
        let server = try await ServerProcess(["--policies", directory.path, "--decision-log", "off"])
        defer { server.stop() }

        let (denied, allowed) = try await withClient(port: server.grpcPort) { auth, _ in
            (try await auth.check(check(path: "/admin")), try await auth.check(check(path: "/items")))
        }
        #expect(denied.status.code == 7)
        #expect(denied.deniedResponse.headers.contains { $0.header.key == "x-warden-policy" && $0.header.value == "backend/deny-admin" })
        #expect(allowed.status.code == 0)

        let status = try JSONReader.parse(try await curl([server.adminBase + "/v1/status"]).body)
        #expect(status["result"]?["ready"] == true)
        #expect(status["result"]?["policies"] == 1)
        let warnings = status["result"]?["warnings"]?.arrayValue ?? []
        #expect(warnings.map { $0["code"] } == ["selector_without_labels", "http_only_deny_rule"], "\(status)")
        #expect(warnings.first?["severity"] == "warning")
        #expect(warnings.first?["location"]?["file"]?.stringValue == warned)
        #expect(warnings.first?["location"]?["row"] == 5)
        #expect(warnings.first?["path"] == "spec.selector")
        #expect(server.stderr.contains("\(warned):5:13: spec.selector: warning: workload selector specified without labels"))
        #expect(server.stderr.contains("\(warned):8:5: spec.rules[0]: warning: a DENY rule with only HTTP attributes"))
    }

    @Test func aRegoCustomProvidersObjectDecisionSetsStatusHeadersAndBody() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("ext.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: ext-authz, namespace: backend}
            spec:
              action: CUSTOM
              provider: {name: opa}
              rules:
              - to: [{operation: {paths: ["/ext/*"]}}]
            """)
        try directory.write("authz.rego", """
            package envoy.authz

            import rego.v1

            default allow := {"allowed": false, "http_status": 401, "body": "sign in first", "headers": {"www-authenticate": "Bearer"}}

            allow := {"allowed": true, "headers": {"x-user": user}} if {
            	user := input.attributes.request.http.headers["x-user"]
            	input.parsed_path == ["ext", "orders"]
            }
            """)
        let server = try await ServerProcess(["--policies", directory.path, "--decision-log", "off"])
        defer { server.stop() }

        let (denied, allowed) = try await withClient(port: server.grpcPort) { auth, _ in
            var withUser = check(path: "/ext//orders")
            withUser.attributes.request.http.headers["x-user"] = "alice"
            return (try await auth.check(check(path: "/ext/orders")), try await auth.check(withUser))
        }
        #expect(denied.deniedResponse.status.code == .unauthorized)
        #expect(denied.deniedResponse.body == "sign in first")
        #expect(denied.deniedResponse.headers.contains { $0.header.key == "www-authenticate" && $0.header.value == "Bearer" })
        #expect(denied.deniedResponse.headers.contains { $0.header.key == "x-warden-policy" && $0.header.value == "backend/ext-authz" })
        #expect(allowed.status.code == 0, "the path is normalized before Rego sees it")
        #expect(allowed.okResponse.headers.contains { $0.header.key == "x-user" && $0.header.value == "alice" })

        let data = try await curl([
            "-X", "POST", "--data", #"{"input": {"parsed_path": ["ext", "orders"], "attributes": {"request": {"http": {"headers": {"x-user": "bob"}}}}}}"#,
            server.httpBase + "/v1/data/envoy/authz/allow",
        ])
        #expect(try JSONReader.parse(data.body) == ["result": ["allowed": true, "headers": ["x-user": "bob"]]])
    }

    @Test func servesTheRepositoryPoliciesByDefault() async throws {
        let server = try await ServerProcess(["--decision-log", "off", "--watch-interval-ms", "0"])
        defer { server.stop() }
        let status = try JSONReader.parse(try await curl([server.adminBase + "/v1/status"]).body)
        #expect(status["result"]?["policies"] == 6)
        #expect(status["result"]?["ready"] == true)
    }

    @Test func aBadConfigurationFileExitsTwoWithItsPlace() async throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("warden.yaml", "grpc: {adress: x}\n")
        let out = try await ProcessRunner.warden(["serve", "--config", config])
        #expect(out.status == 2)
        #expect(out.stderr.contains("\(config):1:8: grpc.adress: unknown field `adress`"))
    }
}
