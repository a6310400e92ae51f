import Foundation
import Identity
import Testing
import WardenTesting

/// The proxy's TLS end to end: `openssl s_client` for the handshakes it must refuse, certificate rotation with a
/// connection kept open across it, and outbound mode with secure naming.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ProxyTLSTests {
    /// `openssl s_client` against the proxy: its exit status and output.
    static func handshake(_ harness: ProxyHarness, _ arguments: [String]) async throws -> ProcessOutput {
        try await ProcessRunner.run(
            try tool("openssl", package: "openssl"),
            ["s_client", "-connect", "127.0.0.1:\(harness.proxy.port)", "-servername", "details", "-CAfile",
             harness.sleep.rootCertificate, "-verify_return_error", "-brief", "-ign_eof"] + arguments,
            stdin: "GET /tls HTTP/1.1\r\nHost: details\r\nConnection: close\r\n\r\n", timeout: .seconds(20))
    }

    /// The base64 body of the first PEM certificate in `text`.
    static func firstPEM(_ text: String) -> String? {
        guard let begin = text.range(of: "-----BEGIN CERTIFICATE-----"),
            let end = text.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<text.endIndex)
        else { return nil }
        return text[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
    }

    @Test func handshakesOutsideTheMeshProfileAreRefused() async throws {
        let harness = try await ProxyHarness(authentication: ProxyHarness.peerAuthentication("STRICT"))
        defer { harness.stop() }
        let client = ["-cert", harness.sleep.certificateChain, "-key", harness.sleep.key]

        let good = try await Self.handshake(harness, client + ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("HTTP/1.1 200"))

        // Another CA, an expired certificate, a server-only certificate, no SPIFFE ID, two URIs.
        let stranger = try CertificateFactory().leaf(ProxyHarness.sleepID).write(to: harness.directory.path + "/stranger")
        let expired = try harness.ca.leaf(ProxyHarness.sleepID, variant: .expired).write(to: harness.directory.path + "/expired")
        let serverOnly = try harness.ca.leaf(ProxyHarness.sleepID, variant: .serverAuthOnly).write(to: harness.directory.path + "/server")
        let noURI = try harness.ca.leaf(ProxyHarness.sleepID, dnsNames: ["sleep"], variant: .noURI).write(to: harness.directory.path + "/nouri")
        let twoURIs = try harness.ca.leaf(
            ProxyHarness.sleepID, variant: .uris([ProxyHarness.sleepID, "spiffe://cluster.local/ns/default/sa/admin"])
        ).write(to: harness.directory.path + "/twouris")
        for paths in [stranger, expired, serverOnly, noURI, twoURIs] {
            let refused = try await Self.handshake(harness, ["-cert", paths.certificateChain, "-key", paths.key])
            #expect(!refused.stdout.contains("HTTP/1.1 200"), "\(paths.directory) was accepted")
        }
        // TLS 1.1, and a TLS 1.2 suite outside the seed's list.
        let old = try await Self.handshake(harness, client + ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        #expect(old.status != 0)
        let cipher = try await Self.handshake(harness, client + ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305:AES128-SHA"])
        #expect(cipher.status != 0)
        #expect(harness.upstreamRequests().count == 1)

        let metrics = try await curlExit(["http://127.0.0.1:\(harness.proxy.adminPort!)/metrics"]).body
        for reason in ["protocol_version", "no_shared_cipher", "peer_unknown_authority", "peer_certificate_expired", "peer_wrong_usage", "peer_no_spiffe_id", "peer_several_uris"] {
            #expect(metrics.contains(#"warden_proxy_tls_handshake_failures_total{reason="\#(reason)"} 1"#), "\(reason)\n\(metrics)")
        }
    }

    /// A resumed TLS session carries no certificate message: the proxy verifies the certificate the session holds
    /// again before it names the peer, and the request keeps the caller's identity.
    @Test func aResumedSessionIsVerifiedAgainAndKeepsItsPeer() async throws {
        let harness = try await ProxyHarness(authentication: ProxyHarness.peerAuthentication("STRICT"))
        defer { harness.stop() }
        let session = harness.directory.path + "/session.pem"
        let client = ["-cert", harness.sleep.certificateChain, "-key", harness.sleep.key, "-tls1_2"]
        let first = try await Self.handshake(harness, client + ["-sess_out", session])
        #expect(first.stdout.contains("HTTP/1.1 200"), "\(first.stderr)")
        // Without `-brief`, s_client says `Reused,` of a resumed session.
        let resumed = try await ProcessRunner.run(
            try tool("openssl", package: "openssl"),
            ["s_client", "-connect", "127.0.0.1:\(harness.proxy.port)", "-servername", "details", "-CAfile",
             harness.sleep.rootCertificate, "-verify_return_error", "-ign_eof", "-sess_in", session] + client,
            stdin: "GET /tls HTTP/1.1\r\nHost: details\r\nConnection: close\r\n\r\n", timeout: .seconds(20))
        #expect(resumed.stdout.contains("HTTP/1.1 200"), "\(resumed.stderr)")
        #expect(resumed.stdout.contains("Reused, TLSv1.2"), "the session was not resumed: \(resumed.stdout)")
        let identities = harness.upstreamRequests().map {
            (($0["headers"] as? [String: [String]]) ?? [:])["x-forwarded-client-cert"]?.first ?? ""
        }
        #expect(identities.count == 2)
        #expect(identities.allSatisfy { $0.hasSuffix("URI=\(ProxyHarness.sleepID)") }, "\(identities)")
    }

    @Test func aRotatedCertificateServesNewConnectionsWhileAnOldOneKeepsWorking() async throws {
        let harness = try await ProxyHarness()
        defer { harness.stop() }
        let url = harness.detailsURL + "/before"
        // One curl holds its connection across the rotation: two requests, the second after the files change.
        let rotated = try harness.ca.leaf(ProxyHarness.detailsID).write(to: harness.directory.path + "/details-next")
        async let held = curlExit(harness.asSleep + ["--rate", "30/m", url, harness.detailsURL + "/after"])
        try await Task.sleep(for: .milliseconds(500))
        for (from, to) in [(rotated.certificateChain, harness.details.certificateChain), (rotated.key, harness.details.key)] {
            try FileManager.default.removeItem(atPath: to)
            try FileManager.default.copyItem(atPath: from, toPath: to)
        }
        try await waitUntil { harness.proxy.launched.stderr.contains("loaded a new certificate") }
        let kept = try await held
        #expect(kept.exitStatus == 0)
        #expect(harness.upstreamRequests().compactMap { $0["path"] as? String } == ["/before", "/after"])
        // A new connection gets the new certificate.
        let fresh = try await ProcessRunner.run(
            try tool("openssl", package: "openssl"),
            ["s_client", "-connect", "127.0.0.1:\(harness.proxy.port)", "-cert", harness.sleep.certificateChain, "-key",
             harness.sleep.key, "-showcerts"], stdin: "", timeout: .seconds(20))
        let served = Self.firstPEM(fresh.stdout)
        #expect(served != nil)
        #expect(served == Self.firstPEM(try String(contentsOfFile: rotated.certificateChain, encoding: .utf8)))
    }

    @Test func outboundCarriesTheSeedsPathAndChecksWhoAnswers() async throws {
        // sleep → its outbound proxy → details' inbound proxy (STRICT) → details.
        let harness = try await ProxyHarness(authentication: ProxyHarness.peerAuthentication("STRICT"))
        defer { harness.stop() }
        let outbound = try await ProxyProcess(arguments: [
            "--outbound", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:\(harness.proxy.port)",
            "--cert", harness.sleep.certificateChain, "--key", harness.sleep.key, "--trust-bundle", harness.sleep.rootCertificate,
            "--expect-peer", ProxyHarness.detailsID, "--access-log", "off",
        ])
        defer { outbound.stop() }
        let through = try await curlExit(["http://127.0.0.1:\(outbound.port)/details/1"])
        #expect(through.status == 200, "\(through) \(outbound.launched.stderr)")
        let headers = harness.upstreamRequests().first?["headers"] as? [String: [String]] ?? [:]
        #expect(headers["x-forwarded-client-cert"]?.first?.hasSuffix("URI=\(ProxyHarness.sleepID)") == true)
        // An application given the outbound proxy as its HTTP proxy sends the target in absolute form.
        let viaProxy = try await curlExit(["-x", "http://127.0.0.1:\(outbound.port)", "http://details.default:9080/details/2?v=1"])
        #expect(viaProxy.status == 200, "\(viaProxy)")
        let proxied = harness.upstreamRequests().last
        #expect(proxied?["path"] as? String == "/details/2?v=1")
        #expect((proxied?["headers"] as? [String: [String]])?["host"] == ["details.default:9080"])
        // Both stop cleanly while the outbound proxy's kept-alive connection to the inbound one is open.
        outbound.launched.signal(SIGTERM)
        #expect(harness.proxy.launched.stop() == 0, "\(harness.proxy.launched.stderr)")
        #expect(outbound.launched.stop() == 0, "\(outbound.launched.stderr)")

        // Expecting another identity: the seed's secure naming refuses details' certificate.
        try await harness.restartProxy([])
        let wrong = try await ProxyProcess(arguments: [
            "--outbound", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:\(harness.proxy.port)",
            "--cert", harness.sleep.certificateChain, "--key", harness.sleep.key, "--trust-bundle", harness.sleep.rootCertificate,
            "--expect-peer", "spiffe://cluster.local/ns/default/sa/datastore", "--access-log", "off",
        ])
        defer { wrong.stop() }
        let refused = try await curlExit(["http://127.0.0.1:\(wrong.port)/details/1"])
        #expect(refused.status == 503)
        #expect(wrong.launched.stderr.contains("secure naming: the upstream is `\(ProxyHarness.detailsID)`"))
        #expect(harness.upstreamRequests().count == 2)
    }
}
