import ExtAuthz
import Foundation
import Networking
import NIOCore
import PolicyCore
import Testing
@testable import WardenServer

@Suite struct ServerConfigurationTests {
    @Test func defaults() {
        let config = ServerConfiguration()
        #expect(config.grpc.host == "127.0.0.1" && config.grpc.port == 9191)
        #expect(config.http.host == "127.0.0.1" && config.http.port == 8181)
        #expect(config.policyPaths == ["policies"])
        #expect(config.verifiedClaimsHeader == nil)
        #expect(config.threads == nil, "checks run on Swift's thread pool unless told otherwise")
    }

    @Test func readsEverySection() throws {
        let (config, diagnostics) = ServerConfiguration.decode("""
            grpc: {address: "0.0.0.0:9000", max_message_bytes: 65536, tls: {certificate: c.pem, key: k.pem}}
            http: {address: ":8000", ext_authz_prefix: /authz, max_body_bytes: 2048}
            policies: {paths: [p], root_namespace: mesh, default_namespace: apps, watch_interval_ms: 0}
            request: {trusted_proxies: 2, merge_slashes: false, verified_claims_header: true,
                      destination_namespace: shop, destination_labels: {app: cart}}
            decision_log: decisions.jsonl
            log_level: warning
            threads: 2
            """, file: "/etc/warden/config.yaml")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let c = try #require(config)
        #expect(c.grpc.host == "0.0.0.0" && c.grpc.port == 9000)
        #expect(c.grpc.tls == .init(certificate: "/etc/warden/c.pem", key: "/etc/warden/k.pem"))
        #expect(c.maxGRPCMessageBytes == 65536)
        #expect(c.http.host == "127.0.0.1" && c.http.port == 8000)
        #expect(c.extAuthzPrefix == "/authz")
        #expect(c.maxHTTPBodyBytes == 2048)
        #expect(c.policyPaths == ["/etc/warden/p"])
        #expect(c.rootNamespace == "mesh" && c.defaultNamespace == "apps")
        #expect(c.watchInterval == nil)
        #expect(c.trustedProxies == 2 && !c.pathNormalizer.mergeSlashes)
        #expect(c.verifiedClaimsHeader == "x-warden-verified-claims")
        #expect(c.destinationNamespace == "shop" && c.destinationLabels == ["app": "cart"])
        #expect(c.decisionLog == .file("/etc/warden/decisions.jsonl"))
        #expect(c.logLevel == .warning)
        #expect(c.threads == 2)
    }

    @Test func reportsEveryProblemWithItsPlace() {
        let (config, diagnostics) = ServerConfiguration.decode("""
            grpc: {adress: "1:2"}
            http: {address: nowhere}
            request: {trusted_proxies: -1}
            log_level: loud
            threads: 0
            """, file: "c.yaml")
        #expect(config == nil)
        let text = diagnostics.map(\.description)
        #expect(text.contains { $0.hasPrefix("c.yaml:1:8: grpc.adress: unknown field `adress`; did you mean `address`?") }, "\(text)")
        #expect(text.contains { $0.contains("http.address: expected `host:port`, found `nowhere`") })
        #expect(text.contains { $0.contains("request.trusted_proxies: must be from 0 to 64") })
        #expect(text.contains { $0.hasPrefix("c.yaml:4:12:") && $0.contains("unknown log level `loud`") })
        #expect(text.contains { $0.hasPrefix("c.yaml:5:10: threads: must be from 1 to 256") }, "\(text)")
    }
}

@Suite struct DecisionLogTests {
    @Test func entriesKeepFlatAttributesWithCredentialsMasked() throws {
        var request = AuthzRequest()
        request.http.headers = Headers(["Authorization": "Bearer secret", "cookie": "s=1", "x-ok": "fine"])
        request.http.path = "/admin"
        request.source.principal = "cluster.local/ns/a/sa/b"
        let match = RuleMatch(policy: PolicyID(namespace: "backend", name: "deny-admin"), action: .deny, rule: 0)
        let response = DecisionResponse(
            decision: .deny, reason: .denyMatched, decidedBy: match,
            dryRun: [DryRunOutcome(action: .allow, decision: .allow, match: nil)])
        let entry = DecisionLog.Entry(
            decisionID: "d-1", time: Date(timeIntervalSince1970: 1_700_000_000.25), request: request, response: response,
            revision: 3, duration: .microseconds(42), transport: "grpc")
        let json = entry.json
        #expect(json["decision_id"] == "d-1")
        #expect(json["time"] == "2023-11-14T22:13:20.250Z")
        #expect(json["attributes"]?["request.headers"]?["authorization"] == "<masked>")
        #expect(json["attributes"]?["request.headers"]?["cookie"] == "<masked>")
        #expect(json["attributes"]?["request.headers"]?["x-ok"] == "fine")
        #expect(json["attributes"]?["request.path"] == "/admin")
        #expect(json["decision"]?["decision"] == "deny")
        #expect(json["decision"]?["dry_run"]?.arrayValue?.count == 1)
        #expect(json["policy"] == "backend/deny-admin")
        #expect(json["audit"] == false)
        #expect(json["revision"] == 3)
        #expect(json["duration_ns"] == 42000)
        // `warden replay` reads the attributes back.
        let replayed = try AuthzRequest(attributes: try #require(json["attributes"]))
        #expect(replayed.http.path == "/admin")
    }
}
