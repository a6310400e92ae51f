import Foundation
import Identity
import Testing
import WardenTesting

/// The pieces of a proxied workload for end-to-end tests, each a real `warden` process on 127.0.0.1: the
/// authorization server on a policies directory, a recording upstream, and `warden proxy` in front of it, with
/// certificates issued by a test CA (`CertificateFactory`).
final class ProxyHarness: @unchecked Sendable {
    let directory: TemporaryDirectory
    let ca: CertificateFactory
    let server: ServerProcess?
    let upstream: UpstreamProcess
    private(set) var proxy: ProxyProcess!

    /// Workload files of `details` (the proxy's own) and of the `sleep` client.
    let details: WorkloadPaths
    let sleep: WorkloadPaths

    static let detailsID = "spiffe://cluster.local/ns/default/sa/details"
    static let sleepID = "spiffe://cluster.local/ns/default/sa/sleep"

    /// The proxy's upstream when not the recording one (a test's own server).
    let upstreamPort: Int?

    /// `authorization` are AuthorizationPolicy documents for the server (allow-all when empty), `authentication` the
    /// proxy's PeerAuthentication/RequestAuthentication documents; `proxyArguments` are added to the proxy's, and
    /// `serverArguments` to the server's. With `allowedClients`, the server's gRPC listener takes mutual TLS (a
    /// certificate of its own from the test CA) and answers only those SPIFFE IDs.
    init(
        authorization: String = allowAll, authentication: String = "", proxyArguments: [String] = [],
        startServer: Bool = true, upstreamArguments: [String] = [], allowedClients: [String]? = nil,
        serverArguments: [String] = [], upstreamPort: Int? = nil
    ) async throws {
        self.upstreamPort = upstreamPort
        directory = try TemporaryDirectory(prefix: "warden-proxy")
        ca = try CertificateFactory()
        details = try ca.leaf(Self.detailsID, dnsNames: ["details", "details.default.svc.cluster.local"]).write(to: directory.path + "/details")
        sleep = try ca.leaf(Self.sleepID).write(to: directory.path + "/sleep")
        try directory.write("server-policies/policies.yaml", authorization)
        try directory.write("proxy-policies/authn.yaml", authentication)
        var serverTLS: [String] = []
        if let allowedClients {
            let warden = try ca.leaf("spiffe://cluster.local/ns/warden/sa/warden").write(to: directory.path + "/warden")
            serverTLS = ["--grpc-tls-cert", warden.certificateChain, "--grpc-tls-key", warden.key,
                         "--grpc-tls-client-ca", warden.rootCertificate] + allowedClients.flatMap { ["--allowed-clients", $0] }
        }
        server = startServer
            ? try await ServerProcess([
                "--policies", directory.path + "/server-policies", "--decision-log", "off", "--watch-interval-ms", "100",
            ] + serverTLS + serverArguments) : nil
        upstream = try await UpstreamProcess(record: directory.path + "/upstream.jsonl", arguments: upstreamArguments)
        proxy = try await ProxyProcess(arguments: self.proxyArguments(extra: proxyArguments))
    }

    /// The proxy's arguments for this harness.
    func proxyArguments(extra: [String]) -> [String] {
        var arguments = [
            "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:\(upstreamPort ?? upstream.port)",
            "--cert", details.certificateChain, "--key", details.key, "--trust-bundle", details.rootCertificate,
            "--policies", directory.path + "/proxy-policies", "--namespace", "default", "--labels", "app=details,version=v1",
            "--admin", "127.0.0.1:0", "--access-log", directory.path + "/access.jsonl", "--watch-interval-ms", "100",
        ]
        if let server, !extra.contains("--authz") { arguments += ["--authz", "127.0.0.1:\(server.grpcPort)"] }
        // Checks fail closed at their deadline; the default 200 ms is missed on a loaded machine, which would turn
        // requests the tests expect through into 403s. Tests of the timeout itself set their own.
        if !extra.contains("--check-timeout") { arguments += ["--check-timeout", "2s"] }
        return arguments + extra
    }

    /// Starts the proxy again with other arguments (the same upstream, server and certificates).
    func restartProxy(_ extra: [String]) async throws {
        proxy.stop()
        proxy = try await ProxyProcess(arguments: proxyArguments(extra: extra))
    }

    var httpURL: String { "http://127.0.0.1:\(proxy.port)" }
    var httpsURL: String { "https://127.0.0.1:\(proxy.port)" }

    /// curl's TLS arguments as `sleep` (with its certificate), trusting the mesh root.
    var asSleep: [String] {
        ["--cacert", sleep.rootCertificate, "--cert", sleep.certificateChain, "--key", sleep.key, "--resolve",
         "details:\(proxy.port):127.0.0.1"]
    }

    /// The mesh root only: TLS without a client certificate.
    var withoutClientCertificate: [String] {
        ["--cacert", sleep.rootCertificate, "--resolve", "details:\(proxy.port):127.0.0.1"]
    }

    var detailsURL: String { "https://details:\(proxy.port)" }

    /// The requests the upstream has seen, in order.
    func upstreamRequests() -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: directory.path + "/upstream.jsonl", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// The access log's lines, once the proxy has written them (it buffers up to 200 ms).
    func accessLog(atLeast count: Int) async throws -> [[String: Any]] {
        for _ in 0..<60 {
            let text = (try? String(contentsOfFile: directory.path + "/access.jsonl", encoding: .utf8)) ?? ""
            let lines = text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            if lines.count >= count { return lines }
            try await Task.sleep(for: .milliseconds(50))
        }
        return []
    }

    /// Writes the proxy's authentication policies and waits until the proxy logged the reload.
    func setAuthentication(_ text: String) async throws {
        let before = proxy.launched.stderr.components(separatedBy: "policies reloaded").count
        try directory.write("proxy-policies/authn.yaml", text)
        for _ in 0..<100 {
            if proxy.launched.stderr.components(separatedBy: "policies reloaded").count > before { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the proxy did not reload its policies:\n\(proxy.launched.stderr)")
    }

    func stop() {
        proxy?.stop()
        upstream.stop()
        server?.stop()
    }

    static let allowAll = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: allow-all, namespace: default}
        spec: {rules: [{}]}
        """

    /// A DENY on these paths for details (everything else allowed: no ALLOW policy applies).
    static func deny(paths: [String]) -> String {
        """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-paths, namespace: default}
        spec:
          selector: {matchLabels: {app: details}}
          action: DENY
          rules: [{to: [{operation: {paths: [\(paths.map { "\"\($0)\"" }.joined(separator: ", "))]}}]}]
        """
    }

    static func peerAuthentication(_ mode: String, name: String = "default", selector: String? = nil, ports: String = "") -> String {
        var text = """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: \(name), namespace: default}
            spec:
              mtls: {mode: \(mode)}

            """
        if let selector { text += "  selector: {matchLabels: {\(selector)}}\n" }
        if !ports.isEmpty { text += "  portLevelMtls: {\(ports)}\n" }
        return text
    }
}

/// `warden upstream`, recording what it receives.
final class UpstreamProcess: Sendable {
    let launched: LaunchedProcess
    let port: Int

    init(record: String, arguments: [String] = []) async throws {
        launched = try await LaunchedProcess(
            warden: "warden upstream", ["upstream", "--listen", "127.0.0.1:0", "--record", record] + arguments,
            readyMarkers: ["upstream listening on "])
        port = launched.port(after: "upstream listening on ")!
    }

    func stop() { launched.stop() }
}

/// `warden proxy`, ready once it logged its listeners.
final class ProxyProcess: Sendable {
    let launched: LaunchedProcess
    let port: Int
    let adminPort: Int?

    init(arguments: [String]) async throws {
        let markers = arguments.contains("--admin") ? [") listening on ", "admin listening on "] : [") listening on "]
        launched = try await LaunchedProcess(warden: "warden proxy", ["proxy"] + arguments, readyMarkers: markers)
        port = launched.port(after: ") listening on ")!
        adminPort = launched.port(after: "admin listening on ")
    }

    func stop() { launched.stop() }
}

/// curl's outcome, with its exit status (56: the connection was reset, as a plaintext client sees STRICT).
struct CurlResult {
    var exitStatus: Int32
    var status: Int
    var body: String
    var headers: String
}

/// Runs curl and returns its exit status too.
func curlExit(_ arguments: [String]) async throws -> CurlResult {
    let headersFile = NSTemporaryDirectory() + "/warden-curl-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: headersFile) }
    let out = try await ProcessRunner.run(
        try tool("curl", package: "curl"),
        ["-sS", "-o", "-", "-D", headersFile, "-w", "\n%{http_code}", "--max-time", "20"] + arguments, timeout: .seconds(30))
    var lines = out.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    let status = Int(lines.popLast() ?? "") ?? 0
    let headers = (try? String(contentsOfFile: headersFile, encoding: .utf8)) ?? ""
    return CurlResult(exitStatus: out.status, status: status, body: lines.joined(separator: "\n"), headers: headers)
}
