import Documents
import ExtAuthz
import Foundation
import Logging
import Networking
import PolicyCore

/// Everything `warden serve` can be told, from one YAML file and flags (flags win). Unknown keys and wrong
/// types are errors with `file:line:col`, as in policy files.
///
/// ```yaml
/// grpc: {address: 127.0.0.1:9191, tls: {certificate: cert.pem, key: key.pem, client_ca: ca.pem},
///        allowed_clients: [spiffe://cluster.local/ns/istio-system/sa/ingress], max_message_bytes: 4194304,
///        max_connection_buffer_bytes: 16777216, max_buffered_bytes: 268435456, max_concurrent_streams: 100,
///        request_timeout: 10s,
///        idle_timeout: 60s, max_connections: 10000}
/// http: {address: 127.0.0.1:8181, tls: {...}, allowed_clients: [...], ext_authz_prefix: /ext_authz,
///        max_body_bytes: 1048576, request_timeout: 10s, idle_timeout: 60s, max_connections: 10000}
/// admin: {address: 127.0.0.1:8282, tls: {...}, authentication: token, authorization_policy: authz.rego,
///         policy_writes: false}
/// policies: {paths: [policies], root_namespace: istio-system, default_namespace: default, watch_interval_ms: 1000}
/// request: {trusted_proxies: 0, normalize_path: true, merge_slashes: true, strip_path_parameters: true,
///           path_with_escaped_slashes_action: KEEP_UNCHANGED,
///           verified_claims_header: false, destination_namespace: default, destination_labels: {app: api}}
/// providers: {opa: {path: envoy/authz/allow}}   # CUSTOM providers: the Rego rule each evaluates
/// limits: {max_file_bytes: 8388608, max_nesting_depth: 128, max_yaml_aliases: 1000, max_yaml_alias_nodes: 100000}
/// decision_log: stdout          # or a file path, or off
/// log_level: info               # debug, info, warning, error
/// threads: 1                    # event-loop threads that also run the checks (default: per core, thread pool)
/// ```
public struct ServerConfiguration: Sendable {
    public struct Listener: Sendable, Hashable {
        public var host: String
        public var port: Int
        public var tls: TLS?
        /// The clients that may ask for decisions on this listener (ext_authz and data queries): their verified
        /// SPIFFE IDs. Empty: any client may ask. Only these clients are trusted with the verified-claims header.
        public var allowedClients: [SPIFFEID]

        public init(host: String, port: Int, tls: TLS? = nil, allowedClients: [SPIFFEID] = []) {
            self.host = host
            self.port = port
            self.tls = tls
            self.allowedClients = allowedClients
        }

        /// Whether only this machine can connect: a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
        public var isLoopback: Bool {
            if host == "localhost" || host == "::1" { return true }
            let parts = host.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
        }

        /// `host:port`, bracketing an IPv6 host.
        public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// `host:port` or `[v6]:port`; a bare `:port` listens on 127.0.0.1.
        public static func parse(_ text: String) -> (host: String, port: Int)? {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                  (0...65535).contains(port)
            else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return (host.isEmpty ? "127.0.0.1" : host, port)
        }
    }

    /// A certificate chain and key, PEM files, and the CA certificates clients' certificates must chain to.
    public struct TLS: Sendable, Hashable {
        public var certificate: String
        public var key: String
        /// When set, clients present certificates that verify against these CA certificates (PEM): required on
        /// the admin listener, and on the ext_authz listeners when they have an allow-list; on an ext_authz
        /// listener without one, a client may still connect without a certificate.
        public var clientCA: String?

        public init(certificate: String, key: String, clientCA: String? = nil) {
            self.certificate = certificate
            self.key = key
            self.clientCA = clientCA
        }
    }

    /// The management API's listener and who may use it.
    public struct Admin: Sendable, Hashable {
        /// OPA's `--authentication`: how a caller's identity is established.
        public enum Authentication: String, Sendable, CaseIterable {
            /// No identity (`input.identity` is undefined).
            case off
            /// `Authorization: Bearer <token>`: the token is the identity.
            case token
            /// A client certificate that verifies against `tls.client_ca`: its SPIFFE ID, else its subject.
            case tls
        }

        /// Where the management API listens; nil: it is not served.
        public var listener: Listener? = Listener(host: "127.0.0.1", port: 8282)
        public var authentication = Authentication.off
        /// A Rego file whose `data.system.authz.allow` decides every management request (OPA's
        /// `--authorization=basic`); nil: every caller that reaches the listener (and authenticates) may.
        public var authorizationPolicy: String?
        /// Whether `PUT`/`DELETE /v1/policies/{id}` may change the policies.
        public var policyWrites = false

        public init() {}
    }

    public enum LogLevel: String, Sendable, CaseIterable, Comparable {
        case debug, info, warning, error

        public static func < (a: LogLevel, b: LogLevel) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }

        /// The same level in swift-log's terms.
        public var level: Logger.Level {
            switch self {
            case .debug: .debug
            case .info: .info
            case .warning: .warning
            case .error: .error
            }
        }
    }

    public var grpc = Listener(host: "127.0.0.1", port: 9191)
    public var http = Listener(host: "127.0.0.1", port: 8181)
    public var admin = Admin()
    public var maxGRPCMessageBytes = 4 << 20
    public static let maxGRPCMessageBytesRange = 1024...(1 << 30)
    /// What one gRPC client can make the server hold: connections, streams, buffered bytes, time.
    public var grpcLimits = GRPCLimits()
    public var maxHTTPBodyBytes = 1 << 20
    /// What one HTTP client can make the server hold beside the body: connections and time.
    public var httpLimits = HTTPLimits()
    public var extAuthzPrefix = "/ext_authz"
    public var policyPaths: [String] = ["policies"]
    public var rootNamespace = "istio-system"
    public var defaultNamespace = "default"
    public var watchInterval: Duration? = .seconds(1)
    public var trustedProxies = 0
    /// How request paths are normalized before matching (Envoy's `normalize_path`, `merge_slashes`,
    /// `path_with_escaped_slashes_action`).
    public var pathNormalizer = PathNormalizer()
    public var verifiedClaimsHeader: String?
    public var destinationNamespace: String?
    public var destinationLabels: [String: String] = [:]
    /// CUSTOM providers: name → Rego rule path. Unlisted names evaluate `envoy/authz/allow`.
    public var providers: [String: String] = [:]
    /// Bounds on every policy file loaded (startup, reload, the policy API).
    public var limits = InputLimits.default
    public var decisionLog: DecisionLog.Destination? = .standardOutput
    public var logLevel = LogLevel.info
    /// Event-loop threads; when set, checks also run on the loops (`EventLoops.runTasksOnEventLoops`).
    public var threads: Int?
    public static let maxThreads = 256
    /// Policies from an OPA bundle service instead of `policyPaths`.
    public var bundle: BundleSettings?
    /// Where persisted bundles live (`<dir>/bundles/<name>/bundle.tar.gz`, as OPA lays them out) and the last good
    /// set of `policyPaths` (`<dir>/policies/policies.tar.gz`).
    public var persistenceDirectory = ".warden"
    /// Keep the last good set of `policyPaths` under `persistenceDirectory` and serve it at start when the paths do
    /// not load (`policies.persist`, `--[no-]persist-policies`; on by default).
    public var persistPolicies = true
    /// Decision logs uploaded to a remote service.
    public var decisionLogUpload: DecisionLogUploadSettings?
    /// Labels sent with uploaded decision-log events.
    public var labels: [String: String] = [:]

    public init() {}

    static let topLevel = [
        "grpc", "http", "admin", "policies", "request", "providers", "limits", "decision_log", "log_level", "threads",
    ] + opaKeys

    /// Reads a configuration file over the defaults; returns every problem found.
    public static func load(file: String) -> (ServerConfiguration?, [Diagnostic]) {
        switch DocumentFiles.read(file) {
        case .failure(let error): return (nil, [error])
        case .success(let text): return decode(text, file: file)
        }
    }

    public static func decode(_ text: String, file: String) -> (ServerConfiguration?, [Diagnostic]) {
        let parsed = YAMLDocuments.parse(text, file: file)
        if parsed.diagnostics.hasErrors { return (nil, parsed.diagnostics) }
        var config = ServerConfiguration()
        guard let document = parsed.documents.first else { return (config, []) }
        let d = DocumentDecoder()
        guard let top = d.fields(document, at: .root, known: topLevel) else { return (nil, d.diagnostics) }
        let base = (file as NSString).deletingLastPathComponent

        func int(_ node: DocumentNode, _ path: FieldPath, range: ClosedRange<Int>) -> Int? {
            guard let n = node.value.numberValue?.intValue else {
                d.mismatch(node, path, expected: "an integer")
                return nil
            }
            guard range.contains(n) else {
                d.invalid("must be from \(range.lowerBound) to \(range.upperBound), found \(n)", at: node, path)
                return nil
            }
            return n
        }
        func relative(_ path: String) -> String {
            path.hasPrefix("/") || base.isEmpty ? path : base + "/" + path
        }
        func limits<Limits>(_ f: DocumentDecoder.Fields, _ fields: [LimitField<Limits>], into limits: inout Limits) {
            for field in fields {
                guard let node = f[field.key] else { continue }
                let written = field.range.isDuration ? node.value.stringValue : node.value.numberValue?.intValue.map(String.init)
                guard let written else {
                    d.mismatch(node, f.path(field.key), expected: field.range.isDuration ? "a duration such as 10s" : "an integer")
                    continue
                }
                if let problem = field.set(written, in: &limits) { d.invalid(problem, at: node, f.path(field.key)) }
            }
        }
        // Apart from `config`, which `listener` is given a part of inout.
        var grpcLimits = config.grpcLimits, httpLimits = config.httpLimits
        func address(_ f: DocumentDecoder.Fields, into listener: inout Listener) {
            guard let n = f["address"], let s = d.string(n, at: f.path("address")) else { return }
            if let (host, port) = Listener.parse(s.value) {
                listener.host = host
                listener.port = port
            } else {
                d.invalid("expected `host:port`, found `\(s.value)`", at: s)
            }
        }
        func tls(_ f: DocumentDecoder.Fields) -> TLS? {
            guard let n = f["tls"], let t = d.fields(n, at: f.path("tls"), known: ["certificate", "key", "client_ca"])
            else { return nil }
            let cert = t["certificate"].flatMap { d.string($0, at: t.path("certificate")) }
            let key = t["key"].flatMap { d.string($0, at: t.path("key")) }
            let ca = t["client_ca"].flatMap { d.string($0, at: t.path("client_ca")) }
            guard let cert, let key else {
                d.report(Diagnostic.Code.missingField, "tls needs both `certificate` and `key`", span: n.span, path: t.path)
                return nil
            }
            return TLS(certificate: relative(cert.value), key: relative(key.value), clientCA: ca.map { relative($0.value) })
        }
        func listener(_ node: DocumentNode, _ path: FieldPath, into listener: inout Listener) -> (Int?, String?) {
            let grpc = path.description == "grpc"
            let known = grpc ? ["address", "tls", "allowed_clients", "max_message_bytes"] + GRPCLimits.fields.map(\.key)
                : ["address", "tls", "allowed_clients", "max_body_bytes", "ext_authz_prefix"] + HTTPLimits.fields.map(\.key)
            guard let f = d.fields(node, at: path, known: known) else { return (nil, nil) }
            if grpc { limits(f, GRPCLimits.fields, into: &grpcLimits) } else { limits(f, HTTPLimits.fields, into: &httpLimits) }
            address(f, into: &listener)
            if let tls = tls(f) { listener.tls = tls }
            if let n = f["allowed_clients"], let list = d.strings(n, at: f.path("allowed_clients")) {
                for item in list {
                    do {
                        listener.allowedClients.append(try SPIFFEID(parsing: item.value))
                    } catch {
                        d.invalid("expected a SPIFFE ID such as `spiffe://cluster.local/ns/istio-system/sa/ingress`: \(error.message)", at: item)
                    }
                }
            }
            let limitKey = path.description == "grpc" ? "max_message_bytes" : "max_body_bytes"
            let limit = f[limitKey].flatMap { int($0, f.path(limitKey), range: 1024...(1 << 30)) }
            let prefix = f["ext_authz_prefix"].flatMap { d.string($0, at: f.path("ext_authz_prefix"))?.value }
            if let prefix, !prefix.hasPrefix("/") || prefix.hasSuffix("/") {
                d.invalid("must start with `/` and not end with one, found `\(prefix)`", at: f["ext_authz_prefix"]!, f.path("ext_authz_prefix"))
            }
            return (limit, prefix)
        }

        if let n = top["grpc"] {
            let (limit, _) = listener(n, top.path("grpc"), into: &config.grpc)
            if let limit { config.maxGRPCMessageBytes = limit }
            config.grpcLimits = grpcLimits
        }
        if let n = top["http"] {
            let (limit, prefix) = listener(n, top.path("http"), into: &config.http)
            if let limit { config.maxHTTPBodyBytes = limit }
            config.httpLimits = httpLimits
            if let prefix { config.extAuthzPrefix = prefix }
        }
        if let n = top["admin"],
           let f = d.fields(n, at: top.path("admin"), known: [
               "address", "tls", "authentication", "authorization_policy", "policy_writes",
           ])
        {
            if let a = f["address"], case .scalar(let scalar) = a.content, scalar.text == "off" {
                config.admin.listener = nil
            } else if var admin = config.admin.listener {
                address(f, into: &admin)
                if let tls = tls(f) { admin.tls = tls }
                config.admin.listener = admin
            }
            // `off` is a YAML 1.1 boolean; read the word as written.
            if let n = f["authentication"], case .scalar(let scalar) = n.content, scalar.kind == .bool || scalar.kind == .string {
                let s = Located(scalar.text, span: n.span, path: f.path("authentication"))
                if let mode = Admin.Authentication(rawValue: s.value) {
                    config.admin.authentication = mode
                } else {
                    d.invalid("expected `off`, `token` or `tls`, found `\(s.value)`", at: s)
                }
            } else if let n = f["authentication"] {
                d.mismatch(n, f.path("authentication"), expected: "`off`, `token` or `tls`")
            }
            if let s = f["authorization_policy"].flatMap({ d.string($0, at: f.path("authorization_policy")) }) {
                config.admin.authorizationPolicy = relative(s.value)
            }
            if let v = f["policy_writes"].flatMap({ d.bool($0, at: f.path("policy_writes")) }) { config.admin.policyWrites = v }
        }
        if let n = top["policies"],
           let f = d.fields(n, at: top.path("policies"), known: ["paths", "root_namespace", "default_namespace", "watch_interval_ms", "persist"])
        {
            if let p = f["paths"], let list = d.strings(p, at: f.path("paths")) { config.policyPaths = list.map { relative($0.value) } }
            if let s = f["root_namespace"].flatMap({ d.string($0, at: f.path("root_namespace")) }) { config.rootNamespace = s.value }
            if let v = f["persist"].flatMap({ d.bool($0, at: f.path("persist")) }) { config.persistPolicies = v }
            if let s = f["default_namespace"].flatMap({ d.string($0, at: f.path("default_namespace")) }) { config.defaultNamespace = s.value }
            if let ms = f["watch_interval_ms"].flatMap({ int($0, f.path("watch_interval_ms"), range: 0...3_600_000) }) {
                config.watchInterval = ms == 0 ? nil : .milliseconds(ms)
            }
        }
        if let n = top["request"],
           let f = d.fields(n, at: top.path("request"), known: [
               "trusted_proxies", "normalize_path", "merge_slashes", "path_with_escaped_slashes_action",
               "decode_escaped_slashes", "strip_path_parameters", "verified_claims_header", "destination_namespace",
               "destination_labels",
           ])
        {
            if let v = f["trusted_proxies"].flatMap({ int($0, f.path("trusted_proxies"), range: 0...64) }) { config.trustedProxies = v }
            let switches: [(String, WritableKeyPath<PathNormalizer, Bool>)] = [
                ("normalize_path", \.normalizePath), ("merge_slashes", \.mergeSlashes),
                ("strip_path_parameters", \.stripPathParameters),
                // Istio's DECODE_AND_MERGE_SLASHES, kept for configurations written before the action existed.
                ("decode_escaped_slashes", \.decodeEscapedSlashes),
            ]
            for (key, field) in switches {
                if let v = f[key].flatMap({ d.bool($0, at: f.path(key)) }) { config.pathNormalizer[keyPath: field] = v }
            }
            if let s = f["path_with_escaped_slashes_action"].flatMap({
                d.string($0, at: f.path("path_with_escaped_slashes_action"))
            }) {
                if let action = PathNormalizer.EscapedSlashesAction(rawValue: s.value.uppercased()) {
                    config.pathNormalizer.escapedSlashes = action
                } else {
                    let known = PathNormalizer.EscapedSlashesAction.allCases.map(\.rawValue).joined(separator: ", ")
                    d.invalid("unknown action `\(s.value)`; expected one of \(known)", at: s)
                }
            }
            if let node = f["verified_claims_header"] {
                // `true` trusts the standard header; a string names another one.
                if case .scalar(let s) = node.content, s.kind == .bool {
                    config.verifiedClaimsHeader = node.value.boolValue == true ? VerifiedClaimsHeader.name : nil
                } else if let s = d.string(node, at: f.path("verified_claims_header")) {
                    config.verifiedClaimsHeader = s.value.lowercased()
                }
            }
            if let s = f["destination_namespace"].flatMap({ d.string($0, at: f.path("destination_namespace")) }) {
                config.destinationNamespace = s.value
            }
            if let m = f["destination_labels"].flatMap({ d.stringMap($0, at: f.path("destination_labels")) }) {
                config.destinationLabels = m.mapValues(\.value)
            }
        }
        if let n = top["providers"] {
            switch n.content {
            case .mapping(let entries):
                for entry in entries {
                    let path = top.path("providers") / entry.key
                    guard let f = d.fields(entry.value, at: path, known: ["path"]) else { continue }
                    guard let node = f["path"] else {
                        d.report(Diagnostic.Code.missingField, "a provider needs `path`, the Rego rule it evaluates", span: entry.value.span, path: path)
                        continue
                    }
                    if let rule = d.string(node, at: f.path("path")) {
                        if RegoRulePath.isValid(rule.value) {
                            config.providers[entry.key] = rule.value
                        } else {
                            d.invalid("expected a rule path such as `envoy/authz/allow`, found `\(rule.value)`", at: rule)
                        }
                    }
                }
            default:
                d.mismatch(n, top.path("providers"), expected: "an object of providers")
            }
        }
        if let n = top["limits"],
           let f = d.fields(n, at: top.path("limits"), known: [
               "max_file_bytes", "max_nesting_depth", "max_yaml_aliases", "max_yaml_alias_nodes",
           ])
        {
            let fields: [(String, ClosedRange<Int>, WritableKeyPath<InputLimits, Int>)] = [
                ("max_file_bytes", 1...(1 << 30), \.maxFileBytes),
                ("max_nesting_depth", 1...InputLimits.maximumNestingDepth, \.maxNestingDepth),
                ("max_yaml_aliases", 0...(1 << 24), \.maxYAMLAliases),
                ("max_yaml_alias_nodes", 0...(1 << 30), \.maxYAMLAliasNodes),
            ]
            for (key, range, field) in fields {
                if let v = f[key].flatMap({ int($0, f.path(key), range: range) }) { config.limits[keyPath: field] = v }
            }
        }
        if let n = top["decision_log"], let s = d.string(n, at: top.path("decision_log")) {
            config.decisionLog = Self.decisionLog(s.value, relativeTo: relative)
        }
        if let n = top["log_level"], let s = d.string(n, at: top.path("log_level")) {
            if let level = LogLevel(rawValue: s.value) {
                config.logLevel = level
            } else {
                d.invalid("unknown log level `\(s.value)`; expected one of debug, info, warning, error", at: s)
            }
        }
        if let n = top["threads"], let v = int(n, top.path("threads"), range: 1...maxThreads) { config.threads = v }
        decodeOPA(top, d, into: &config, relative: relative)
        return (d.hasErrors ? nil : config, d.diagnostics)
    }

    /// `stdout`, `off`, or a file path.
    public static func decisionLog(_ text: String, relativeTo resolve: (String) -> String = { $0 }) -> DecisionLog.Destination? {
        switch text {
        case "stdout", "-": .standardOutput
        case "off", "none", "": nil
        default: .file(resolve(text))
        }
    }

    /// The request mapping these settings describe.
    public var mapperOptions: CheckRequestMapper.Options {
        CheckRequestMapper.Options(
            pathNormalizer: pathNormalizer,
            trustedProxies: trustedProxies,
            verifiedClaimsHeader: verifiedClaimsHeader,
            destinationNamespace: destinationNamespace,
            destinationLabels: destinationLabels)
    }
}

/// A Rego rule path as providers name them: `envoy/authz/allow` (dots also accepted, `data.` optional).
enum RegoRulePath {
    static func isValid(_ path: String) -> Bool {
        let parts = path.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "/" || $0 == "." })
        return !parts.isEmpty && parts.allSatisfy { part in
            !part.isEmpty && part.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
        }
    }
}

extension ServerConfiguration {
    /// What the server says at start about the workload it decides for when a check does not name one: a policy
    /// with a selector applies only to checks of its workload, which surprises anyone trying the server with curl.
    public var guardedWorkloadSummary: String {
        let namespace = destinationNamespace ?? defaultNamespace
        if destinationLabels.isEmpty {
            return """
                checks that name no workload are for namespace `\(namespace)` without labels: policies with a \
                selector apply only to checks naming their workload (context extensions `destination.namespace` and \
                `destination.workload_labels`); set --destination-labels (and --destination-namespace) for the \
                workload this server guards
                """
        }
        return "checks that name no workload are for namespace `\(namespace)` \(labelsText(destinationLabels))"
    }
}
