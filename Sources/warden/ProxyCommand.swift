import ArgumentParser
import Documents
import ExtAuthz
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

    @Option(help: "A YAML file of the same settings, keys named as the flags with `_` (flags win).")
    var config: String?
    @Option(help: "Listen address, host:port (default 127.0.0.1:15006).")
    var listen: String?
    @Option(help: "The workload (inbound) or the next proxy (outbound), host:port (default 127.0.0.1:8080).")
    var upstream: String?
    @Flag(
        name: .customLong("upstream-http2"),
        help: "Speak HTTP/2 to the upstream, as Istio does for grpc and http2 ports (gRPC workloads need it): h2c inbound, h2 by ALPN over mTLS outbound.")
    var upstreamHTTP2 = false
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
    @Flag(
        name: .customLong("authz-tls"),
        help: "Ask the server over mutual TLS with --cert and --key, verifying its chain against --trust-bundle (for a server with --allowed-clients).")
    var authzTLS = false
    @Option(
        name: .customLong("authz-server-identity"),
        help: "With --authz-tls: the SPIFFE ID the server's certificate must name (default: any of --trust-domain).")
    var authzServerIdentity: String?
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
    @Option(name: .customLong("max-header-bytes"), help: "Largest request header section (default 61440); 431 beyond (over HTTP/2 the connection ends).")
    var maxHeaderBytes: Int?
    @Option(name: .customLong("max-request-body"), help: "Largest request body in bytes (default 67108864); 413 beyond.")
    var maxRequestBody: Int?
    @Option(
        name: .customLong("check-body-bytes"),
        help: "Send the request body with each check, up to this many bytes (Envoy's with_request_body); 413 beyond.")
    var checkBodyBytes: Int?
    @Flag(
        name: .customLong("check-body-as-bytes"),
        help: "With --check-body-bytes: send the body as raw_body bytes even when it is text (Istio's packAsBytes).")
    var checkBodyAsBytes = false
    @Flag(
        name: .customLong("check-partial-body"),
        help: "With --check-body-bytes: check a longer body on its first bytes instead of refusing it.")
    var checkPartialBody = false
    @Option(
        name: .customLong("path-normalization"),
        help: "How paths are normalized before the check and forwarding, as Istio's meshConfig.pathNormalization: NONE, BASE, MERGE_SLASHES (default) or DECODE_AND_MERGE_SLASHES.")
    var pathNormalization: String?
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
        var command = self
        if let config {
            let (file, diagnostics) = ProxyConfigFile.load(config)
            var renderer = DiagnosticRenderer()
            if !diagnostics.isEmpty { writeError(renderer.render(diagnostics)) }
            guard let file else { throw ExitCode(Warden.Status.unusable) }
            file.fill(&command)
        }
        let configuration = try command.makeConfiguration()
        if let threads = command.threads {
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
        if let labels { c.labels = try parseLabels(labels, flag: "--labels") }
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
        c.upstreamHTTP2 = upstreamHTTP2
        c.authorizationTLS = authzTLS
        if let expectPeer {
            do {
                c.expectedPeer = try SPIFFEID(parsing: expectPeer)
            } catch {
                throw ValidationError("--expect-peer: \(error.message)")
            }
        }
        if let authzServerIdentity {
            do {
                c.authorizationServerIdentity = try SPIFFEID(parsing: authzServerIdentity)
            } catch {
                throw ValidationError("--authz-server-identity: \(error.message)")
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
        if let checkBodyBytes {
            c.checkBody = .init(maximumBytes: checkBodyBytes, allowPartial: checkPartialBody, packAsBytes: checkBodyAsBytes)
        } else if checkPartialBody {
            throw ValidationError("--check-partial-body needs --check-body-bytes")
        } else if checkBodyAsBytes {
            throw ValidationError("--check-body-as-bytes needs --check-body-bytes")
        }
        if let pathNormalization {
            switch pathNormalization.uppercased() {
            case "NONE": c.pathNormalizer = nil
            case "BASE": c.pathNormalizer = PathNormalizer(normalizePath: true, mergeSlashes: false)
            case "MERGE_SLASHES": c.pathNormalizer = PathNormalizer(normalizePath: true, mergeSlashes: true)
            case "DECODE_AND_MERGE_SLASHES":
                c.pathNormalizer = PathNormalizer(normalizePath: true, mergeSlashes: true, escapedSlashes: .unescapeAndForward)
            default:
                throw ValidationError("--path-normalization must be NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES")
            }
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

}

/// `warden proxy --config FILE`: the flags' settings as YAML, keys named as the flags with `_` for `-`
/// (`trust_bundle`, `check_timeout`, ...); `labels` may be a mapping and `ports` a list. Unknown keys and wrong types
/// are errors with `file:line:col`; a flag given on the command line wins over the file.
///
/// ```yaml
/// listen: 127.0.0.1:15006
/// upstream: 127.0.0.1:9080
/// authz: 127.0.0.1:9191
/// cert: certs/details/cert-chain.pem
/// key: certs/details/key.pem
/// trust_bundle: certs/details/root-cert.pem
/// policies: authn
/// namespace: default
/// labels: {app: details, version: v1}
/// ports: [9080]
/// check_timeout: 200ms
/// admin: 127.0.0.1:15000
/// ```
struct ProxyConfigFile {
    var strings: [String: String] = [:]
    var integers: [String: Int] = [:]
    var outbound = false
    var upstreamHTTP2 = false
    var authzTLS = false
    var checkPartialBody = false
    var checkBodyAsBytes = false

    static let stringKeys = [
        "listen", "upstream", "authz", "cert", "key", "trust_bundle", "policies", "namespace", "labels", "ports",
        "trust_domain", "root_namespace", "admin", "check_timeout", "authz_client", "authz_server_identity", "expect_peer",
        "access_log",
        "log_level", "upstream_timeout", "idle_timeout", "header_timeout", "drain_timeout", "path_normalization",
    ]
    static let integerKeys = [
        "failure_status", "max_connections", "max_header_bytes", "max_request_body", "watch_interval_ms", "threads",
        "check_body_bytes",
    ]
    /// Paths in the file are taken relative to the file's directory.
    static let pathKeys: Set<String> = ["cert", "key", "trust_bundle", "policies"]

    static func load(_ path: String) -> (ProxyConfigFile?, [Diagnostic]) {
        let text: String
        switch DocumentFiles.read(path) {
        case .failure(let error): return (nil, [error])
        case .success(let read): text = read
        }
        let parsed = YAMLDocuments.parse(text, file: path)
        if parsed.diagnostics.hasErrors { return (nil, parsed.diagnostics) }
        var file = ProxyConfigFile()
        guard let document = parsed.documents.first else { return (file, []) }
        let d = DocumentDecoder()
        guard let top = d.fields(document, at: .root, known: stringKeys + integerKeys + ["outbound", "upstream_http2", "authz_tls", "check_partial_body", "check_body_as_bytes"]) else {
            return (nil, d.diagnostics)
        }
        let base = (path as NSString).deletingLastPathComponent
        for entry in top.entries {
            let path = top.path(entry.key)
            switch entry.key {
            case "outbound":
                if let flag = d.bool(entry.value, at: path) { file.outbound = flag }
            case "upstream_http2":
                if let flag = d.bool(entry.value, at: path) { file.upstreamHTTP2 = flag }
            case "authz_tls":
                if let flag = d.bool(entry.value, at: path) { file.authzTLS = flag }
            case "check_partial_body":
                if let flag = d.bool(entry.value, at: path) { file.checkPartialBody = flag }
            case "check_body_as_bytes":
                if let flag = d.bool(entry.value, at: path) { file.checkBodyAsBytes = flag }
            case "labels" where { if case .mapping = entry.value.content { true } else { false } }():
                if let labels = d.stringMap(entry.value, at: path) {
                    file.strings["labels"] = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.value)" }.joined(separator: ",")
                }
            case "ports" where { if case .sequence = entry.value.content { true } else { false } }():
                let ports = d.sequence(entry.value, at: path)?.compactMap { item -> String? in
                    guard let port = item.node.value.numberValue?.intValue else {
                        d.mismatch(item.node, item.path, expected: "a port number")
                        return nil
                    }
                    return String(port)
                }
                file.strings["ports"] = ports?.joined(separator: ",")
            case let key where integerKeys.contains(key):
                guard let number = entry.value.value.numberValue?.intValue else {
                    d.mismatch(entry.value, path, expected: "an integer")
                    continue
                }
                file.integers[key] = number
            default:
                guard let value = d.string(entry.value, at: path)?.value else { continue }
                let resolved = pathKeys.contains(entry.key) && !value.hasPrefix("/") && !base.isEmpty ? base + "/" + value : value
                file.strings[entry.key] = resolved
            }
        }
        return (d.hasErrors ? nil : file, d.diagnostics)
    }

    /// Sets every setting of the file that the command line left unset.
    func fill(_ command: inout ProxyCommand) {
        func set(_ value: inout String?, _ key: String) { if value == nil { value = strings[key] } }
        func set(_ value: inout Int?, _ key: String) { if value == nil { value = integers[key] } }
        set(&command.listen, "listen")
        set(&command.upstream, "upstream")
        set(&command.authz, "authz")
        set(&command.cert, "cert")
        set(&command.key, "key")
        set(&command.trustBundle, "trust_bundle")
        set(&command.policies, "policies")
        set(&command.namespace, "namespace")
        set(&command.labels, "labels")
        set(&command.ports, "ports")
        set(&command.trustDomain, "trust_domain")
        set(&command.rootNamespace, "root_namespace")
        set(&command.admin, "admin")
        set(&command.checkTimeout, "check_timeout")
        set(&command.authzClient, "authz_client")
        set(&command.authzServerIdentity, "authz_server_identity")
        set(&command.expectPeer, "expect_peer")
        set(&command.accessLog, "access_log")
        set(&command.logLevel, "log_level")
        set(&command.upstreamTimeout, "upstream_timeout")
        set(&command.idleTimeout, "idle_timeout")
        set(&command.headerTimeout, "header_timeout")
        set(&command.drainTimeout, "drain_timeout")
        set(&command.failureStatus, "failure_status")
        set(&command.maxConnections, "max_connections")
        set(&command.maxHeaderBytes, "max_header_bytes")
        set(&command.maxRequestBody, "max_request_body")
        set(&command.checkBodyBytes, "check_body_bytes")
        set(&command.pathNormalization, "path_normalization")
        set(&command.watchIntervalMs, "watch_interval_ms")
        set(&command.threads, "threads")
        if outbound { command.outbound = true }
        if upstreamHTTP2 { command.upstreamHTTP2 = true }
        if authzTLS { command.authzTLS = true }
        if checkPartialBody { command.checkPartialBody = true }
        if checkBodyAsBytes { command.checkBodyAsBytes = true }
    }
}
