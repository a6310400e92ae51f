import ExtAuthz
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PolicyCore
import Testing
import WardenTesting

/// The reported attack: the DENY on `/admin` replaced by an ALLOW of everything.
let allowEverything = """
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: deny-admin, namespace: backend}
    spec: {rules: [{}]}
    """

/// A DENY of `/ops`, a write an authorized operator makes.
let denyOps = denyAdminPolicy.replacingOccurrences(of: "deny-admin", with: "deny-ops").replacingOccurrences(of: "/admin", with: "/ops")

/// Certificates for a server and its clients, from one test CA (and a stranger's CA), as PEM files.
struct MeshCertificates {
    let directory: TemporaryDirectory
    let server: WorkloadPaths
    let factory: CertificateFactory

    init() throws {
        directory = try TemporaryDirectory()
        factory = try CertificateFactory()
        server = try factory.leaf("spiffe://cluster.local/ns/warden/sa/warden", dnsNames: ["localhost"])
            .write(to: directory.path + "/server")
    }

    /// The CA certificates clients and the server trust (`root-cert.pem`).
    var ca: String { server.rootCertificate }

    /// A client certificate for `spiffeID` (by default from this CA), written under `name`.
    func client(_ name: String, _ spiffeID: String, variant: CertificateFactory.Variant = .valid,
                from other: CertificateFactory? = nil) throws -> WorkloadPaths {
        try (other ?? factory).leaf(spiffeID, variant: variant).write(to: directory.path + "/" + name)
    }

    /// curl arguments trusting the server over HTTPS as `localhost` on `port`, presenting `client` if given.
    func curlTLS(port: Int, client: WorkloadPaths? = nil) -> [String] {
        var arguments = ["--cacert", ca, "--resolve", "localhost:\(port):127.0.0.1"]
        if let client { arguments += ["--cert", client.certificateChain, "--key", client.key] }
        return arguments
    }
}

/// Calls Check over TLS as `localhost`, presenting `client` if given; the RPC's error code when it fails.
func tlsCheck(
    port: Int, ca: String, client: WorkloadPaths?, _ request: Envoy_Service_Auth_V3_CheckRequest
) async throws -> Result<Envoy_Service_Auth_V3_CheckResponse, RPCError> {
    let trust: (inout HTTP2ClientTransport.Posix.TransportSecurity.TLS) -> Void = {
        $0.trustRoots = .certificates([.file(path: ca, format: .pem)])
    }
    let security: HTTP2ClientTransport.Posix.TransportSecurity = client.map {
        .mTLS(certificateChain: [.file(path: $0.certificateChain, format: .pem)], privateKey: .file(path: $0.key, format: .pem),
              configure: trust)
    } ?? .tls(configure: trust)
    let transport = try HTTP2ClientTransport.Posix(
        target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: security,
        config: .defaults { $0.http2.authority = "localhost" })
    var options = CallOptions.defaults
    options.timeout = .seconds(10)
    options.waitForReady = false
    return try await withGRPCClient(transport: transport) { client in
        do {
            return .success(try await Envoy_Service_Auth_V3_Authorization.Client(wrapping: client).check(request, options: options))
        } catch let error as RPCError {
            return .failure(error)
        }
    }
}

/// `warden serve`'s two listeners and its management API's authentication and authorization, with the real
/// binary, curl and a gRPC client on 127.0.0.1.
@Suite(.serialized, .timeLimit(.minutes(3))) struct AdminTests {
    func policies() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        try directory.write("policies/deny-admin.yaml", denyAdminPolicy)
        return directory
    }

    func checkStatus(_ server: ServerProcess, path: String) async throws -> Int32 {
        try await withClient(port: server.grpcPort) { auth, _ in try await auth.check(check(path: path)) }.status.code
    }

    @Test func theReportedAttackFailsAgainstTheDefaults() async throws {
        let directory = try policies()
        let server = try await ServerProcess([
            "--policies", directory.path + "/policies", "--decision-log", "off", "--destination-namespace", "backend",
        ])
        defer { server.stop() }
        #expect(server.stderr.contains("policy writes off"))

        // The data plane has no policy API at all.
        let onDataPlane = try await curl([
            "-X", "PUT", "-H", "content-type: application/yaml", "--data-binary", allowEverything,
            server.httpBase + "/v1/policies/deny-admin",
        ])
        #expect(onDataPlane.status == 404, "\(onDataPlane.body)")
        #expect(try JSONReader.parse(onDataPlane.body)["code"] == "resource_not_found")
        #expect(onDataPlane.body.contains("admin listener"), "\(onDataPlane.body)")
        #expect(try await curl(["-X", "DELETE", server.httpBase + "/v1/policies/deny-admin"]).status == 404)

        // The admin API refuses writes until they are turned on.
        for method in ["PUT", "DELETE"] {
            let refused = try await curl([
                "-X", method, "-H", "content-type: application/yaml", "--data-binary", allowEverything,
                server.adminBase + "/v1/policies/deny-admin",
            ])
            #expect(refused.status == 403, "\(method) \(refused.body)")
            let error = try JSONReader.parse(refused.body)
            #expect(error["code"] == "invalid_operation")
            #expect(error["message"]?.stringValue?.contains("--allow-policy-writes") == true, "\(refused.body)")
        }
        #expect(try String(contentsOfFile: directory.path + "/policies/deny-admin.yaml", encoding: .utf8) == denyAdminPolicy)
        #expect(try await checkStatus(server, path: "/admin") == 7, "the DENY still holds")

        // Reads and queries stay where they belong.
        #expect(try await curl([server.adminBase + "/v1/policies"]).status == 200)
        #expect(try await curl([server.adminBase + "/v1/status"]).status == 200)
        #expect(try await curl([server.adminBase + "/metrics"]).status == 200)
        #expect(try await curl([server.httpBase + "/v1/status"]).status == 404)
        #expect(try await curl([server.httpBase + "/health"]).status == 200)
        #expect(try await curl(["-X", "POST", "--data", "{}", server.httpBase + "/v1/data/envoy/authz/allow"]).status == 200)
    }

    @Test func bearerTokensAreAuthorizedBySystemAuthz() async throws {
        let directory = try policies()
        let authz = try directory.write("admin/authz.rego", """
            package system.authz

            import rego.v1

            default allow := {"allowed": false, "reason": "unknown caller"}

            allow := {"allowed": true} if input.identity == "ops-token"

            allow := {"allowed": true} if {
            	input.identity == "viewer-token"
            	input.method == "GET"
            }
            """)
        let server = try await ServerProcess([
            "--policies", directory.path + "/policies", "--decision-log", "off", "--destination-namespace", "backend",
            "--authentication", "token", "--authorization-policy", authz, "--allow-policy-writes",
        ])
        defer { server.stop() }
        let put = ["-X", "PUT", "-H", "content-type: application/yaml", "--data-binary"]

        let anonymous = try await curl(put + [allowEverything, server.adminBase + "/v1/policies/deny-admin"])
        #expect(anonymous.status == 401, "\(anonymous.body)")
        #expect(try JSONReader.parse(anonymous.body) == ["code": "unauthorized", "message": "unknown caller"])
        let wrong = try await curl(put + [allowEverything, "-H", "authorization: Bearer guess", server.adminBase + "/v1/policies/deny-admin"])
        #expect(wrong.status == 401)
        let viewer = ["-H", "authorization: Bearer viewer-token"]
        #expect(try await curl(viewer + [server.adminBase + "/v1/policies"]).status == 200)
        #expect(try await curl(viewer + put + [allowEverything, server.adminBase + "/v1/policies/deny-admin"]).status == 401)
        #expect(try await checkStatus(server, path: "/admin") == 7, "no unauthorized write took effect")

        let ops = ["-H", "authorization: Bearer ops-token"]
        let written = try await curl(ops + put + [denyOps, server.adminBase + "/v1/policies/deny-ops"])
        #expect(written.status == 200, "\(written.body)")
        #expect(try await checkStatus(server, path: "/ops") == 7, "the authorized write is served at once")

        // A module in `system.authz` written through the API joins the served policies, never the admin's own.
        let sneaky = try await curl(ops + [
            "-X", "PUT", "-H", "content-type: text/plain", "--data-binary", "package system.authz\n\nallow := true\n",
            server.adminBase + "/v1/policies/sneaky",
        ])
        #expect(sneaky.status == 200, "\(sneaky.body)")
        #expect(try await curl(put + [allowEverything, server.adminBase + "/v1/policies/deny-admin"]).status == 401)
        #expect(try await checkStatus(server, path: "/admin") == 7)
        let metrics = try await curl(ops + [server.adminBase + "/metrics"]).body
        #expect(metrics.contains(#"warden_admin_requests_total{result="refused"} 4"#), "\(metrics)")
        #expect(metrics.contains(#"warden_admin_requests_total{result="allowed"} 4"#), "\(metrics)")
    }

    @Test func clientCertificatesAreAuthorizedBySPIFFEIDOrSubject() async throws {
        let directory = try policies()
        let certificates = try MeshCertificates()
        let authz = try directory.write("admin/authz.rego", """
            package system.authz

            import rego.v1

            default allow := false

            allow if {
            	input.identity == "spiffe://cluster.local/ns/ops/sa/deployer"
            	uri := input.client_certificates[0].URIs[0]
            	sprintf("%s://%s%s", [uri.Scheme, uri.Host, uri.Path]) == input.identity
            }

            allow if {
            	input.identity == "CN=no names"
            	input.method == "GET"
            }
            """)
        let server = try await ServerProcess([
            "--policies", directory.path + "/policies", "--decision-log", "off", "--destination-namespace", "backend",
            "--admin-tls-cert", certificates.server.certificateChain, "--admin-tls-key", certificates.server.key,
            "--admin-tls-client-ca", certificates.ca, "--authentication", "tls", "--authorization-policy", authz,
            "--allow-policy-writes",
        ])
        defer { server.stop() }
        let base = "https://localhost:\(server.adminPort)"
        let put = ["-X", "PUT", "-H", "content-type: application/yaml", "--data-binary", denyOps, base + "/v1/policies/deny-ops"]

        let deployer = try certificates.client("deployer", "spiffe://cluster.local/ns/ops/sa/deployer")
        let web = try certificates.client("web", "spiffe://cluster.local/ns/web/sa/web")
        let auditor = try certificates.client("auditor", "spiffe://cluster.local/ns/x/sa/x", variant: .noURI)
        let stranger = try certificates.client("stranger", "spiffe://cluster.local/ns/ops/sa/deployer", from: try CertificateFactory())

        let refused = try await curl(certificates.curlTLS(port: server.adminPort, client: web) + put)
        #expect(refused.status == 401, "\(refused.body)")
        #expect(try JSONReader.parse(refused.body)["message"] == "request rejected by administrative policy")
        let auditorPut = try await curl(certificates.curlTLS(port: server.adminPort, client: auditor) + put)
        #expect(auditorPut.status == 401)
        let auditorRead = try await curl(certificates.curlTLS(port: server.adminPort, client: auditor) + [base + "/v1/status"])
        #expect(auditorRead.status == 200, "the subject is the identity of a certificate without a SPIFFE ID")
        // No certificate, or one from another CA: the handshake fails before any policy runs.
        #expect(try await curl(certificates.curlTLS(port: server.adminPort) + [base + "/v1/status"]).status == 0)
        #expect(try await curl(certificates.curlTLS(port: server.adminPort, client: stranger) + put).status == 0)
        #expect(try await checkStatus(server, path: "/ops") == 0, "nothing was written yet")

        let written = try await curl(certificates.curlTLS(port: server.adminPort, client: deployer) + put)
        #expect(written.status == 200, "\(written.body)")
        #expect(try await checkStatus(server, path: "/ops") == 7)
    }

    @Test func settingsThatWouldExposeWritesRefuseToStart() async throws {
        let directory = try policies()
        let authz = try directory.write("policies/authz.rego", "package system.authz\n\ndefault allow := false\n")
        let base = ["serve", "--policies", directory.path + "/policies", "--decision-log", "off",
                    "--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0"]
        let refusals: [([String], String)] = [
            (["--allow-policy-writes", "--admin-address", "0.0.0.0:0"], "loopback"),
            (["--authentication", "token", "--admin-address", "127.0.0.1:0"], "authorization policy"),
            (["--authentication", "tls", "--admin-address", "127.0.0.1:0"], "client_ca"),
            (["--trust-verified-claims-header", "--admin-address", "127.0.0.1:0"], "allow-list"),
            (["--authorization-policy", authz, "--admin-address", "127.0.0.1:0"], "inside the served policies"),
            (["--allow-policy-writes", "--admin-address", "off"], "admin listener"),
        ]
        for (arguments, reason) in refusals {
            let out = try await ProcessRunner.warden(base + arguments)
            #expect(out.status == 2, "\(arguments): \(out.stderr)")
            #expect(out.stderr.contains(reason), "\(arguments): \(out.stderr)")
        }

        // On a loopback address, unauthenticated writes start, with a warning, and work.
        try directory.remove("policies/authz.rego")
        let server = try await ServerProcess([
            "--policies", directory.path + "/policies", "--decision-log", "off", "--destination-namespace", "backend",
            "--allow-policy-writes",
        ])
        defer { server.stop() }
        #expect(server.stderr.contains("does not authenticate"), "\(server.stderr)")
        let written = try await curl([
            "-X", "PUT", "-H", "content-type: application/yaml", "--data-binary", denyOps, server.adminBase + "/v1/policies/deny-ops",
        ])
        #expect(written.status == 200, "\(written.body)")
        #expect(try await checkStatus(server, path: "/ops") == 7)
    }

    /// A policy that admits only requests with Alice's verified token.
    static let requireAlice = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: require-alice, namespace: backend}
        spec:
          rules:
          - from: [{source: {requestPrincipals: ["https://issuer.example/alice"]}}]
        """

    static let aliceClaims = VerifiedClaimsHeader.encode(["iss": "https://issuer.example", "sub": "alice"])

    /// Policies that require Alice's token, and certificates for the mesh's proxy and for another workload.
    struct AllowListFixture {
        let directory: TemporaryDirectory
        let certificates: MeshCertificates
        let proxyID = "spiffe://cluster.local/ns/istio-system/sa/warden-proxy"
        let proxy: WorkloadPaths
        let web: WorkloadPaths

        init() throws {
            directory = try TemporaryDirectory()
            try directory.write("policies/require-alice.yaml", AdminTests.requireAlice)
            certificates = try MeshCertificates()
            proxy = try certificates.client("proxy", proxyID)
            web = try certificates.client("web", "spiffe://cluster.local/ns/web/sa/web")
        }
    }

    @Test func onlyAllowListedProxiesAskAndAreTrustedWithVerifiedClaims() async throws {
        let fixture = try AllowListFixture()
        let (directory, certificates, proxyID, proxy, web) =
            (fixture.directory, fixture.certificates, fixture.proxyID, fixture.proxy, fixture.web)
        let stranger = try certificates.client("stranger", proxyID, from: try CertificateFactory())
        // gRPC: only the proxy may ask. HTTP: anyone may ask, and no one is trusted with the claims header.
        let config = try directory.write("warden.yaml", """
            grpc:
              tls: {certificate: \(certificates.server.certificateChain), key: \(certificates.server.key), client_ca: \(certificates.ca)}
              allowed_clients: [\(proxyID)]
            http:
              tls: {certificate: \(certificates.server.certificateChain), key: \(certificates.server.key), client_ca: \(certificates.ca)}
            admin: {address: 127.0.0.1:0}
            policies: {paths: [\(directory.path)/policies]}
            request: {verified_claims_header: true, destination_namespace: backend}
            decision_log: \(directory.path)/decisions.jsonl
            """)
        let server = try await ServerProcess(["--config", config])
        defer { server.stop() }
        #expect(server.stderr.contains("the HTTP listener at 127.0.0.1:"), "\(server.stderr)")
        #expect(server.stderr.contains("has no allow-list: any client that reaches it may ask for decisions, and the verified-claims header is ignored there"), "\(server.stderr)")

        let withClaims = CheckFixtures.sidecar(path: "/items", headers: [VerifiedClaimsHeader.name: Self.aliceClaims]).checkRequest
        let without = CheckFixtures.sidecar(path: "/items").checkRequest
        let ca = certificates.ca
        let trusted = try await tlsCheck(port: server.grpcPort, ca: ca, client: proxy, withClaims).get()
        #expect(trusted.status.code == 0, "the allow-listed proxy's claims are read")
        #expect(try await tlsCheck(port: server.grpcPort, ca: ca, client: proxy, without).get().status.code == 7)

        func refusal(_ client: WorkloadPaths?) async throws -> RPCError.Code? {
            if case .failure(let error) = try await tlsCheck(port: server.grpcPort, ca: ca, client: client, withClaims) {
                return error.code
            }
            return nil
        }
        #expect(try await refusal(web) == .permissionDenied, "a mesh certificate not on the list")
        #expect(try await refusal(nil) == .unauthenticated, "no certificate")
        #expect(try await refusal(stranger) == .unavailable, "another CA's certificate fails the handshake")
        let metrics = try await curl([server.adminBase + "/metrics"]).body
        #expect(metrics.contains(#"warden_client_refusals_total{listener="grpc"} 2"#), "\(metrics)")

        // On the HTTP listener, the header is ignored from every client, with or without a certificate.
        for client in [nil, proxy] {
            let ignored = try await curl(
                certificates.curlTLS(port: server.httpPort, client: client)
                    + ["-H", "\(VerifiedClaimsHeader.name): \(Self.aliceClaims)", "https://localhost:\(server.httpPort)/ext_authz/items"])
            #expect(ignored.status == 403, "\(ignored.body)")
        }
        #expect(try await curl(certificates.curlTLS(port: server.httpPort) + ["https://localhost:\(server.httpPort)/health"]).status == 200)

        // The decision log names who asked: the proxy over gRPC and HTTP, nobody for the client without a certificate.
        #expect(server.stop() == 0)
        let lines = try String(contentsOfFile: directory.path + "/decisions.jsonl", encoding: .utf8).split(separator: "\n")
        let asked = try lines.map { try JSONReader.parse(String($0)) }
            .map { "\($0["transport"]?.stringValue ?? "") \($0["client"]?.stringValue ?? "-")" }
        #expect(asked == ["grpc \(proxyID)", "grpc \(proxyID)", "http -", "http \(proxyID)"], "\(asked)")
    }

    @Test func theHTTPListenerAnswersOnlyItsAllowList() async throws {
        let fixture = try AllowListFixture()
        let (directory, certificates, proxyID, proxy, web) =
            (fixture.directory, fixture.certificates, fixture.proxyID, fixture.proxy, fixture.web)
        let server = try await ServerProcess([
            "--policies", directory.path + "/policies", "--decision-log", "off", "--destination-namespace", "backend",
            "--http-tls-cert", certificates.server.certificateChain, "--http-tls-key", certificates.server.key,
            "--http-tls-client-ca", certificates.ca, "--grpc-tls-cert", certificates.server.certificateChain,
            "--grpc-tls-key", certificates.server.key, "--grpc-tls-client-ca", certificates.ca,
            "--allowed-clients", proxyID, "--trust-verified-claims-header",
        ])
        defer { server.stop() }
        let url = "https://localhost:\(server.httpPort)/ext_authz/items"
        let claims = ["-H", "\(VerifiedClaimsHeader.name): \(Self.aliceClaims)"]

        let allowed = try await curl(certificates.curlTLS(port: server.httpPort, client: proxy) + claims + [url])
        #expect(allowed.status == 200, "\(allowed.body)")
        let anonymous = try await curl(certificates.curlTLS(port: server.httpPort) + claims + [url])
        #expect(anonymous.status == 403)
        #expect(anonymous.body.contains("allow-list"), "\(anonymous.body)")
        let other = try await curl(certificates.curlTLS(port: server.httpPort, client: web) + claims + [url])
        #expect(other.status == 403)
        #expect(other.body.contains("spiffe://cluster.local/ns/web/sa/web"), "\(other.body)")
        let query = try await curl(certificates.curlTLS(port: server.httpPort) + [
            "-X", "POST", "--data", "{}", "https://localhost:\(server.httpPort)/v1/data",
        ])
        #expect(query.status == 401)
        #expect(try await curl(certificates.curlTLS(port: server.httpPort) + ["https://localhost:\(server.httpPort)/health"]).status == 200)
    }

    /// `warden proxy --authz-tls` presents its workload certificate to the server; a server with an allow-list answers
    /// only the listed proxies, and every other proxy fails closed. Both ext_authz clients.
    @Test(arguments: ["in-place", "grpc-swift"])
    func proxiesAskOverMutualTLSAndOnlyListedOnesAreAnswered(client: String) async throws {
        let harness = try await ProxyHarness(
            proxyArguments: ["--authz-tls", "--authz-client", client], allowedClients: [ProxyHarness.detailsID])
        defer { harness.stop() }
        let listed = try await curlExit([harness.httpURL + "/listed"])
        #expect(listed.status == 200, "\(listed.body)\n\(harness.proxy.launched.stderr)\n\(harness.server!.stderr)")

        // The same proxy presenting sleep's certificate, which the server does not list.
        try await harness.restartProxy([
            "--authz-tls", "--authz-client", client, "--cert", harness.sleep.certificateChain, "--key", harness.sleep.key,
        ])
        #expect(try await curlExit([harness.httpURL + "/unlisted"]).status == 403)
        // Without TLS the server's handshake never completes.
        try await harness.restartProxy(["--authz-client", client])
        #expect(try await curlExit([harness.httpURL + "/plaintext"]).status == 403)
        #expect(harness.upstreamRequests().map { $0["path"] as? String } == ["/listed"], "only the listed proxy's request got through")
        let metrics = try await curl([harness.server!.adminBase + "/metrics"]).body
        #expect(metrics.contains(#"warden_client_refusals_total{listener="grpc"} 1"#), "\(metrics)")
    }

    /// With `--authz-tls` the proxy checks who answers, in the handshake: the server's certificate must name
    /// `--authz-server-identity`, or by default any SPIFFE ID of the trust domain. A server proving anything else gets
    /// no check, and requests fail closed with the failure status. Both ext_authz clients.
    @Test(arguments: ["in-place", "grpc-swift"])
    func theServerMustProveTheExpectedIdentity(client: String) async throws {
        let serverID = "spiffe://cluster.local/ns/warden/sa/warden"
        let harness = try await ProxyHarness(
            proxyArguments: ["--authz-tls", "--authz-client", client, "--authz-server-identity", serverID],
            allowedClients: [ProxyHarness.detailsID])
        defer { harness.stop() }
        let right = try await curlExit([harness.httpURL + "/right"])
        #expect(right.status == 200, "\(right.body)\n\(harness.proxy.launched.stderr)")

        let impostor = "spiffe://cluster.local/ns/warden/sa/impostor"
        try await harness.restartProxy([
            "--authz-tls", "--authz-client", client, "--authz-server-identity", impostor, "--failure-status", "503",
        ])
        #expect(try await curlExit([harness.httpURL + "/wrong"]).status == 503)
        #expect(harness.proxy.launched.stderr.contains("the server is `\(serverID)`, not the expected `\(impostor)`"),
                "\(harness.proxy.launched.stderr)")

        // The default: any identity of the mesh's trust domain, and none of another.
        try await harness.restartProxy(["--authz-tls", "--authz-client", client])
        #expect(try await curlExit([harness.httpURL + "/default"]).status == 200)
        try await harness.restartProxy(["--authz-tls", "--authz-client", client, "--trust-domain", "other.example"])
        #expect(try await curlExit([harness.httpURL + "/other-domain"]).status == 403)
        #expect(harness.upstreamRequests().map { $0["path"] as? String } == ["/right", "/default"])
    }

    @Test func mutualTLSToTheServerNeedsTheProxysCertificate() async throws {
        let out = try await ProcessRunner.warden(["proxy", "--authz", "127.0.0.1:1", "--authz-tls"])
        #expect(out.status == 2)
        #expect(out.stderr.contains("--authz-tls needs --cert, --key and --trust-bundle"), "\(out.stderr)")
        let directory = try TemporaryDirectory(prefix: "warden-authz-identity")
        let config = try directory.write("proxy.yaml", """
            authz: 127.0.0.1:1
            authz_server_identity: spiffe://cluster.local/ns/warden/sa/warden
            """)
        let identity = try await ProcessRunner.warden(["proxy", "--config", config])
        #expect(identity.status == 2)
        #expect(identity.stderr.contains("--authz-server-identity needs --authz-tls"), "\(identity.stderr)")
        let malformed = try await ProcessRunner.warden(["proxy", "--authz", "127.0.0.1:1", "--authz-server-identity", "warden"])
        #expect(malformed.status == 2)
        #expect(malformed.stderr.contains("--authz-server-identity:"), "\(malformed.stderr)")
        let server = try await ProcessRunner.warden(["serve", "--allowed-clients", "spiffe://cluster.local/ns/a/sa/b"])
        #expect(server.status == 2)
        #expect(server.stderr.contains("--allowed-clients needs a data-plane listener that verifies client certificates"), "\(server.stderr)")
    }
}
