import ExtAuthz
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Testing
import WardenTesting

/// A gRPC workload behind `warden proxy --upstream-http2`: grpc-swift-2's client, over mutual TLS as `sleep` (and
/// in plaintext, h2c), calls through the proxy, which checks the call and forwards it as an HTTP/2 stream (with `te: trailers`), and the
/// call's trailers (its `grpc-status`) come back. The workload is a gRPC server of Warden's own: another `warden
/// serve`, whose Health service answers.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ProxyUpstreamHTTP2Tests {
    @Test func aGRPCCallIsCheckedForwardedAndAnsweredWithItsTrailers() async throws {
        let (workload, policies) = try await Self.grpcWorkload()
        defer { workload.stop(); withExtendedLifetime(policies) {} }
        // The workload's Check method is denied to callers through the proxy; its Health service is not.
        let harness = try await ProxyHarness(
            authorization: ProxyHarness.deny(paths: ["/envoy.service.auth.v3.Authorization/*"]),
            proxyArguments: ["--upstream-http2"], upstreamPort: workload.grpcPort)
        defer { harness.stop() }

        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: harness.proxy.port),
            transportSecurity: .mTLS(
                certificateChain: [.file(path: harness.sleep.certificateChain, format: .pem)],
                privateKey: .file(path: harness.sleep.key, format: .pem)
            ) {
                $0.trustRoots = .certificates([.file(path: harness.sleep.rootCertificate, format: .pem)])
                $0.serverCertificateVerification = .noHostnameVerification
            },
            config: .defaults { $0.http2.authority = "details" })
        let (health, concurrent, denial) = try await withGRPCClient(transport: transport) { client in
            let health = try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init())
            // Many calls at once: streams of the client's connection, and of the proxy's one to the workload.
            let concurrent = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<50 {
                    group.addTask { try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init()).status == .serving }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            let denial: RPCError?
            do {
                _ = try await Envoy_Service_Auth_V3_Authorization.Client(wrapping: client).check(check(path: "/x"))
                denial = nil
            } catch let error as RPCError {
                denial = error
            }
            return (health, concurrent, denial)
        }
        #expect(health.status == .serving)
        #expect(concurrent == 50)
        // The proxy's denial reaches a gRPC client in gRPC's form, as Envoy sends it: PERMISSION_DENIED, and why.
        #expect(denial?.code == .permissionDenied)
        #expect(denial?.message.hasPrefix("access denied") == true, "\(String(describing: denial))")

        // Under PERMISSIVE, a plaintext gRPC client (h2c with prior knowledge) is taken too, without a peer identity.
        let plaintext = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: harness.proxy.port), transportSecurity: .plaintext)
        let plainHealth = try await withGRPCClient(transport: plaintext) { client in
            try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init())
        }
        #expect(plainHealth.status == .serving)

        // A head whose header block cannot go to the workload in one HTTP/2 frame is answered 431 at once (it would
        // otherwise wait for the upstream timeout), and the proxy's connection to the workload keeps serving.
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        let large = try await curlExit([
            "--http2-prior-knowledge", "-H", "x-large: " + String((0..<30_000).map { _ in alphabet.randomElement()! }),
            harness.httpURL + "/large",
        ])
        #expect(large.status == 431, "\(large)")
        let after = try await withGRPCClient(transport: try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: harness.proxy.port), transportSecurity: .plaintext)
        ) { client in
            try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init())
        }
        #expect(after.status == .serving)

        let lines = try await harness.accessLog(atLeast: 55)
        let call = try #require(lines.first { ($0["path"] as? String) == "/grpc.health.v1.Health/Check" })
        #expect(call["status"] as? Int == 200 && call["protocol"] as? String == "HTTP/2")
        #expect(call["decision"] as? String == "allow")
        let denied = try #require(lines.first { ($0["path"] as? String) == "/envoy.service.auth.v3.Authorization/Check" })
        #expect(denied["status"] as? Int == 200 && denied["grpc_status"] as? Int == 7 && denied["decision"] as? String == "deny")
        let plainCall = try #require(lines.last { ($0["path"] as? String) == "/grpc.health.v1.Health/Check" })
        #expect(plainCall["protocol"] as? String == "HTTP/2" && plainCall["peer_principal"] == nil)
        let refused = try #require(lines.first { ($0["path"] as? String) == "/large" })
        #expect(refused["status"] as? Int == 431 && refused["upstream_failure"] as? String == "request_headers_too_large")
    }

    /// The seed's path for a gRPC call: the client (plaintext h2c) → its outbound proxy → details' inbound proxy
    /// (STRICT, h2 agreed by ALPN over mTLS) → the gRPC workload (h2c). The inbound proxy sees `sleep`'s identity.
    @Test func aGRPCCallTakesTheSeedsPathThroughBothProxies() async throws {
        let (workload, policies) = try await Self.grpcWorkload()
        defer { workload.stop(); withExtendedLifetime(policies) {} }
        let harness = try await ProxyHarness(
            authentication: ProxyHarness.peerAuthentication("STRICT"), proxyArguments: ["--upstream-http2"],
            upstreamPort: workload.grpcPort)
        defer { harness.stop() }
        let outbound = try await ProxyProcess(arguments: [
            "--outbound", "--upstream-http2", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:\(harness.proxy.port)",
            "--cert", harness.sleep.certificateChain, "--key", harness.sleep.key, "--trust-bundle", harness.sleep.rootCertificate,
            "--expect-peer", ProxyHarness.detailsID, "--access-log", "off",
        ])
        defer { outbound.stop() }

        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: outbound.port), transportSecurity: .plaintext)
        let health = try await withGRPCClient(transport: transport) { client in
            try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init())
        }
        #expect(health.status == .serving, "\(outbound.launched.stderr)")
        let lines = try await harness.accessLog(atLeast: 1)
        let call = try #require(lines.first { ($0["path"] as? String) == "/grpc.health.v1.Health/Check" })
        #expect(call["protocol"] as? String == "HTTP/2")
        #expect(call["peer_principal"] as? String == "cluster.local/ns/default/sa/sleep")
    }

    /// The gRPC workload: a `warden serve` (allowing everything) whose Health service answers.
    static func grpcWorkload() async throws -> (ServerProcess, TemporaryDirectory) {
        let policies = try TemporaryDirectory()
        try policies.write("allow.yaml", ProxyHarness.allowAll)
        return (try await ServerProcess(["--policies", policies.path, "--decision-log", "off"]), policies)
    }
}
