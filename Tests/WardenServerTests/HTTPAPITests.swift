import AuthzPolicy
import DecisionPoint
import ExtAuthz
import Foundation
import Networking
import NIOCore
import NIOHTTP1
import PolicyCore
import PolicyLoading
import Testing
@testable import WardenServer
import WardenTesting

let validPolicy = """
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: deny-admin, namespace: backend}
    spec:
      action: DENY
      rules:
      - to: [{operation: {paths: ["/admin"]}}]
    """

/// A server's HTTP routes over a temporary policies directory.
struct APIHarness {
    let files: [String: String]
    let directory: TemporaryDirectory
    let store: PolicyStore
    let api: HTTPAPI
    let metrics = ServerMetrics()

    /// Which listener a request goes to.
    enum Listener {
        case dataPlane, admin
    }

    init(
        files: [String: String] = ["deny-admin.yaml": validPolicy], policyWrites: Bool = true,
        authorizer: AdminAuthorizer = AdminAuthorizer(), dataPlaneAllowList: Bool = false, claimsHeader: Bool = false
    ) throws {
        self.files = files
        directory = try TemporaryDirectory()
        for (name, text) in files { try directory.write(name, text) }
        store = PolicyStore(paths: [directory.path], loader: PolicyLoader())
        let handler = CheckHandler(
            decisionPoint: store.decisionPoint,
            mapper: CheckRequestMapper(options: .init(
                verifiedClaimsHeader: claimsHeader ? VerifiedClaimsHeader.name : nil, destinationNamespace: "backend")),
            metrics: metrics, log: nil)
        let metrics = self.metrics
        store.observe { outcome in
            switch outcome {
            case .installed(let s, _): metrics.recordReload(policies: s.authorization.policies.count, revision: s.revision)
            case .refused: metrics.recordReloadFailure()
            case .unchanged: break
            }
        }
        api = HTTPAPI(
            handler: handler, store: store, documents: PolicyDocuments(directory: directory.path), metrics: metrics,
            dataPlaneAllowList: dataPlaneAllowList, authorizer: authorizer, policyWrites: policyWrites,
            adminAddress: "127.0.0.1:8282")
    }

    /// Sends a request to `listener`; by default, decisions and health to the data plane, the rest to the admin API.
    func send(
        _ method: String, _ target: String, body: String = "", headers: [(name: String, value: String)] = [],
        on listener: Listener? = nil, peer: TLSPeer? = nil
    ) async -> HTTPResponse {
        let request = HTTPRequest(method: method, target: target, headers: headers, body: Array(body.utf8))
        let connection = HTTPServer.Connection(
            remoteIP: "127.0.0.1", remotePort: 5000, localIP: "127.0.0.1", localPort: 8181, peer: peer)
        let path = request.path
        let dataPlane = path.hasPrefix("/ext_authz") || path == "/health" || path.hasPrefix("/v1/data")
        switch listener ?? (dataPlane ? .dataPlane : .admin) {
        case .dataPlane: return api.dataPlane(request, connection: connection)
        case .admin: return await api.admin(request, connection: connection)
        }
    }
}

@Suite struct HTTPAPITests {
    @Test func healthIsReadyOnlyOncePoliciesLoaded() async throws {
        let harness = try APIHarness()
        #expect(await harness.send("GET", "/health").status == 503)
        harness.store.reload()
        #expect(await harness.send("GET", "/health").status == 200)
    }

    @Test func extAuthzHTTPModeAllowsAndDenies() async throws {
        let harness = try APIHarness()
        harness.store.reload()
        let allowed = await harness.send("GET", "/ext_authz/items?x=1", headers: [("host", "api")])
        #expect(allowed.status == 200)
        #expect(allowed.header("x-warden-decision-id") != nil)
        let denied = await harness.send("GET", "/ext_authz//admin", headers: [("host", "api")])
        #expect(denied.status == 403)
        #expect(denied.header("x-warden-policy") == "backend/deny-admin")
        #expect(denied.bodyText.contains("backend/deny-admin"))
    }

    @Test func statusNamesTheLastErrorWithItsPlace() async throws {
        let harness = try APIHarness()
        harness.store.reload()
        try harness.directory.write("broken.yaml", "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: b}\nspec:\n  action: DENNY\n")
        harness.store.reload()
        let status = try JSONReader.parse(await harness.send("GET", "/v1/status").bodyText)
        let result = try #require(status["result"])
        #expect(result["ready"] == true)
        #expect(result["revision"] == 1)
        #expect(result["reload_failures"] == 1)
        let error = try #require(result["last_error"]?.arrayValue?.first)
        #expect(error["location"]?["file"] == .string(harness.directory.path + "/broken.yaml"))
        #expect(error["location"]?["row"] == 5)
        #expect(error["location"]?["col"] == 11)
        #expect(result["last_error_message"]?.stringValue?.hasPrefix(harness.directory.path + "/broken.yaml:5:11:") == true)
        // The old set still decides.
        #expect(await harness.send("GET", "/ext_authz/admin").status == 403)
    }

    @Test func policiesAreValidatedBeforeTheyAreWritten() async throws {
        let harness = try APIHarness()
        harness.store.reload()
        let bad = await harness.send(
            "PUT", "/v1/policies/team/bad", body: "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\nspec: {action: NOPE}\n",
            headers: [("content-type", "application/yaml")])
        #expect(bad.status == 400)
        let report = try JSONReader.parse(bad.bodyText)
        #expect(report["code"] == "invalid_parameter")
        #expect(report["errors"]?.arrayValue?.first?["location"]?["row"] == 4)
        #expect(!FileManager.default.fileExists(atPath: harness.directory.path + "/team/bad.yaml"))

        let good = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-secret, namespace: backend}
            spec:
              action: DENY
              rules: [{to: [{operation: {paths: ["/secret"]}}]}]
            """
        #expect(await harness.send("PUT", "/v1/policies/team/secret", body: good, headers: [("content-type", "application/yaml")]).status == 200)
        #expect(FileManager.default.fileExists(atPath: harness.directory.path + "/team/secret.yaml"))
        #expect(await harness.send("GET", "/ext_authz/secret").status == 403, "loaded at once")

        let listed = try JSONReader.parse(await harness.send("GET", "/v1/policies").bodyText)
        #expect(listed["result"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["deny-admin.yaml", "team/secret.yaml"])
        let one = try JSONReader.parse(await harness.send("GET", "/v1/policies/team/secret").bodyText)
        #expect(one["result"]?["raw"] == .string(good))

        #expect(await harness.send("DELETE", "/v1/policies/team/secret").status == 200)
        #expect(await harness.send("GET", "/ext_authz/secret").status == 200)
        #expect(await harness.send("DELETE", "/v1/policies/team/secret").status == 404)
        #expect(await harness.send("GET", "/v1/policies/nope").status == 404)
    }

    @Test func policyIDsCannotEscapeTheDirectory() async throws {
        let harness = try APIHarness()
        for id in ["../etc/passwd", "a/../../b", ".hidden", "a//b", "a%00b"] {
            let response = await harness.send("PUT", "/v1/policies/\(id)", body: validPolicy, headers: [("content-type", "application/yaml")])
            #expect(response.status == 400, "\(id)")
        }
    }

    @Test func regoModulesAreValidatedWrittenAndQueried() async throws {
        let harness = try APIHarness()
        harness.store.reload()
        let broken = await harness.send("PUT", "/v1/policies/authz", body: "package envoy.authz\n\nallow if {\n", headers: [("content-type", "text/plain")])
        #expect(broken.status == 400)
        let report = try JSONReader.parse(broken.bodyText)
        #expect(report["errors"]?.arrayValue?.first?["code"] == "rego_parse_error")
        #expect(report["errors"]?.arrayValue?.first?["location"]?["file"] == .string(harness.directory.path + "/authz.rego"))
        #expect(!FileManager.default.fileExists(atPath: harness.directory.path + "/authz.rego"))

        let module = """
            package envoy.authz

            import rego.v1

            default allow := false

            allow if input.attributes.request.http.method == "GET"

            names contains name if some name in input.names
            """
        #expect(await harness.send("PUT", "/v1/policies/authz", body: module, headers: [("content-type", "text/plain")]).status == 200)
        #expect(FileManager.default.fileExists(atPath: harness.directory.path + "/authz.rego"))
        let status = try JSONReader.parse(await harness.send("GET", "/v1/status").bodyText)
        #expect(status["result"]?["rego_modules"] == 1)

        let allowed = await harness.send(
            "POST", "/v1/data/envoy/authz/allow", body: #"{"input": {"attributes": {"request": {"http": {"method": "GET"}}}}}"#)
        #expect(try JSONReader.parse(allowed.bodyText) == ["result": true])
        let denied = await harness.send("POST", "/v1/data/envoy/authz/allow", body: #"{"input": {}}"#)
        #expect(try JSONReader.parse(denied.bodyText) == ["result": false])
        let set = await harness.send("GET", "/v1/data/envoy/authz/names?input=%7B%22names%22%3A%5B%22b%22%2C%22a%22%5D%7D")
        #expect(try JSONReader.parse(set.bodyText) == ["result": ["a", "b"]])
        let undefined = await harness.send("POST", "/v1/data/envoy/authz/nothing")
        #expect(try JSONReader.parse(undefined.bodyText) == [:])
        let whole = try JSONReader.parse(await harness.send("GET", "/v1/data").bodyText)
        #expect(whole["result"]?["envoy"]?["authz"]?["allow"] == false)
        #expect(await harness.send("POST", "/v1/data/x", body: "{nope").status == 400)
    }

    @Test func metricsCountDecisionsAndReloads() async throws {
        let harness = try APIHarness()
        harness.store.reload()
        _ = await harness.send("GET", "/ext_authz/admin")
        _ = await harness.send("GET", "/ext_authz/ok")
        let text = await harness.send("GET", "/metrics").bodyText
        #expect(text.contains(#"warden_decisions_total{action="DENY",result="deny"} 1"#))
        #expect(text.contains(#"warden_decisions_total{action="none",result="allow"} 1"#))
        #expect(text.contains("warden_decision_duration_seconds_count 2"))
        #expect(text.contains("warden_policy_reloads_total 1"))
        #expect(text.contains("warden_policies_loaded 1"))
        #expect(text.contains("warden_policy_revision 1"))
    }

    @Test func theDataPlaneHasNoPolicyAPIAndTheAdminAPIRefusesWritesWhenOff() async throws {
        let harness = try APIHarness(policyWrites: false)
        harness.store.reload()
        let onDataPlane = await harness.send("PUT", "/v1/policies/deny-admin", body: validPolicy, on: .dataPlane)
        #expect(onDataPlane.status == 404)
        #expect(onDataPlane.bodyText.contains("the admin listener (`127.0.0.1:8282`)"), "\(onDataPlane.bodyText)")
        for path in ["/v1/status", "/metrics", "/v1/policies"] {
            #expect(await harness.send("GET", path, on: .dataPlane).status == 404, "\(path)")
        }
        let put = await harness.send("PUT", "/v1/policies/deny-admin", body: validPolicy, on: .admin)
        #expect(put.status == 403)
        #expect(try JSONReader.parse(put.bodyText)["code"] == "invalid_operation")
        #expect(await harness.send("DELETE", "/v1/policies/deny-admin", on: .admin).status == 403)
        #expect(await harness.send("GET", "/v1/policies/deny-admin.yaml", on: .admin).status == 200, "reads stay")
        #expect(await harness.send("GET", "/ext_authz/admin", on: .admin).status == 404, "no decisions on the admin API")
        #expect(await harness.send("GET", "/ext_authz/admin", on: .dataPlane).status == 403, "the DENY still holds")
    }

    @Test func anAllowListedDataPlaneAnswersOnlyItsClientsAndTrustsOnlyThemWithClaims() async throws {
        let harness = try APIHarness(
            files: ["require-alice.yaml": """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: require-alice, namespace: backend}
                spec: {rules: [{from: [{source: {requestPrincipals: ["https://issuer.example/alice"]}}]}]}
                """],
            dataPlaneAllowList: true, claimsHeader: true)
        harness.store.reload()
        let claims = [(name: VerifiedClaimsHeader.name,
                       value: VerifiedClaimsHeader.encode(["iss": "https://issuer.example", "sub": "alice"]))]
        let proxy = TLSPeer(certificate: [], identity: "spiffe://cluster.local/ns/mesh/sa/proxy", authorized: true)
        let stranger = TLSPeer(certificate: [], identity: "spiffe://cluster.local/ns/web/sa/web", authorized: false)
        #expect(await harness.send("GET", "/ext_authz/items", headers: claims, peer: proxy).status == 200)
        #expect(await harness.send("GET", "/ext_authz/items", peer: proxy).status == 403)
        let refused = await harness.send("GET", "/ext_authz/items", headers: claims, peer: stranger)
        #expect(refused.status == 403)
        #expect(refused.bodyText.contains("`spiffe://cluster.local/ns/web/sa/web` is not on this listener's allow-list"))
        #expect(await harness.send("GET", "/ext_authz/items", headers: claims).status == 403)
        #expect(await harness.send("POST", "/v1/data", peer: stranger).status == 401)
        #expect(await harness.send("POST", "/v1/data", peer: proxy).status == 200)
        #expect(await harness.send("GET", "/health").status == 200, "health stays open")
        let metrics = String(decoding: harness.metrics.exposition(), as: UTF8.self)
        #expect(metrics.contains(#"warden_client_refusals_total{listener="http"} 3"#), "\(metrics)")

        let open = try APIHarness(files: ["require-alice.yaml": harness.files["require-alice.yaml"]!], claimsHeader: true)
        open.store.reload()
        #expect(await open.send("GET", "/ext_authz/items", headers: claims).status == 403, "ignored from an unauthenticated client")
    }

    @Test func unknownRoutesAndMethods() async throws {
        let harness = try APIHarness()
        harness.store.reload()
        #expect(await harness.send("GET", "/nope").status == 404)
        // The ext_authz prefix is a whole path segment: `/ext_authzed` is no check.
        #expect(await harness.send("GET", "/ext_authzed", on: .dataPlane).status == 404)
        #expect(await harness.send("GET", "/ext_authz", on: .dataPlane).header("x-warden-decision-id") != nil)
        #expect(await harness.send("GET", "/ext_authz?x=1", on: .dataPlane).header("x-warden-decision-id") != nil)
        #expect(await harness.send("POST", "/v1/policies/x").status == 405)
    }
}
