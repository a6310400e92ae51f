import AuthzPolicy
import DecisionPoint
import ExtAuthz
import Foundation
import GRPCCore
import Logging
import Networking
import NIOCore
import PolicyCore
import PolicyLoading
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `warden serve`: the data plane (ext_authz over gRPC and HTTP, OPA's data queries, health) and the management
/// API (policies, status, metrics) on listeners of their own, over one live policy store, with reload, decision logs
/// and metrics, run as one `ServiceGroup`. `run` returns after a graceful shutdown (SIGTERM or SIGINT, or
/// cancellation).
public final class AuthorizationServer: Sendable {
    public let configuration: ServerConfiguration
    public let store: PolicyStore
    public let metrics: ServerMetrics
    public let handler: CheckHandler
    public let logger: Logger
    let decisionLog: DecisionLog?
    /// Polls the bundle service when policies come from a bundle.
    public let bundlePoller: BundlePoller?
    /// Uploads decision logs when a remote service is configured.
    public let uploader: DecisionLogUploader?
    /// Who may use the management API.
    public let authorizer: AdminAuthorizer
    /// True until the first load of the policy paths finishes (a persisted set may be tried after it).
    let starting = Mutex(true)

    /// The ports actually bound (useful when 0 asked for an ephemeral one).
    public struct Bound: Sendable {
        public var grpcPort: Int
        public var httpPort: Int
        /// Nil when the management API is off.
        public var adminPort: Int?
    }

    /// Refuses settings that cannot serve safely (`ServerConfiguration.startupChecks`) and an authorization policy
    /// that does not compile, with a `StartupError` naming every problem.
    public init(configuration: ServerConfiguration) throws {
        self.configuration = configuration
        let (problems, warnings) = configuration.startupChecks()
        if !problems.isEmpty { throw StartupError(problems) }
        authorizer = AdminAuthorizer(
            authentication: configuration.admin.authentication,
            policy: try configuration.admin.authorizationPolicy.map { file throws(StartupError) in
                try AdminAuthorizer.load(file: file, limits: configuration.limits)
            })
        logger = .standardError(level: configuration.logLevel.level)
        for warning in warnings { logger.warning("\(warning)") }
        metrics = ServerMetrics()
        decisionLog = try configuration.decisionLog.map { try DecisionLog(destination: $0) }
        let loader = PolicyLoader(options: .init(
            rootNamespace: configuration.rootNamespace, defaultNamespace: configuration.defaultNamespace,
            providers: configuration.providers, limits: configuration.limits))
        let paths = configuration.bundle == nil ? configuration.policyPaths : []
        store = PolicyStore(
            paths: paths, loader: loader,
            persisted: configuration.bundle == nil && configuration.persistPolicies
                ? PersistedPolicies(directory: configuration.persistenceDirectory, paths: paths) : nil)
        let metrics = self.metrics, logger = self.logger, store = self.store
        // Bundles and log uploads share one control-plane client; an unreachable service fails in two seconds.
        let client = configuration.bundle != nil || configuration.decisionLogUpload != nil
            ? ControlPlaneClient(options: .init(connectTimeout: .seconds(2))) : nil
        uploader = configuration.decisionLogUpload.flatMap { settings in
            client.map {
                DecisionLogUploader(
                    settings: settings, labels: configuration.labels.merging(["app": "warden"]) { a, _ in a },
                    metrics: metrics, client: $0)
            }
        }
        handler = CheckHandler(
            decisionPoint: store.decisionPoint, mapper: CheckRequestMapper(options: configuration.mapperOptions),
            metrics: metrics, log: decisionLog, upload: uploader)
        bundlePoller = configuration.bundle.flatMap { settings in
            client.map {
                BundlePoller(
                    settings: settings, store: store, metrics: metrics, logger: logger,
                    persistenceDirectory: configuration.persistenceDirectory, client: $0)
            }
        }
        let persistWarning = Mutex<String?>(nil)
        store.observe { [weak self, weak store] outcome in
            switch outcome {
            case .installed(let snapshot, let warnings):
                // A set that cannot be persisted keeps serving; say so once per distinct reason.
                let problem = store?.status.persistError?.description
                if persistWarning.withLock({ last in defer { last = problem }; return last != problem }), let problem {
                    logger.warning("the last good policy set is not persisted (a restart with a broken file would serve none): \(problem)")
                }
                metrics.recordReload(
                    policies: snapshot.authorization.policies.count, modules: snapshot.moduleCount, revision: snapshot.revision)
                for warning in warnings { logger.warning("\(warning.description)") }
                let (policies, modules, files) = (snapshot.authorization.policies.count, snapshot.moduleCount, snapshot.sources.count)
                logger.info("""
                    loaded revision \(snapshot.revision): \(policies) \(policies == 1 ? "policy" : "policies") and \
                    \(modules) Rego \(modules == 1 ? "module" : "modules") from \(files) \(files == 1 ? "file" : "files")
                    """)
            case .refused(let errors):
                metrics.recordReloadFailure()
                // At start-up, or after failures only, there is no good set: checks are denied (fail closed).
                let persisted = store?.persisted.map { FileManager.default.fileExists(atPath: $0.file) } ?? false
                logger.error(store?.status.ready == true
                    ? "policies not loaded; the last good set keeps serving:"
                    : self?.starting.withLock({ $0 }) == true && persisted
                    ? "policies not loaded; no policy set is serving yet, the persisted last good set is tried next:"
                    : "policies not loaded; no policy set is serving, every check is denied (fail closed):")
                for error in errors { logger.error("\(error.description)") }
            case .unchanged:
                break
            }
        }
    }

    /// The policies directory, when the server was given exactly one directory (the policy API writes there).
    public var policyDirectory: String? {
        guard configuration.bundle == nil, configuration.policyPaths.count == 1, let only = configuration.policyPaths.first else { return nil }
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: only, isDirectory: &isDirectory) && isDirectory.boolValue ? only : nil
    }

    /// How long in-flight RPCs may take to finish after SIGTERM.
    public var shutdownGracePeriod: Duration { .seconds(10) }

    /// Loads policies, binds both listeners, then serves until SIGTERM/SIGINT or cancellation.
    public func run(onReady: @escaping @Sendable (Bound) -> Void = { _ in }) async throws {
        if bundlePoller == nil {
            let outcome = try await EventLoops.blocking { [store] in store.reload() }
            starting.withLock { $0 = false }
            if case .refused(let errors) = outcome { try await restorePersisted(after: errors) }
        }

        // Data-plane listeners verify client certificates when presented (so `/health` stays open to probes) and
        // answer decisions only to allow-listed clients when they have an allow-list; the admin listener
        // requires a certificate whenever it has a client CA.
        let grpcTLS = try configuration.grpc.tls.map {
            try Self.serverTLS($0, protocols: ["h2"], clientCertificates: $0.clientCA == nil ? .none : .optional)
        }
        let httpTLS = try configuration.http.tls.map {
            try Self.serverTLS($0, protocols: [], clientCertificates: $0.clientCA == nil ? .none : .optional)
        }
        let adminTLS = try configuration.admin.listener?.tls.map {
            try Self.serverTLS($0, protocols: [], clientCertificates: $0.clientCA == nil ? .none : .required)
        }
        func identify(_ listener: ServerConfiguration.Listener, _ name: String) -> PeerIdentifier? {
            guard listener.tls?.clientCA != nil else { return nil }
            return ClientIdentification.dataPlane(allowed: Set(listener.allowedClients), listener: name, logger: logger)
        }
        let limits = configuration.grpcLimits
        let listener = GRPCListener(
            options: limits.options(
                host: configuration.grpc.host, port: configuration.grpc.port, tls: grpcTLS,
                identifyPeer: identify(configuration.grpc, "gRPC"), maxMessageBytes: configuration.maxGRPCMessageBytes,
                observer: ListenerLimitReport(metrics: metrics, logger: logger)),
            inPlace: [.check(handler, allowList: !configuration.grpc.allowedClients.isEmpty)])
        logger.info("\(limits.summary(maxMessageBytes: configuration.maxGRPCMessageBytes))")
        let grpcServer = GRPCServer(transport: listener, services: [HealthService { [store] in store.status.ready }])
        let api = HTTPAPI(
            handler: handler, store: store, documents: policyDirectory.map { PolicyDocuments(directory: $0) },
            metrics: metrics, extAuthzPrefix: configuration.extAuthzPrefix,
            statusExtras: { [bundlePoller, uploader] in Self.statusExtras(bundlePoller, uploader) },
            dataPlaneAllowList: !configuration.http.allowedClients.isEmpty, authorizer: authorizer,
            policyWrites: configuration.admin.policyWrites, adminAddress: configuration.admin.listener?.address)
        let http = try await HTTPServer(
            options: .init(
                host: configuration.http.host, port: configuration.http.port, tls: httpTLS,
                identifyPeer: identify(configuration.http, "HTTP"), maxBodyBytes: configuration.maxHTTPBodyBytes,
                idleTimeout: TimeAmount(configuration.httpLimits.idleTimeout),
                requestTimeout: TimeAmount(configuration.httpLimits.requestTimeout),
                maxConnections: configuration.httpLimits.maxConnections,
                maxBufferedBytes: configuration.httpLimits.maxBufferedBytes),
            reject: HTTPResponse.api,
            answer: .inPlace { request, connection in api.dataPlane(request, connection: connection) }
        ).bind()
        let descriptors = FileDescriptorLimit.raise()
        if limits.maxConnections + http.tracker.maximumConnections + 64 > descriptors {
            logger.warning("""
                the open-file limit (\(descriptors)) is below the connections the listeners may hold \
                (gRPC \(limits.maxConnections), HTTP \(http.tracker.maximumConnections)): past it new connections \
                fail; raise `ulimit -n` or lower --grpc-max-connections and --http-max-connections
                """)
        }
        let admin = try await configuration.admin.listener.asyncMap { settings in
            try await HTTPServer(
                options: .init(
                    host: settings.host, port: settings.port, tls: adminTLS,
                    identifyPeer: adminTLS == nil ? nil : ClientIdentification.admin,
                    maxBodyBytes: configuration.maxHTTPBodyBytes),
                reject: HTTPResponse.api
            ) { request, connection in
                await api.admin(request, connection: connection)
            }.bind()
        }

        // Shutdown runs in reverse order: the listeners drain first, the decision log is written last.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let decisionLog { services.append(.init(service: decisionLog.lines, serviceName: "decision-log")) }
        if let uploader {
            // Stops with the listeners drained (it is started before them), then sends what is buffered.
            services.append(.init(service: ClosureService {
                await cancelWhenGracefulShutdown { await uploader.run() }
            }, serviceName: "decision-log-upload"))
        }
        if let bundlePoller {
            services.append(.init(service: ClosureService {
                await cancelWhenGracefulShutdown {
                    await bundlePoller.run { work in _ = try? await EventLoops.blocking(work) }
                }
            }, serviceName: "bundle-poller"))
        }
        if let interval = configuration.watchInterval, bundlePoller == nil {
            services.append(.init(service: ClosureService { [store] in
                await cancelWhenGracefulShutdown {
                    await store.watch(every: interval) { reload in _ = try? await EventLoops.blocking(reload) }
                }
            }, serviceName: "policy-watch"))
        }
        let tls = [grpcTLS, httpTLS, adminTLS].compactMap { $0 }
        if !tls.isEmpty {
            services.append(.init(service: RepeatingService(every: .seconds(1)) { [logger] in
                for context in tls { Self.reload(context, logger: logger) }
            }, serviceName: "tls-reload"))
        }
        services.append(.init(service: SignalHandlerService(signals: [.sighup]) { [store, logger, bundlePoller] _ in
            if bundlePoller != nil {
                logger.info("SIGHUP: policies come from a bundle; the next poll picks up changes")
                return
            }
            logger.info("SIGHUP: reloading policies")
            _ = try? await EventLoops.blocking { store.reload() }
        }, serviceName: "sighup-reload"))
        services.append(.init(service: http, serviceName: "http-listener"))
        if let admin { services.append(.init(service: admin, serviceName: "admin-listener")) }
        services.append(.init(service: GRPCServerService(grpcServer), serviceName: "grpc-listener"))
        services.append(.init(
            service: ClosureService { [configuration, logger] in
                let grpcPort = try await listener.listeningAddress.port ?? configuration.grpc.port
                let httpPort = http.port ?? configuration.http.port
                logger.info("gRPC listening on \(configuration.grpc.host):\(grpcPort)")
                logger.info("HTTP listening on \(configuration.http.host):\(httpPort)")
                let adminPort = admin.map { $0.port ?? configuration.admin.listener?.port ?? 0 }
                if let adminPort, let settings = configuration.admin.listener {
                    let writes = configuration.admin.policyWrites ? "policy writes on" : "policy writes off"
                    logger.info(
                        "admin listening on \(settings.host):\(adminPort) (authentication \(configuration.admin.authentication.rawValue), \(writes))")
                }
                logger.info("\(configuration.guardedWorkloadSummary)")
                onReady(Bound(grpcPort: grpcPort, httpPort: httpPort, adminPort: adminPort))
            },
            successTerminationBehavior: .ignore, serviceName: "ready"))

        var group = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = shutdownGracePeriod
        group.logging.keys.serviceKey = "service"
        try await ServiceGroup(configuration: group).run()
        logger.info("stopped")
    }

    /// Serves the persisted last good set when the policy paths did not load at start, and says which.
    func restorePersisted(after errors: [Diagnostic]) async throws {
        let store = self.store
        guard let restored = try await EventLoops.blocking({ store.restorePersisted() }) else { return }
        switch restored {
        case .success(let set):
            let at = set.persistedAt.map(LineLog.timestamp) ?? "an unknown time"
            let failed = errors.first?.description ?? "unknown error"
            logger.warning("""
                policies did not load (\(failed)); serving the last good set persisted at \(at), revision \
                \(set.revision) (\(store.persisted?.file ?? "")), until the paths load again
                """)
        case .failure(let error):
            logger.error("the persisted policy set cannot serve; every check is denied (fail closed): \(error.description)")
        }
    }

    /// `/v1/status` members for the bundle (`bundle`) and the decision-log upload (`decision_logs`).
    static func statusExtras(_ poller: BundlePoller?, _ uploader: DecisionLogUploader?) -> [String: Value] {
        func time(_ date: Date?) -> Value { date.map { .string(LineLog.timestamp($0)) } ?? .null }
        var out: [String: Value] = [:]
        if let poller {
            let s = poller.status
            out["bundle"] = .object([
                "name": .string(s.name),
                "url": .string(s.url),
                "revision": s.revision.map(Value.string) ?? .null,
                "etag": s.etag.map(Value.string) ?? .null,
                "last_request": time(s.lastRequest),
                "last_successful_request": time(s.lastSuccessfulRequest),
                "last_successful_download": time(s.lastSuccessfulDownload),
                "last_successful_activation": time(s.lastSuccessfulActivation),
                "last_error": s.lastError.map { .object(["code": .string($0.code), "message": .string($0.message)]) } ?? .null,
                "last_error_at": time(s.lastErrorAt),
                "activations": .int(s.activations),
                "not_modified": .int(s.notModified),
                "failures": .int(s.failures),
                "from_persisted": .bool(s.fromPersisted),
            ])
        }
        if let uploader {
            let s = uploader.status
            out["decision_logs"] = .object([
                "url": .string(uploader.settings.url),
                "buffered": .int(s.buffered),
                "buffered_bytes": .int(s.bufferedBytes),
                "uploaded": .int(s.uploaded),
                "uploads": .int(s.uploads),
                "dropped": .int(s.dropped),
                "failures": .int(s.failures),
                "last_error": s.lastError.map(Value.string) ?? .null,
                "last_error_at": time(s.lastErrorAt),
                "last_upload": time(s.lastUpload),
            ])
        }
        return out
    }

    static func serverTLS(
        _ tls: ServerConfiguration.TLS, protocols: [String], clientCertificates: TLSSettings.PeerCertificates
    ) throws -> ReloadingTLSContext {
        do {
            return try ReloadingTLSContext(
                files: TLSFiles(certificateChain: tls.certificate, privateKey: tls.key, trustBundle: tls.clientCA),
                settings: TLSSettings(applicationProtocols: protocols, peerCertificates: clientCertificates), role: .server)
        } catch {
            throw Diagnostic(code: Diagnostic.Code.io, message: "tls: \(error)")
        }
    }

    /// Picks up a rotated certificate; a rotation that does not load keeps the old one and says why.
    static func reload(_ context: ReloadingTLSContext, logger: Logger) {
        do {
            if try context.reloadIfChanged() {
                logger.info("tls: loaded new certificate from `\(context.files.certificateChain ?? "")`")
            }
        } catch {
            logger.error("tls: keeping the previous certificate: \(error)")
        }
    }
}

extension Optional {
    /// `map` with an asynchronous transform.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
