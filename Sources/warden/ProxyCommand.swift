import ArgumentParser
import Foundation
import FrontProxy
import Identity
import Logging
import Networking
import PolicyCore

/// `warden proxy`: the policy enforcement point in front of a workload (or, with `--outbound`, beside a client).
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Enforce in front of a workload: mTLS (PeerAuthentication), JWTs (RequestAuthentication), a check per request.",
        discussion: """
            Inbound (the default): accepts connections on --listen; PeerAuthentication for the workload \
            (--namespace, --labels, the upstream's port) decides whether they must (STRICT), may (PERMISSIVE) or \
            must not (DISABLE) be mutual TLS; RequestAuthentication verifies JWTs (401 for an invalid one); every \
            request is checked with the authorization server at --authz over Envoy's ext_authz gRPC API and, when \
            allowed, forwarded to --upstream with x-forwarded-client-cert. Any failure of the check fails closed \
            with --failure-status.

            Outbound (--outbound): accepts the local application's plaintext HTTP on --listen and forwards it over \
            mutual TLS with the workload's own certificate to --upstream (another workload's inbound proxy), \
            whose certificate must name --expect-peer (secure naming; 503 otherwise).

            --policies DIR holds PeerAuthentication and RequestAuthentication documents; they are reloaded when a \
            file changes or on SIGHUP, and a broken file keeps the last good set. Certificates are reloaded when \
            their files change. SIGTERM or SIGINT drains in-flight requests, then stops.
            """
    )

    @Option(help: "Listen address, host:port (default 127.0.0.1:15006).")
    var listen: String?
    @Option(help: "The workload (inbound) or the next proxy (outbound), host:port (default 127.0.0.1:8080).")
    var upstream: String?
    @Option(help: "The authorization server's gRPC address, host:port (warden serve's --grpc-address).")
    var authz: String?
    @Option(help: "The workload's certificate chain (PEM, leaf first).")
    var cert: String?
    @Option(help: "The certificate's private key (PEM).")
    var key: String?
    @Option(name: .customLong("trust-bundle"), help: "The roots peers' chains must lead to (PEM).")
    var trustBundle: String?
    @Option(help: "A directory of PeerAuthentication and RequestAuthentication documents.")
    var policies: String?
    @Option(help: "The workload's namespace (default default).")
    var namespace: String?
    @Option(help: "The workload's labels, key=value,key=value.")
    var labels: String?
    @Option(help: "The workload's declared ports, comma-separated (default: the upstream's port).")
    var ports: String?
    @Option(name: .customLong("trust-domain"), help: "The mesh's trust domain (default cluster.local).")
    var trustDomain: String?
    @Option(name: .customLong("root-namespace"), help: "The mesh root namespace (default istio-system).")
    var rootNamespace: String?
    @Option(help: "Admin listen address for /metrics and /ready, host:port.")
    var admin: String?
    @Option(name: .customLong("check-timeout"), help: "Deadline of each check, as 200ms or 1s (default 200ms).")
    var checkTimeout: String?
    @Option(name: .customLong("authz-client"), help: "in-place (default) or grpc-swift: how checks are sent.")
    var authzClient: String?
    @Option(name: .customLong("failure-status"), help: "The status of a request whose check failed (default 403).")
    var failureStatus: Int?
    @Flag(help: "Outbound mode: plaintext in, mutual TLS out.")
    var outbound = false
    @Option(name: .customLong("expect-peer"), help: "Outbound: the SPIFFE ID the upstream's certificate must name.")
    var expectPeer: String?
    @Option(name: .customLong("access-log"), help: "Access log destination: stdout (default), off, or a file path.")
    var accessLog: String?
    @Option(name: .customLong("log-level"), help: "debug, info, warning or error.")
    var logLevel: String?
    @Option(name: .customLong("max-connections"), help: "Connections accepted at once (default 10000).")
    var maxConnections: Int?
    @Option(name: .customLong("max-header-bytes"), help: "Largest request header section (default 61440); 431 beyond.")
    var maxHeaderBytes: Int?
    @Option(name: .customLong("max-request-body"), help: "Largest request body in bytes (default 67108864); 413 beyond.")
    var maxRequestBody: Int?
    @Option(name: .customLong("upstream-timeout"), help: "Time for the upstream's response head (default 15s); 504 beyond.")
    var upstreamTimeout: String?
    @Option(name: .customLong("idle-timeout"), help: "Close connections idle this long (default 300s).")
    var idleTimeout: String?
    @Option(name: .customLong("header-timeout"), help: "Time for a request head once it began, and for a handshake (default 10s).")
    var headerTimeout: String?
    @Option(name: .customLong("drain-timeout"), help: "Time in-flight requests get after SIGTERM (default 10s).")
    var drainTimeout: String?
    @Option(name: .customLong("watch-interval-ms"), help: "How often to look for changed policies and certificates; 0 disables.")
    var watchIntervalMs: Int?
    @Option(help: "Run this many event-loop threads, Swift tasks on them too (default: one loop per core).")
    var threads: Int?

    func run() async throws {
        let configuration = try makeConfiguration()
        if let threads {
            EventLoops.runTasksOnEventLoops(threads: threads)
        } else {
            EventLoops.sizeToUsableCores()
        }
        let proxy: FrontProxy
        do {
            proxy = try FrontProxy(configuration: configuration)
        } catch {
            throw usage("cannot start: \(error)")
        }
        do {
            try await proxy.run()
        } catch let error as FrontProxy.StartError {
            var renderer = DiagnosticRenderer()
            writeError("warden: error: \(error)")
            if !error.diagnostics.isEmpty { writeError(renderer.render(error.diagnostics)) }
            throw ExitCode(Warden.Status.unusable)
        } catch {
            writeError("warden: error: \(error)")
            throw ExitCode(Warden.Status.failed)
        }
    }

    func makeConfiguration() throws -> ProxyConfiguration {
        var c = ProxyConfiguration()
        func address(_ text: String?, _ flag: String) throws -> ProxyConfiguration.Address? {
            guard let text else { return nil }
            guard let parsed = ProxyConfiguration.Address(parsing: text) else {
                throw ValidationError("--\(flag) must be host:port, found `\(text)`")
            }
            return parsed
        }
        func duration(_ text: String?, _ flag: String) throws -> Duration? {
            guard let text else { return nil }
            guard let parsed = parseDuration(text), parsed > .zero else {
                throw ValidationError("--\(flag) must be a duration such as 200ms or 5s, found `\(text)`")
            }
            return parsed
        }
        if let listen = try address(listen, "listen") { c.listen = listen }
        if let upstream = try address(upstream, "upstream") { c.upstream = upstream }
        c.authorization = try address(authz, "authz")
        c.admin = try address(admin, "admin")
        c.certificateChain = cert
        c.privateKey = key
        c.trustBundle = trustBundle
        c.policies = policies
        if let namespace {
            guard isDNSLabel(namespace) else { throw ValidationError("--namespace `\(namespace)` is not a DNS-1123 label") }
            c.namespace = namespace
        }
        if let labels { c.labels = try Self.labels(labels) }
        if let ports {
            c.ports = try ports.split(separator: ",").map { text in
                guard let port = Int(text.trimmingCharacters(in: .whitespaces)), (1...65535).contains(port) else {
                    throw ValidationError("--ports must be comma-separated ports, found `\(text)`")
                }
                return port
            }
        }
        if let trustDomain { c.trustDomain = trustDomain }
        if let rootNamespace { c.rootNamespace = rootNamespace }
        if let timeout = try duration(checkTimeout, "check-timeout") { c.checkTimeout = timeout }
        if let failureStatus { c.failureStatus = failureStatus }
        if let authzClient {
            guard let kind = AuthorizationClientKind(rawValue: authzClient) else {
                throw ValidationError("--authz-client must be in-place or grpc-swift")
            }
            c.authorizationClient = kind
        }
        c.outbound = outbound
        if let expectPeer {
            do {
                c.expectedPeer = try SPIFFEID(parsing: expectPeer)
            } catch {
                throw ValidationError("--expect-peer: \(error.message)")
            }
        }
        switch accessLog {
        case nil, "stdout"?: c.accessLog = .standardOutput
        case "off"?: c.accessLog = nil
        case let path?: c.accessLog = .file(path)
        }
        if let logLevel {
            guard let level = Logger.Level(rawValue: logLevel == "warning" ? "warning" : logLevel) else {
                throw ValidationError("--log-level must be one of debug, info, warning, error")
            }
            c.logLevel = level
        }
        if let maxConnections {
            guard maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
            c.maximumConnections = maxConnections
        }
        if let maxHeaderBytes {
            guard maxHeaderBytes >= 1024 else { throw ValidationError("--max-header-bytes must be at least 1024") }
            c.limits.maximumHeaderBytes = maxHeaderBytes
        }
        if let maxRequestBody {
            guard maxRequestBody >= 0 else { throw ValidationError("--max-request-body must not be negative") }
            c.maximumRequestBodyBytes = maxRequestBody
        }
        if let timeout = try duration(upstreamTimeout, "upstream-timeout") { c.upstreamTimeout = timeout }
        if let timeout = try duration(idleTimeout, "idle-timeout") { c.limits.idleTimeout = timeout }
        if let timeout = try duration(headerTimeout, "header-timeout") {
            c.limits.headerTimeout = timeout
            c.limits.handshakeTimeout = timeout
        }
        if let timeout = try duration(drainTimeout, "drain-timeout") { c.drainTimeout = timeout }
        if let watchIntervalMs {
            guard watchIntervalMs >= 0 else { throw ValidationError("--watch-interval-ms must not be negative") }
            c.watchInterval = watchIntervalMs == 0 ? nil : .milliseconds(watchIntervalMs)
        }
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be between 1 and 256") }
        let problems = c.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "; ")) }
        return c
    }

    /// `app=details,version=v1`.
    static func labels(_ text: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ValidationError("--labels must be key=value pairs joined by commas, found `\(pair)`")
            }
            out[String(parts[0]).trimmingCharacters(in: .whitespaces)] = String(parts[1]).trimmingCharacters(in: .whitespaces)
        }
        return out
    }
}
