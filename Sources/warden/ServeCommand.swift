import ArgumentParser
import Foundation
import Networking
import PolicyCore
import PolicyLoading
import WardenServer

/// `warden serve`: the authorization server.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve authorization decisions: Envoy ext_authz (gRPC and HTTP) and OPA's data API; OPA's policy API, status and metrics on an admin listener.",
        discussion: """
            Settings come from --config (YAML) and then from flags, which win. By default the data plane listens on \
            127.0.0.1:9191 (gRPC: envoy.service.auth.v3.Authorization and grpc.health.v1.Health) and \
            127.0.0.1:8181 (HTTP: ext_authz HTTP mode under /ext_authz, GET/POST /v1/data queries, /health), and \
            the management API on 127.0.0.1:8282 (/v1/policies, /v1/status, /metrics; policy writes off unless \
            --allow-policy-writes). The server serves the policies in ./policies, reloads them when they change or \
            on SIGHUP, and writes decision logs to standard output. SIGTERM or SIGINT shuts down gracefully.
            """
    )

    @Option(help: "A YAML configuration file.")
    var config: String?

    @Option(name: .customLong("grpc-address"), help: "gRPC listen address, host:port (default 127.0.0.1:9191).")
    var grpcAddress: String?

    @Option(name: .customLong("http-address"), help: "HTTP listen address, host:port (default 127.0.0.1:8181).")
    var httpAddress: String?

    @Option(
        name: .customLong("admin-address"),
        help: "Management API listen address, host:port, or off (default 127.0.0.1:8282).")
    var adminAddress: String?

    @Option(
        name: .customLong("authentication"),
        help: "How management API callers are identified: off, token (Authorization: Bearer) or tls (a client certificate from --admin-tls-client-ca).")
    var authentication: String?

    @Option(
        name: .customLong("authorization-policy"),
        help: "A Rego file whose data.system.authz.allow decides every management API request (OPA's system.authz).")
    var authorizationPolicy: String?

    @Flag(
        name: .customLong("allow-policy-writes"),
        help: "Let PUT/DELETE /v1/policies/{id} on the management API change the policies (off by default).")
    var allowPolicyWrites = false

    @Option(
        name: .customLong("allowed-clients"),
        help: "A SPIFFE ID allowed to ask for decisions (repeatable), on each ext_authz listener with a --*-tls-client-ca. Only these clients are trusted with the verified-claims header.")
    var allowedClients: [String] = []

    @Option(name: .customLong("policies"), help: "Policy files or directories (repeatable; default ./policies).")
    var policies: [String] = []

    @Option(name: .customLong("root-namespace"), help: "The mesh root namespace (default istio-system).")
    var rootNamespace: String?

    @Option(name: .customLong("default-namespace"), help: "Namespace of policies and requests that name none (default default).")
    var defaultNamespace: String?

    @Option(name: .customLong("decision-log"), help: "Decision log destination: stdout, off, or a file path.")
    var decisionLog: String?

    @Option(name: .customLong("log-level"), help: "debug, info, warning or error.")
    var logLevel: String?

    @Option(name: .customLong("watch-interval-ms"), help: "How often to look for policy changes; 0 disables watching.")
    var watchIntervalMs: Int?

    @Option(
        name: .customLong("threads"),
        help: "Serve on this many event-loop threads and run every check on the loop that read it (default: one loop per core, checks on Swift's thread pool).")
    var threads: Int?

    @Option(name: .customLong("trusted-proxies"), help: "Proxies in front whose X-Forwarded-For entries are skipped for remote.ip.")
    var trustedProxies: Int?

    @Option(name: .customLong("destination-namespace"), help: "The namespace of the workload this server guards, when checks do not name it.")
    var destinationNamespace: String?

    @Option(name: .customLong("destination-labels"), help: "The labels of the workload this server guards (app=details,version=v1), when checks do not name them.")
    var destinationLabels: String?

    @Flag(name: .customLong("trust-verified-claims-header"), help: "Read request.auth.* from the x-warden-verified-claims header, from --allowed-clients only (behind warden proxy).")
    var trustVerifiedClaimsHeader = false

    @Option(name: .customLong("bundle"), help: "Serve the OPA bundle at this URL (polled) instead of --policies.")
    var bundle: String?

    @Option(name: .customLong("bundle-key"), help: "A PEM public key the bundle must be signed with (RS256 or ES256, by key type).")
    var bundleKey: String?

    @Option(name: .customLong("bundle-poll"), help: "Bundle polling window, MIN..MAX (such as 5s..10s; default 60s..120s, as OPA).")
    var bundlePoll: String?

    @Option(name: .customLong("bundle-persist"), help: "Keep the last activated bundle in this directory and serve it at start when the service is down.")
    var bundlePersist: String?

    @Flag(
        inversion: .prefixedNo,
        help: "Keep the last good set of --policies in the persistence directory and serve it at start when the paths do not load (default on).")
    var persistPolicies: Bool?

    @Option(
        name: .customLong("persistence-directory"),
        help: "Where the last good policy set and persisted bundles are kept (default .warden).")
    var persistenceDirectory: String?

    @Option(name: .customLong("decision-log-url"), help: "Upload decision logs (gzip'd JSON batches, as OPA) to this URL.")
    var decisionLogURL: String?

    @OptionGroup var limits: LimitOptions

    @OptionGroup var listenerLimits: ListenerLimitOptions

    @Option(name: .customLong("grpc-tls-cert"), help: "PEM certificate chain for the gRPC listener.")
    var grpcTLSCert: String?
    @Option(name: .customLong("grpc-tls-key"), help: "PEM private key for the gRPC listener.")
    var grpcTLSKey: String?
    @Option(name: .customLong("http-tls-cert"), help: "PEM certificate chain for the HTTP listener.")
    var httpTLSCert: String?
    @Option(name: .customLong("http-tls-key"), help: "PEM private key for the HTTP listener.")
    var httpTLSKey: String?
    @Option(name: .customLong("grpc-tls-client-ca"), help: "PEM CA certificates gRPC clients' certificates are verified against.")
    var grpcTLSClientCA: String?
    @Option(name: .customLong("http-tls-client-ca"), help: "PEM CA certificates HTTP clients' certificates are verified against.")
    var httpTLSClientCA: String?
    @Option(name: .customLong("admin-tls-cert"), help: "PEM certificate chain for the admin listener.")
    var adminTLSCert: String?
    @Option(name: .customLong("admin-tls-key"), help: "PEM private key for the admin listener.")
    var adminTLSKey: String?
    @Option(name: .customLong("admin-tls-client-ca"), help: "PEM CA certificates the admin listener requires client certificates from.")
    var adminTLSClientCA: String?

    func run() async throws {
        var settings = ServerConfiguration()
        if let config {
            let (loaded, diagnostics) = ServerConfiguration.load(file: config)
            var renderer = DiagnosticRenderer()
            if !diagnostics.isEmpty { writeError(renderer.render(diagnostics)) }
            guard let loaded else { throw ExitCode(Warden.Status.unusable) }
            settings = loaded
        }
        try apply(to: &settings)
        if let threads = settings.threads {
            EventLoops.runTasksOnEventLoops(threads: threads)
        } else {
            EventLoops.sizeToUsableCores()
        }
        let server: AuthorizationServer
        do {
            server = try AuthorizationServer(configuration: settings)
        } catch let error as StartupError {
            var renderer = DiagnosticRenderer()
            writeError("warden: cannot start:")
            throw usage(renderer.render(error.diagnostics))
        } catch {
            throw usage("cannot start: \(error)")
        }
        do {
            try await server.run()
        } catch {
            writeError("warden: error: \(error)")
            throw ExitCode(Warden.Status.failed)
        }
    }

    func apply(to settings: inout ServerConfiguration) throws {
        if let grpcAddress {
            guard let (host, port) = ServerConfiguration.Listener.parse(grpcAddress) else {
                throw ValidationError("--grpc-address must be host:port, found `\(grpcAddress)`")
            }
            settings.grpc.host = host
            settings.grpc.port = port
        }
        if let httpAddress {
            guard let (host, port) = ServerConfiguration.Listener.parse(httpAddress) else {
                throw ValidationError("--http-address must be host:port, found `\(httpAddress)`")
            }
            settings.http.host = host
            settings.http.port = port
        }
        if !policies.isEmpty { settings.policyPaths = policies }
        if let persistPolicies { settings.persistPolicies = persistPolicies }
        if let persistenceDirectory { settings.persistenceDirectory = persistenceDirectory }
        if let rootNamespace { settings.rootNamespace = rootNamespace }
        if let defaultNamespace { settings.defaultNamespace = defaultNamespace }
        if let decisionLog { settings.decisionLog = ServerConfiguration.decisionLog(decisionLog) }
        if let logLevel {
            guard let level = ServerConfiguration.LogLevel(rawValue: logLevel) else {
                throw ValidationError("--log-level must be one of debug, info, warning, error")
            }
            settings.logLevel = level
        }
        if let watchIntervalMs {
            guard watchIntervalMs >= 0 else { throw ValidationError("--watch-interval-ms must not be negative") }
            settings.watchInterval = watchIntervalMs == 0 ? nil : .milliseconds(watchIntervalMs)
        }
        if let threads {
            guard (1...ServerConfiguration.maxThreads).contains(threads) else {
                throw ValidationError("--threads must be between 1 and \(ServerConfiguration.maxThreads)")
            }
            settings.threads = threads
        }
        if let trustedProxies {
            guard trustedProxies >= 0 else { throw ValidationError("--trusted-proxies must not be negative") }
            settings.trustedProxies = trustedProxies
        }
        if let destinationNamespace { settings.destinationNamespace = destinationNamespace }
        if let destinationLabels { settings.destinationLabels = try parseLabels(destinationLabels, flag: "--destination-labels") }
        try applyBundle(to: &settings)
        settings.limits = limits.applied(to: settings.limits)
        try listenerLimits.apply(to: &settings)
        if trustVerifiedClaimsHeader { settings.verifiedClaimsHeader = "x-warden-verified-claims" }
        try applyTLS(to: &settings)
        try applyAdmin(to: &settings)
    }

    func applyTLS(to settings: inout ServerConfiguration) throws {
        func tls(_ name: String, _ cert: String?, _ key: String?, _ ca: String?, _ current: ServerConfiguration.TLS?) throws
            -> ServerConfiguration.TLS?
        {
            var tls = current
            switch (cert, key) {
            case (let cert?, let key?): tls = .init(certificate: cert, key: key, clientCA: current?.clientCA)
            case (nil, nil): break
            default: throw ValidationError("give both --\(name)-tls-cert and --\(name)-tls-key")
            }
            if let ca {
                guard tls != nil else {
                    throw ValidationError("--\(name)-tls-client-ca needs --\(name)-tls-cert and --\(name)-tls-key (or `\(name).tls`)")
                }
                tls?.clientCA = ca
            }
            return tls
        }
        settings.grpc.tls = try tls("grpc", grpcTLSCert, grpcTLSKey, grpcTLSClientCA, settings.grpc.tls)
        settings.http.tls = try tls("http", httpTLSCert, httpTLSKey, httpTLSClientCA, settings.http.tls)
        if adminTLSCert != nil || adminTLSKey != nil || adminTLSClientCA != nil {
            guard settings.admin.listener != nil else { throw ValidationError("--admin-tls-* need the admin listener, which is off") }
            let current = settings.admin.listener?.tls
            settings.admin.listener?.tls = try tls("admin", adminTLSCert, adminTLSKey, adminTLSClientCA, current)
        }
        if !allowedClients.isEmpty {
            let ids = try allowedClients.map { text in
                do throws(SPIFFEID.ParseError) {
                    return try SPIFFEID(parsing: text)
                } catch {
                    throw ValidationError("--allowed-clients takes SPIFFE IDs such as spiffe://cluster.local/ns/istio-system/sa/ingress: \(error.message)")
                }
            }
            // The list applies to the data-plane listeners that verify client certificates.
            let grpcVerifies = settings.grpc.tls?.clientCA != nil, httpVerifies = settings.http.tls?.clientCA != nil
            guard grpcVerifies || httpVerifies else {
                throw ValidationError(
                    "--allowed-clients needs a data-plane listener that verifies client certificates: --grpc-tls-client-ca "
                        + "or --http-tls-client-ca (with that listener's --*-tls-cert and --*-tls-key)")
            }
            if grpcVerifies { settings.grpc.allowedClients = ids }
            if httpVerifies { settings.http.allowedClients = ids }
        }
    }

    func applyAdmin(to settings: inout ServerConfiguration) throws {
        if let adminAddress {
            if adminAddress == "off" {
                settings.admin.listener = nil
            } else {
                guard let (host, port) = ServerConfiguration.Listener.parse(adminAddress) else {
                    throw ValidationError("--admin-address must be host:port or off, found `\(adminAddress)`")
                }
                var listener = settings.admin.listener ?? ServerConfiguration.Listener(host: host, port: port)
                listener.host = host
                listener.port = port
                settings.admin.listener = listener
            }
        }
        if let authentication {
            guard let mode = ServerConfiguration.Admin.Authentication(rawValue: authentication) else {
                throw ValidationError("--authentication must be off, token or tls, found `\(authentication)`")
            }
            settings.admin.authentication = mode
        }
        if let authorizationPolicy { settings.admin.authorizationPolicy = authorizationPolicy }
        if allowPolicyWrites { settings.admin.policyWrites = true }
    }

    func applyBundle(to settings: inout ServerConfiguration) throws {
        if let bundle {
            guard bundle.hasPrefix("http://") || bundle.hasPrefix("https://") else {
                throw ValidationError("--bundle must be an http or https URL, found `\(bundle)`")
            }
            settings.bundle = BundleSettings(name: settings.bundle?.name ?? "warden", url: bundle)
        }
        if bundleKey != nil || bundlePoll != nil || bundlePersist != nil, settings.bundle == nil {
            throw ValidationError("--bundle-key, --bundle-poll and --bundle-persist need --bundle (or `bundles` in --config)")
        }
        if let bundleKey {
            guard let pem = try? String(contentsOfFile: bundleKey, encoding: .utf8) else {
                throw ValidationError("cannot read --bundle-key `\(bundleKey)`")
            }
            do {
                settings.bundle?.verification = try BundleVerification.single(pem: pem)
            } catch {
                throw ValidationError("--bundle-key: \(error.message)")
            }
        }
        if let bundlePoll {
            guard let (low, high) = BundleSettings.parsePolling(bundlePoll) else {
                throw ValidationError("--bundle-poll must be MIN..MAX such as 5s..10s, found `\(bundlePoll)`")
            }
            settings.bundle?.minDelay = low
            settings.bundle?.maxDelay = high
        }
        if let bundlePersist {
            settings.bundle?.persist = true
            settings.persistenceDirectory = bundlePersist
        }
        if let decisionLogURL {
            guard decisionLogURL.hasPrefix("http://") || decisionLogURL.hasPrefix("https://") else {
                throw ValidationError("--decision-log-url must be an http or https URL, found `\(decisionLogURL)`")
            }
            settings.decisionLogUpload = DecisionLogUploadSettings(url: decisionLogURL)
        }
    }
}
