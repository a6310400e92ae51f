import DecisionPoint
import Dispatch
import ExtAuthz
import Foundation
import GRPCCore
import NIOCore
import NIOPosix
import NIOSSL
import PolicyCore
import PolicyLoading

/// `warden serve`: the gRPC and HTTP listeners over one live policy store, with reload, decision logs and
/// metrics. `run` returns after a graceful shutdown (SIGTERM or SIGINT, or cancellation).
public final class AuthorizationServer: Sendable {
    public let configuration: ServerConfiguration
    public let store: PolicyStore
    public let metrics: ServerMetrics
    public let handler: CheckHandler
    public let logger: ServerLogger
    let decisionLog: DecisionLog?

    /// Sizes the process's event loops to `threads` and runs Swift tasks on them too, so a check is read,
    /// decided and answered on one thread. Without it each check hops from the loop to Swift's thread pool and
    /// back, and on a server with few cores those hops (context switches) cost more than the decision. Call
    /// once, before anything starts: blocking work (policy loads) then goes to `NIOThreadPool`.
    public static func runOnEventLoops(threads: Int) {
        NIOSingletons.groupLoopCountSuggestion = threads
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// Sizes the event loops of a server not given `--threads`: one per core the process may run on. NIO counts
    /// cgroup limits; this also honours the CPU affinity mask (taskset, a cpuset), so a server pinned to one core
    /// does not run loops that take turns on it. Call once, before anything starts.
    public static func sizeEventLoopsToUsableCores() {
        NIOSingletons.groupLoopCountSuggestion = usableCores()
    }

    static func usableCores() -> Int {
        let cores = System.coreCount
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }),
              let allowed = allowedCPUCount(String(line.dropFirst("Cpus_allowed_list:".count)))
        else { return cores }
        return max(1, min(cores, allowed))
    }

    /// The number of CPUs in a Linux CPU list such as `0-3,8,10-11`; nil when it does not parse.
    static func allowedCPUCount(_ list: String) -> Int? {
        var count = 0
        for range in list.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let bounds = range.split(separator: "-").map { Int($0) }
            switch bounds.count {
            case 1: guard bounds[0] != nil else { return nil }; count += 1
            case 2:
                guard let low = bounds[0], let high = bounds[1], high >= low else { return nil }
                count += high - low + 1
            default: return nil
            }
        }
        return count > 0 ? count : nil
    }

    /// Runs blocking work (compiling a policy set) on NIO's blocking pool, never on an event loop.
    static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }

    /// The ports actually bound (useful when 0 asked for an ephemeral one).
    public struct Bound: Sendable {
        public var grpcPort: Int
        public var httpPort: Int
    }

    public init(configuration: ServerConfiguration) throws {
        self.configuration = configuration
        logger = ServerLogger(level: configuration.logLevel)
        metrics = ServerMetrics()
        decisionLog = try configuration.decisionLog.map { try DecisionLog(destination: $0) }
        let loader = PolicyLoader(options: .init(
            rootNamespace: configuration.rootNamespace, defaultNamespace: configuration.defaultNamespace,
            providers: configuration.providers, limits: configuration.limits))
        store = PolicyStore(paths: configuration.policyPaths, loader: loader)
        handler = CheckHandler(
            decisionPoint: store.decisionPoint, mapper: CheckRequestMapper(options: configuration.mapperOptions),
            metrics: metrics, log: decisionLog)
        let metrics = self.metrics, logger = self.logger
        store.observe { outcome in
            switch outcome {
            case .installed(let snapshot, let warnings):
                metrics.recordReload(
                    policies: snapshot.authorization.policies.count, modules: snapshot.moduleCount, revision: snapshot.revision)
                for warning in warnings { logger.warning(warning.description) }
                logger.info(
                    "loaded revision \(snapshot.revision): \(snapshot.authorization.policies.count) policies and \(snapshot.moduleCount) Rego modules from \(snapshot.sources.count) files")
            case .refused(let errors):
                metrics.recordReloadFailure()
                logger.error("policies not loaded; the last good set keeps serving:")
                for error in errors { logger.error(error.description) }
            case .unchanged:
                break
            }
        }
    }

    /// The policies directory, when the server was given exactly one directory (the policy API writes there).
    public var policyDirectory: String? {
        guard configuration.policyPaths.count == 1, let only = configuration.policyPaths.first else { return nil }
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: only, isDirectory: &isDirectory) && isDirectory.boolValue ? only : nil
    }

    /// How long in-flight RPCs may take to finish after SIGTERM.
    public var shutdownGracePeriod: Duration { .seconds(10) }

    /// Loads policies, binds both listeners, then serves until SIGTERM/SIGINT or cancellation.
    public func run(onReady: @escaping @Sendable (Bound) -> Void = { _ in }) async throws {
        _ = try await Self.blocking { [store] in store.reload() }

        let listener = GRPCListener(
            options: .init(
                host: configuration.grpc.host, port: configuration.grpc.port, tls: try grpcTLS(),
                maxMessageBytes: configuration.maxGRPCMessageBytes),
            inPlace: [.check(handler)])
        let grpcServer = GRPCServer(transport: listener, services: [HealthService { [store] in store.status.ready }])
        let api = HTTPAPI(
            handler: handler, store: store, documents: policyDirectory.map { PolicyDocuments(directory: $0) },
            metrics: metrics, extAuthzPrefix: configuration.extAuthzPrefix)
        let http = try await HTTPServer(
            host: configuration.http.host, port: configuration.http.port, tls: try httpTLS(),
            maxBodyBytes: configuration.maxHTTPBodyBytes
        ) { request, connection in
            await api.handle(request, connection: connection)
        }.bind()

        let signals = SignalEvents()
        let grpcTask = Task { try await grpcServer.serve() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await http.serve() }
            if let interval = configuration.watchInterval {
                group.addTask { [store] in
                    await store.watch(every: interval) { reload in _ = try? await Self.blocking(reload) }
                }
            }
            if let decisionLog { group.addTask { await decisionLog.run() } }

            let grpcPort: Int
            do {
                grpcPort = try await listener.listeningAddress.port ?? configuration.grpc.port
            } catch {
                grpcTask.cancel()
                throw error
            }
            let httpPort = http.port ?? configuration.http.port
            logger.info("gRPC listening on \(configuration.grpc.host):\(grpcPort)")
            logger.info("HTTP listening on \(configuration.http.host):\(httpPort)")
            onReady(Bound(grpcPort: grpcPort, httpPort: httpPort))

            // Wait for a signal: SIGHUP reloads; SIGTERM and SIGINT shut down gracefully.
            for await signal in signals.stream {
                if signal == SIGHUP {
                    logger.info("SIGHUP: reloading policies")
                    _ = try? await Self.blocking { [store] in store.reload() }
                    continue
                }
                logger.info("shutting down")
                break
            }
            // New RPCs are refused and in-flight ones finish, within a grace period; then everything stops.
            grpcServer.beginGracefulShutdown()
            let grace = Task {
                try? await Task.sleep(for: shutdownGracePeriod)
                grpcTask.cancel()
            }
            _ = try? await grpcTask.value
            grace.cancel()
            group.cancelAll()
        }
        decisionLog?.flush()
    }

    func grpcTLS() throws -> NIOSSLContext? {
        guard let tls = configuration.grpc.tls else { return nil }
        var configuration = try Self.serverTLS(tls)
        configuration.applicationProtocols = ["h2"]
        return try NIOSSLContext(configuration: configuration)
    }

    func httpTLS() throws -> NIOSSLContext? {
        try configuration.http.tls.map { try NIOSSLContext(configuration: Self.serverTLS($0)) }
    }

    static func serverTLS(_ tls: ServerConfiguration.TLS) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(tls.certificate).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: tls.key, format: .pem)
        return .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
    }
}

/// SIGHUP, SIGTERM and SIGINT as an async stream (the default actions are disabled while it lives).
final class SignalEvents {
    let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32] = [SIGHUP, SIGTERM, SIGINT]) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        self.stream = stream
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }
}
