import Foundation
import Identity
import Testing
import WardenTesting

/// `warden proxy` end to end: the real binaries on 127.0.0.1 (`warden serve`, `warden upstream`, `warden proxy`),
/// certificates from a test CA, real clients (curl with and without client certificates and tokens).
@Suite(.serialized, .timeLimit(.minutes(5))) struct ProxyTests {
    @Test func strictRefusesPlaintextAtTheConnectionAndTakesMutualTLS() async throws {
        let harness = try await ProxyHarness(authentication: ProxyHarness.peerAuthentication("STRICT"))
        defer { harness.stop() }
        // The seed: `curl http://details:9080/...` under STRICT fails with exit code 56.
        let plaintext = try await curlExit([harness.httpURL + "/details/1"])
        #expect(plaintext.exitStatus == 56, "\(plaintext)")
        let noCertificate = try await curlExit(harness.withoutClientCertificate + [harness.detailsURL + "/details/1"])
        #expect(noCertificate.exitStatus != 0)
        let mtls = try await curlExit(harness.asSleep + [harness.detailsURL + "/details/1"])
        #expect(mtls.status == 200, "\(mtls) \(harness.proxy.launched.stderr)")
        // The upstream saw the peer through XFCC, and exactly one request.
        let seen = harness.upstreamRequests()
        #expect(seen.count == 1)
        let headers = seen.first?["headers"] as? [String: [String]] ?? [:]
        let xfcc = headers["x-forwarded-client-cert"]?.first ?? ""
        #expect(xfcc.hasPrefix("By=\(ProxyHarness.detailsID);Hash="))
        #expect(xfcc.hasSuffix(";URI=\(ProxyHarness.sleepID)"))
        #expect(headers["x-forwarded-proto"] == ["https"])
        #expect(headers["x-request-id"]?.first?.isEmpty == false)
        // HTTP/2 by ALPN too; its cookie crumbs reach the HTTP/1.1 upstream as one field.
        let h2 = try await curlExit(harness.asSleep + [
            "--http2", "-H", "cookie: a=1", "-H", "cookie: b=2", "-o", "/dev/null", "-w", "%{http_version}", harness.detailsURL + "/h2",
        ])
        #expect(h2.exitStatus == 0)
        #expect(harness.upstreamRequests().last?["path"] as? String == "/h2")
        #expect((harness.upstreamRequests().last?["headers"] as? [String: [String]])?["cookie"] == ["a=1; b=2"])
    }

    @Test func permissiveTakesBothAndDisableOnlyPlaintext() async throws {
        let harness = try await ProxyHarness()  // no PeerAuthentication: PERMISSIVE
        defer { harness.stop() }
        #expect(try await curlExit([harness.httpURL + "/plain"]).status == 200)
        #expect(try await curlExit(harness.withoutClientCertificate + [harness.detailsURL + "/anonymous-tls"]).status == 200)
        #expect(try await curlExit(harness.asSleep + [harness.detailsURL + "/mtls"]).status == 200)
        let seen = harness.upstreamRequests()
        #expect(seen.map { $0["path"] as? String } == ["/plain", "/anonymous-tls", "/mtls"])
        let xfcc = seen.map { (($0["headers"] as? [String: [String]]) ?? [:])["x-forwarded-client-cert"] }
        #expect(xfcc[0] == nil && xfcc[1] == nil && xfcc[2] != nil)

        // A workload policy DISABLE on the declared port: plaintext only.
        try await harness.setAuthentication(ProxyHarness.peerAuthentication("STRICT") + "---\n" + ProxyHarness.peerAuthentication(
            "UNSET", name: "details-port", selector: "app: details", ports: "\"\(harness.upstream.port)\": {mode: DISABLE}"))
        #expect(try await curlExit([harness.httpURL + "/disabled"]).status == 200)
        #expect(try await curlExit(harness.asSleep + [harness.detailsURL + "/disabled-tls"]).exitStatus != 0)
    }

    @Test func aDeniedRequestNeverReachesTheUpstreamAndXFCCCannotBeSpoofed() async throws {
        let harness = try await ProxyHarness(authorization: """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: details-from-sleep, namespace: default}
            spec:
              selector: {matchLabels: {app: details}}
              rules:
              - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
                to: [{operation: {notPaths: ["/admin*"]}}]
            """)
        defer { harness.stop() }
        let spoof = ["-H", "x-forwarded-client-cert: By=spiffe://x;URI=spiffe://cluster.local/ns/default/sa/sleep"]
        // Plaintext claiming to be sleep through a forged XFCC: denied, the upstream sees nothing.
        let forged = try await curlExit(spoof + [harness.httpURL + "/details/1"])
        #expect(forged.status == 403)
        #expect(forged.headers.lowercased().contains("x-warden-decision: deny"))
        let denied = try await curlExit(harness.asSleep + [harness.detailsURL + "/admin/users"])
        #expect(denied.status == 403)
        #expect(harness.upstreamRequests().isEmpty)
        // mTLS as sleep, with a forged XFCC: allowed, and the upstream sees the proxy's XFCC only.
        let allowed = try await curlExit(harness.asSleep + spoof + [harness.detailsURL + "/details/1"])
        #expect(allowed.status == 200)
        let headers = harness.upstreamRequests().first?["headers"] as? [String: [String]] ?? [:]
        #expect(headers["x-forwarded-client-cert"]?.count == 1)
        #expect(headers["x-forwarded-client-cert"]?.first?.hasPrefix("By=\(ProxyHarness.detailsID)") == true)
        // The access log says who was denied and why.
        let lines = try await harness.accessLog(atLeast: 3)
        #expect(lines.map { $0["decision"] as? String } == ["deny", "deny", "allow"])
        #expect(lines.last?["peer_principal"] as? String == "cluster.local/ns/default/sa/sleep")
        #expect(lines.allSatisfy { ($0["decision_id"] as? String)?.isEmpty == false })
        #expect(lines.allSatisfy { $0["duration_us"] is Int && $0["check_us"] is Int })
    }

    @Test func requestAuthenticationWithTheSeedsJWKSAndToken() async throws {
        let harness = try await ProxyHarness(authentication: Self.seedRequestAuthentication)
        defer { harness.stop() }
        let url = harness.httpURL + "/details/1"
        let valid = try await curlExit(["-H", "Authorization: Bearer " + SeedToken.token, url])
        #expect(valid.status == 200)
        let bad = try await curlExit(["-H", "Authorization: Bearer badtoken", url])
        #expect(bad.status == 401)
        #expect(bad.headers.lowercased().contains("www-authenticate: bearer realm=\"http://127.0.0.1:\(harness.proxy.port)/details/1\""))
        #expect(try await curlExit([url]).status == 200)
        // The bad token never reached the server or the upstream; the good one reached neither as a token.
        let seen = harness.upstreamRequests()
        #expect(seen.count == 2)
        #expect(seen.allSatisfy { (($0["headers"] as? [String: [String]]) ?? [:])["authorization"] == nil })

        // With an ALLOW on the request principal, no token is 403 and the token is 200.
        try harness.directory.write("server-policies/policies.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: require-jwt, namespace: default}
            spec:
              selector: {matchLabels: {app: details}}
              rules: [{from: [{source: {requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]}}]}]
            """)
        try await waitUntil { try await curlExit([url]).status == 403 }
        #expect(try await curlExit(["-H", "Authorization: Bearer " + SeedToken.token, url]).status == 200)
    }

    /// `--check-body-bytes` (Envoy's `with_request_body`): the body goes with the check, so a CUSTOM Rego policy can
    /// decide on `input.parsed_body`; a denied body never reaches the upstream, an allowed one arrives whole.
    @Test func aCheckCarriesTheBodyForACustomPolicy() async throws {
        let harness = try await ProxyHarness(authorization: """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: orders, namespace: default}
            spec:
              selector: {matchLabels: {app: details}}
              action: CUSTOM
              provider: {name: opa}
              rules: [{to: [{operation: {paths: ["/orders"]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-all, namespace: default}
            spec: {selector: {matchLabels: {app: details}}, rules: [{}]}
            """, proxyArguments: ["--check-body-bytes", "64"])
        defer { harness.stop() }
        try harness.directory.write("server-policies/orders.rego", """
            package envoy.authz

            default allow := false

            allow if {
                input.parsed_body.quantity <= 10
                input.attributes.request.http.headers["x-envoy-auth-partial-body"] == "false"
            }
            """)
        let json = ["-H", "content-type: application/json", "-X", "POST"]
        try await waitUntil { try await curlExit(json + ["-d", #"{"quantity": 2}"#, harness.httpURL + "/orders"]).status == 200 }
        #expect(try await curlExit(json + ["-d", #"{"quantity": 50}"#, harness.httpURL + "/orders"]).status == 403)
        // Over HTTP/2, where only the end of the stream says the body is whole.
        let h2 = harness.asSleep + ["--http2"] + json
        #expect(try await curlExit(h2 + ["-d", #"{"quantity": 3}"#, harness.detailsURL + "/orders"]).status == 200)
        #expect(try await curlExit(h2 + ["-d", #"{"quantity": 30}"#, harness.detailsURL + "/orders"]).status == 403)
        // Longer than the check may carry: 413, before any check.
        let long = #"{"quantity": 1, "note": "\#(String(repeating: "x", count: 80))"}"#
        #expect(try await curlExit(json + ["-d", long, harness.httpURL + "/orders"]).status == 413)
        let bodies = harness.upstreamRequests().filter { $0["path"] as? String == "/orders" }.map { $0["body_bytes"] as? Int }
        #expect(bodies.last == 15)
        #expect(bodies.allSatisfy { $0 == 15 })

        // Packed as bytes (Istio's packAsBytes): the body goes as raw_body, and OPA-Envoy's parsed_body still reads it.
        try harness.directory.write("server-policies/orders.rego", """
            package envoy.authz

            default allow := false

            allow if {
                input.parsed_body.quantity <= 10
                input.attributes.request.http.rawBody != ""
                not input.attributes.request.http.body
            }
            """)
        try await harness.restartProxy(["--check-body-bytes", "64", "--check-body-as-bytes"])
        try await waitUntil { try await curlExit(json + ["-d", #"{"quantity": 4}"#, harness.httpURL + "/orders"]).status == 200 }
        #expect(try await curlExit(json + ["-d", #"{"quantity": 40}"#, harness.httpURL + "/orders"]).status == 403)
    }

    /// The proxy normalizes the path as `warden serve` does before it checks and forwards (Istio's
    /// `pathNormalization`), so the upstream gets the path the policies matched; `--path-normalization NONE` forwards
    /// it as received.
    @Test func theUpstreamGetsThePathThePoliciesMatched() async throws {
        let harness = try await ProxyHarness(authorization: ProxyHarness.deny(paths: ["/admin*"]))
        defer { harness.stop() }
        #expect(try await curlExit(["--path-as-is", harness.httpURL + "/public/../admin"]).status == 403)
        #expect(try await curlExit(["--path-as-is", harness.httpURL + "//public/./a/../b?q=1"]).status == 200)
        #expect(try await curlExit(["--path-as-is", harness.httpURL + "/a%00b"]).status == 400)
        try await harness.restartProxy(["--path-normalization", "NONE"])
        #expect(try await curlExit(["--path-as-is", harness.httpURL + "//public/./a/../b?q=1"]).status == 200)
        #expect(try await curlExit(["--path-as-is", harness.httpURL + "/public/../admin"]).status == 403)
        #expect(harness.upstreamRequests().map { $0["path"] as? String } == ["/public/b?q=1", "//public/./a/../b?q=1"])
    }

    /// A client that sends `Expect: 100-continue` waits for `100 Continue` before its body (here up to 30 s, past
    /// curl's 20 s limit): the proxy answers the expectation once the request is allowed, or at once when the check
    /// needs the body; a denied request is answered without its body. The field is not forwarded.
    @Test func expectContinueIsAnsweredByTheProxy() async throws {
        let harness = try await ProxyHarness(authorization: ProxyHarness.deny(paths: ["/private"]))
        defer { harness.stop() }
        let body = try harness.directory.write("body.bin", String(repeating: "b", count: 3000))
        let waiting = ["-H", "Expect: 100-continue", "--expect100-timeout", "30", "-T", body]
        let allowed = try await curlExit(waiting + [harness.httpURL + "/upload"])
        #expect(allowed.status == 200, "\(allowed)")
        #expect(allowed.headers.contains("100 Continue"))
        let denied = try await curlExit(waiting + [harness.httpURL + "/private"])
        #expect(denied.status == 403, "\(denied)")
        #expect(!denied.headers.contains("100 Continue"))
        let seen = harness.upstreamRequests()
        #expect(seen.map { $0["path"] as? String } == ["/upload"])
        #expect(seen.first?["body_bytes"] as? Int == 3000)
        #expect((seen.first?["headers"] as? [String: [String]])?["expect"] == nil)

        // When the check carries the body, the body is wanted before the check.
        try await harness.restartProxy(["--check-body-bytes", "4096"])
        let checked = try await curlExit(waiting + [harness.httpURL + "/upload-checked"])
        #expect(checked.status == 200, "\(checked)")
        #expect(harness.upstreamRequests().last?["body_bytes"] as? Int == 3000)
    }

    @Test func keysFromAJWKSURIAreFetchedThroughTheNetworkLayer() async throws {
        let record = NSTemporaryDirectory() + "/warden-jwks-\(UUID().uuidString).jsonl"
        let keys = try await UpstreamProcess(record: record, arguments: ["--body", SeedToken.jwks])
        defer {
            keys.stop()
            try? FileManager.default.removeItem(atPath: record)
        }
        let harness = try await ProxyHarness(authentication: """
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: details-jwt, namespace: default}
            spec:
              selector: {matchLabels: {app: details}}
              jwtRules:
              - issuer: testing@secure.istio.io
                jwksUri: http://127.0.0.1:\(keys.port)/jwks.json
            """)
        defer { harness.stop() }
        #expect(try await curlExit(["-H", "Authorization: Bearer " + SeedToken.token, harness.httpURL + "/x"]).status == 200)
        #expect(try await curlExit(["-H", "Authorization: Bearer " + SeedToken.token + "x", harness.httpURL + "/x"]).status == 401)
    }

    @Test(arguments: ["in-place", "grpc-swift"])
    func failsClosedWhenTheServerIsStoppedOrSlow(client: String) async throws {
        let harness = try await ProxyHarness(proxyArguments: ["--check-timeout", "300ms", "--authz-client", client])
        defer { harness.stop() }
        #expect(try await curlExit([harness.httpURL + "/before"]).status == 200)
        // Slow: the server process is frozen, the check times out.
        harness.server!.signal(SIGSTOP)
        let slow = try await curlExit([harness.httpURL + "/slow"])
        harness.server!.signal(SIGCONT)
        #expect(slow.status == 403)
        // Stopped: the connection is refused.
        harness.server!.launched.kill9()
        let stopped = try await curlExit([harness.httpURL + "/stopped"])
        #expect(stopped.status == 403)
        #expect(harness.upstreamRequests().map { $0["path"] as? String } == ["/before"])
        let lines = try await harness.accessLog(atLeast: 3)
        #expect(lines.compactMap { $0["check_failure"] as? String } == ["timeout", "unavailable"])
        let metrics = try await curlExit(["http://127.0.0.1:\(harness.proxy.adminPort!)/metrics"])
        #expect(metrics.body.contains(#"warden_proxy_check_failures_total{kind="timeout"} 1"#))
        #expect(metrics.body.contains(#"warden_proxy_check_failures_total{kind="unavailable"} 1"#))
        // The server comes back on its address: the client reconnects (with backoff) and requests pass again.
        let restarted = try await LaunchedProcess(
            warden: "warden serve", [
                "serve", "--grpc-address", "127.0.0.1:\(harness.server!.grpcPort)", "--http-address", "127.0.0.1:0",
                "--admin-address", "off",
                "--policies", harness.directory.path + "/server-policies", "--decision-log", "off",
            ], readyMarkers: ["gRPC listening on "])
        defer { restarted.stop() }
        try await waitUntil { try await curlExit([harness.httpURL + "/again"]).status == 200 }
    }

    @Test func checksMoveToANewConnectionWhenTheServerClosesAnIdleOne() async throws {
        // The server ends a connection that has had no stream for 1.5 s: a GOAWAY, then the close. The proxy's next
        // checks go over a new connection, and none fails on the way.
        let harness = try await ProxyHarness(serverArguments: ["--grpc-idle-timeout", "1500ms"])
        defer { harness.stop() }
        #expect(try await curlExit([harness.httpURL + "/first"]).status == 200)
        let metrics = "http://127.0.0.1:\(harness.server!.adminPort)/metrics"
        try await waitUntil {
            let body = try await curlExit([metrics]).body
            return body.contains(#"warden_grpc_limit_events_total{limit="idle_timeout"}"#)
                && !body.contains(#"warden_grpc_limit_events_total{limit="idle_timeout"} 0"#)
        }
        // A connection closed idle is not made again until a check needs it: once both loops' first connections
        // have closed, the server closes no more while no request comes.
        func idleCloses() async throws -> String? {
            try await curlExit([metrics]).body.split(separator: "\n")
                .first { $0.hasPrefix(#"warden_grpc_limit_events_total{limit="idle_timeout"}"#) }.map(String.init)
        }
        try await Task.sleep(for: .seconds(2))
        let settled = try await idleCloses()
        try await Task.sleep(for: .seconds(4))
        #expect(try await idleCloses() == settled)
        for index in 0..<5 { #expect(try await curlExit([harness.httpURL + "/after/\(index)"]).status == 200) }
        let lines = try await harness.accessLog(atLeast: 6)
        #expect(lines.compactMap { $0["check_failure"] as? String } == [])
        #expect(lines.compactMap { $0["status"] as? Int } == Array(repeating: 200, count: 6))
    }

    @Test func anotherFailureStatusCanBeChosen() async throws {
        // Nothing listens where the server should be.
        let harness = try await ProxyHarness(
            proxyArguments: ["--failure-status", "503", "--authz", "127.0.0.1:\(try FreePort.allocate())"], startServer: false)
        defer { harness.stop() }
        #expect(try await curlExit([harness.httpURL + "/x"]).status == 503)
    }

    @Test func upstreamDownIs503AndSlowIs504() async throws {
        let harness = try await ProxyHarness(proxyArguments: ["--upstream-timeout", "500ms"], upstreamArguments: ["--delay", "2s"])
        defer { harness.stop() }
        #expect(try await curlExit([harness.httpURL + "/slow"]).status == 504)
        harness.upstream.stop()
        #expect(try await curlExit([harness.httpURL + "/down"]).status == 503)
    }

    @Test func aConfigFileGivesTheSameSettings() async throws {
        let harness = try await ProxyHarness()
        defer { harness.stop() }
        try harness.directory.write("proxy.yaml", """
            listen: 127.0.0.1:0
            upstream: 127.0.0.1:\(harness.upstream.port)
            authz: 127.0.0.1:\(harness.server!.grpcPort)
            cert: details/cert-chain.pem
            key: details/key.pem
            trust_bundle: details/root-cert.pem
            policies: proxy-policies
            labels: {app: details, version: v1}
            ports: [\(harness.upstream.port)]
            access_log: "off"
            check_timeout: 500ms
            check_body_bytes: 16
            check_partial_body: false
            """)
        let proxy = try await ProxyProcess(arguments: ["--config", harness.directory.path + "/proxy.yaml", "--log-level", "debug"])
        defer { proxy.stop() }
        #expect(try await curlExit(["http://127.0.0.1:\(proxy.port)/from-config"]).status == 200)
        #expect(try await curlExit(["-d", String(repeating: "x", count: 17), "http://127.0.0.1:\(proxy.port)/body"]).status == 413)
        #expect(proxy.launched.stderr.contains("workload default {app=details,version=v1}"))
        // A typo is an error with its place.
        let bad = try harness.directory.write("bad.yaml", "listen: 127.0.0.1:0\ncheck_timout: 1s\n")
        let refused = try await ProcessRunner.warden(["proxy", "--config", bad])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("\(bad):2:1: check_timout: unknown field `check_timout`; did you mean `check_timeout`?"))
    }

    static let seedRequestAuthentication = """
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: details-jwt, namespace: default}
        spec:
          selector: {matchLabels: {app: details}}
          jwtRules:
          - issuer: testing@secure.istio.io
            jwks: '\(SeedToken.jwks.trimmingCharacters(in: .whitespacesAndNewlines))'
        """
}

/// Polls `condition` (every 100 ms, at most 10 s).
func waitUntil(_ condition: () async throws -> Bool) async throws {
    for _ in 0..<100 {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("condition not met within 10 s")
}
