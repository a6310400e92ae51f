import ExtAuthz
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Testing
import WardenTesting

/// TLS on the server's own listeners, checked with curl (HTTPS) and a gRPC client that trusts only the test CA.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ServeTLSTests {
    @Test func bothListenersServeTLS() async throws {
        let directory = try TemporaryDirectory()
        let cert = directory.path + "/cert.pem", key = directory.path + "/key.pem"
        let made = try await ProcessRunner.run(try tool("openssl", package: "openssl"), [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        try directory.write("policies/deny-admin.yaml", denyAdminPolicy)
        let server = try await ServerProcess([
            "--policies", directory.path + "/policies", "--decision-log", "off", "--destination-namespace", "backend",
            "--http-tls-cert", cert, "--http-tls-key", key, "--grpc-tls-cert", cert, "--grpc-tls-key", key,
        ])
        defer { server.stop() }

        let health = try await curl(["--cacert", cert, "https://127.0.0.1:\(server.httpPort)/health"])
        #expect(health.status == 200)
        let denied = try await curl(["--cacert", cert, "https://127.0.0.1:\(server.httpPort)/ext_authz/admin"])
        #expect(denied.status == 403)

        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: server.grpcPort),
            transportSecurity: .tls {
                $0.trustRoots = .certificates([.file(path: cert, format: .pem)])
            },
            config: .defaults { $0.http2.authority = "localhost" })
        let response = try await withGRPCClient(transport: transport) { client in
            try await Envoy_Service_Auth_V3_Authorization.Client(wrapping: client).check(check(path: "/admin"))
        }
        #expect(response.status.code == 7)
    }
}
