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
        #expect(config.admin.listener == .init(host: "127.0.0.1", port: 8282))
        #expect(config.admin.authentication == .off && config.admin.authorizationPolicy == nil)
        #expect(!config.admin.policyWrites, "policy writes are off unless turned on")
        #expect(config.startupChecks().errors.isEmpty)
        #expect(config.startupChecks().warnings.isEmpty)
    }

    @Test func readsTheAdminListenerAndTheAllowLists() throws {
        let (config, diagnostics) = ServerConfiguration.decode("""
            grpc:
              tls: {certificate: c.pem, key: k.pem, client_ca: ca.pem}
              allowed_clients: [spiffe://cluster.local/ns/istio-system/sa/ingress]
            admin:
              address: 10.0.0.1:9000
              tls: {certificate: c.pem, key: k.pem, client_ca: ops-ca.pem}
              authentication: tls
              authorization_policy: authz.rego
              policy_writes: true
            """, file: "/etc/warden/config.yaml")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let c = try #require(config)
        #expect(c.grpc.tls?.clientCA == "/etc/warden/ca.pem")
        #expect(c.grpc.allowedClients.map(\.uri) == ["spiffe://cluster.local/ns/istio-system/sa/ingress"])
        #expect(c.http.allowedClients.isEmpty)
        #expect(c.admin.listener?.address == "10.0.0.1:9000")
        #expect(c.admin.listener?.tls?.clientCA == "/etc/warden/ops-ca.pem")
        #expect(c.admin.authentication == .tls)
        #expect(c.admin.authorizationPolicy == "/etc/warden/authz.rego")
        #expect(c.admin.policyWrites)
        #expect(c.startupChecks().errors.isEmpty, "\(c.startupChecks().errors)")

        let (off, _) = ServerConfiguration.decode("admin: {address: off, authentication: off}", file: "c.yaml")
        #expect(off?.admin.listener == nil)
        #expect(off?.admin.authentication == .off)
        let (bad, problems) = ServerConfiguration.decode(
            "grpc: {allowed_clients: [cluster.local/ns/a/sa/b]}\nadmin: {authentication: basic}", file: "c.yaml")
        #expect(bad == nil)
        let text = problems.map(\.description)
        #expect(text.contains { $0.hasPrefix("c.yaml:1:26: grpc.allowed_clients[0]: expected a SPIFFE ID") }, "\(text)")
        #expect(text.contains { $0.contains("admin.authentication: expected `off`, `token` or `tls`, found `basic`") }, "\(text)")
    }

    @Test func startupChecksRefuseWhatWouldExposeTheServer() throws {
        func errors(_ change: (inout ServerConfiguration) throws -> Void) rethrows -> [String] {
            var config = ServerConfiguration()
            try change(&config)
            return config.startupChecks().errors.map(\.description)
        }
        let open = errors {
            $0.admin.listener?.host = "0.0.0.0"
            $0.admin.policyWrites = true
        }
        #expect(open.count == 1 && open[0].hasPrefix("admin.policy_writes: policy writes without authentication"), "\(open)")
        #expect(errors { $0.admin.authentication = .token }.first?.contains("needs an authorization policy") == true)
        #expect(errors { $0.admin.authentication = .tls }.first?.contains("`client_ca`") == true)
        #expect(errors { $0.verifiedClaimsHeader = "x-warden-verified-claims" }.first?.contains("allow-list") == true)
        let listed = try errors { $0.http.allowedClients = [try SPIFFEID(parsing: "spiffe://cluster.local/ns/a/sa/b")] }
        #expect(listed.first?.hasPrefix("http.allowed_clients: an allow-list needs `http.tls` with `client_ca`") == true, "\(listed)")
        let inside = errors {
            $0.policyPaths = ["/srv/policies"]
            $0.admin.authorizationPolicy = "/srv/policies/team/authz.rego"
        }
        #expect(inside.first?.contains("inside the served policies") == true, "\(inside)")

        var plaintextTokens = ServerConfiguration()
        plaintextTokens.admin.listener?.host = "10.0.0.1"
        plaintextTokens.admin.authentication = .token
        plaintextTokens.admin.authorizationPolicy = "/etc/warden/authz.rego"
        #expect(plaintextTokens.startupChecks().errors.isEmpty)
        #expect(plaintextTokens.startupChecks().warnings.contains { $0.contains("in the clear") })

        var loopback = ServerConfiguration()
        loopback.admin.policyWrites = true
        let checks = loopback.startupChecks()
        #expect(checks.errors.isEmpty)
        #expect(checks.warnings.first?.contains("does not authenticate") == true)
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

    @Test func readsTheGRPCLimitsAndRefusesOnesOutOfRange() throws {
        #expect(ServerConfiguration().grpcLimits == GRPCLimits())
        let (config, diagnostics) = ServerConfiguration.decode("""
            grpc: {max_connection_buffer_bytes: 1048576, max_concurrent_streams: 8, request_timeout: 1500ms,
                   idle_timeout: 30s, max_connections: 50}
            """, file: "c.yaml")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let limits = try #require(config?.grpcLimits)
        #expect(limits.maxConnectionBufferBytes == 1 << 20 && limits.maxConcurrentStreams == 8)
        #expect(limits.requestTimeout == .milliseconds(1500) && limits.idleTimeout == .seconds(30))
        #expect(limits.maxConnections == 50)
        let options = limits.options(host: "h", port: 1, tls: nil, maxMessageBytes: 4096, observer: NoObserver())
        #expect(options.maxConnectionBufferBytes == 1 << 20 && options.maxConcurrentStreams == 8)
        #expect(options.requestTimeout == .milliseconds(1500) && options.idleTimeout == .seconds(30))
        #expect(options.maxConnections == 50 && options.maxMessageBytes == 4096)

        let (withHTTP, none) = ServerConfiguration.decode(
            "http: {request_timeout: 2s, idle_timeout: 1m, max_connections: 7}", file: "c.yaml")
        #expect(none.isEmpty, "\(none)")
        #expect(withHTTP?.httpLimits.requestTimeout == .seconds(2) && withHTTP?.httpLimits.idleTimeout == .seconds(60))
        #expect(withHTTP?.httpLimits.maxConnections == 7)

        let (refused, problems) = ServerConfiguration.decode("grpc: {max_concurrent_streams: 0, idle_timeout: 5, request_timeout: 2d}", file: "c.yaml")
        #expect(refused == nil)
        let text = problems.map(\.description)
        #expect(text.contains {
            $0.hasPrefix("c.yaml:1:32: grpc.max_concurrent_streams: must be an integer from 1 to 1000000, found `0`")
        }, "\(text)")
        #expect(text.contains { $0.contains("grpc.idle_timeout:") && $0.contains("expected a duration such as 10s") }, "\(text)")
        #expect(text.contains {
            $0.contains("grpc.request_timeout: must be a duration from 1ms to 86400s such as 10s or 500ms, found `2d`")
        }, "\(text)")
    }

    struct NoObserver: ListenerLimitObserver {
        func limitEnforced(_ limit: ListenerLimit) {}
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
