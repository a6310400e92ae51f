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
        abstract: "Serve authorization decisions: Envoy ext_authz (gRPC and HTTP), OPA's policy API, health and metrics.",
        discussion: """
            Settings come from --config (YAML) and then from flags, which win. By default the server listens on \
            127.0.0.1:9191 (gRPC: envoy.service.auth.v3.Authorization and grpc.health.v1.Health) and \
            127.0.0.1:8181 (HTTP: ext_authz HTTP mode under /ext_authz, /v1/policies, /v1/status, /health, \
            /metrics), serves the policies in ./policies, reloads them when they change or on SIGHUP, and writes \
            decision logs to standard output. SIGTERM or SIGINT shuts down gracefully.
            """
    )

    @Option(help: "A YAML configuration file.")
    var config: String?

    @Option(name: .customLong("grpc-address"), help: "gRPC listen address, host:port (default 127.0.0.1:9191).")
    var grpcAddress: String?

    @Option(name: .customLong("http-address"), help: "HTTP listen address, host:port (default 127.0.0.1:8181).")
    var httpAddress: String?

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

    @Flag(name: .customLong("trust-verified-claims-header"), help: "Read request.auth.* from the x-warden-verified-claims header (only behind warden proxy).")
    var trustVerifiedClaimsHeader = false

    @Option(name: .customLong("bundle"), help: "Serve the OPA bundle at this URL (polled) instead of --policies.")
    var bundle: String?

    @Option(name: .customLong("bundle-key"), help: "A PEM public key the bundle must be signed with (RS256 or ES256, by key type).")
    var bundleKey: String?

    @Option(name: .customLong("bundle-poll"), help: "Bundle polling window, MIN..MAX (such as 5s..10s; default 60s..120s, as OPA).")
    var bundlePoll: String?

    @Option(name: .customLong("bundle-persist"), help: "Keep the last activated bundle in this directory and serve it at start when the service is down.")
    var bundlePersist: String?

    @Option(name: .customLong("decision-log-url"), help: "Upload decision logs (gzip'd JSON batches, as OPA) to this URL.")
    var decisionLogURL: String?

    @OptionGroup var limits: LimitOptions

    @Option(name: .customLong("grpc-tls-cert"), help: "PEM certificate chain for the gRPC listener.")
    var grpcTLSCert: String?
    @Option(name: .customLong("grpc-tls-key"), help: "PEM private key for the gRPC listener.")
    var grpcTLSKey: String?
    @Option(name: .customLong("http-tls-cert"), help: "PEM certificate chain for the HTTP listener.")
    var httpTLSCert: String?
    @Option(name: .customLong("http-tls-key"), help: "PEM private key for the HTTP listener.")
    var httpTLSKey: String?

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
        if trustVerifiedClaimsHeader { settings.verifiedClaimsHeader = "x-warden-verified-claims" }
        switch (grpcTLSCert, grpcTLSKey) {
        case (let cert?, let key?): settings.grpc.tls = .init(certificate: cert, key: key)
        case (nil, nil): break
        default: throw ValidationError("give both --grpc-tls-cert and --grpc-tls-key")
        }
        switch (httpTLSCert, httpTLSKey) {
        case (let cert?, let key?): settings.http.tls = .init(certificate: cert, key: key)
        case (nil, nil): break
        default: throw ValidationError("give both --http-tls-cert and --http-tls-key")
        }
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
