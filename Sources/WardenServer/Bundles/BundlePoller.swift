import Crypto
import Foundation
import Logging
import Networking
import DecisionPoint
import PolicyCore
import PolicyLoading
import Synchronization

/// Downloads a bundle from an HTTP service and keeps the server on its newest good revision, as OPA's bundle
/// plugin does: `If-None-Match` with the ETag of the last *activated* bundle (304 keeps it), polling at a random
/// delay between the minimum and maximum, long polling when the service offers it; a new bundle is read within
/// its size limits, verified, compiled and swapped in atomically, and any failure keeps the last good set serving.
public final class BundlePoller: Sendable {
    public struct Status: Sendable {
        public var name: String
        public var url: String
        public var revision: String?
        public var etag: String?
        public var lastRequest: Date?
        public var lastSuccessfulRequest: Date?
        public var lastSuccessfulDownload: Date?
        public var lastSuccessfulActivation: Date?
        public var lastError: Diagnostic?
        public var lastErrorAt: Date?
        public var activations = 0
        public var notModified = 0
        public var failures = 0
        /// Whether the serving set came from the persisted copy (the service was not reached yet).
        public var fromPersisted = false
        /// SHA-256 of the activated bundle's bytes: a service without ETags that serves the same bytes again
        /// does not cause a recompile.
        var digest: [UInt8]?
    }

    public let settings: BundleSettings
    let store: PolicyStore
    let metrics: ServerMetrics
    let logger: Logger
    let persistenceDirectory: String
    let client: ControlPlaneClient
    private let state: Mutex<Status>

    public init(
        settings: BundleSettings, store: PolicyStore, metrics: ServerMetrics, logger: Logger,
        persistenceDirectory: String, client: ControlPlaneClient
    ) {
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.persistenceDirectory = persistenceDirectory
        self.client = client
        state = Mutex(Status(name: settings.name, url: settings.url))
    }

    public var status: Status { state.withLock { $0 } }

    /// The outcome of one poll.
    public enum Poll: Sendable, Equatable {
        case activated(String)
        case notModified
        case failed(String)
    }

    /// Activates the persisted bundle, if any, then polls until cancelled.
    public func run(offload: @escaping @Sendable (@escaping @Sendable () -> Void) async -> Void = { $0() }) async {
        if settings.persist { await offload { [self] in _ = activatePersisted() } }
        while !Task.isCancelled {
            let (_, again) = await poll(offload: offload)
            if again { continue }
            let low = settings.minDelay, high = settings.maxDelay
            let span = Double((high - low).components.attoseconds) / 1e18 + Double((high - low).components.seconds)
            let delay = low + .milliseconds(Double.random(in: 0...1) * span * 1000)
            do { try await Task.sleep(for: delay) } catch { return }
        }
    }

    /// Reads the persisted bundle and activates it; nil when there is none.
    @discardableResult
    public func activatePersisted() -> Poll? {
        let file = settings.persistedFile(in: persistenceDirectory)
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        let result = activate(Array(data), etag: nil, source: "persisted")
        if case .activated = result { state.withLock { $0.fromPersisted = true } }
        return result
    }

    /// One request: returns what happened and whether to ask again at once (long polling).
    public func poll(offload: @escaping @Sendable (@escaping @Sendable () -> Void) async -> Void = { $0() }) async -> (Poll, Bool) {
        var headers = settings.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if let etag = state.withLock({ $0.etag }) { headers.append(("If-None-Match", etag)) }
        var timeout = settings.timeout
        if let wait = settings.longPollingTimeout {
            headers.append(("Prefer", "wait=\(wait.components.seconds)"))
            timeout = timeout + wait
        }
        state.withLock { $0.lastRequest = Date() }
        let started = ContinuousClock.now
        let response: ControlPlaneClient.Response
        do {
            response = try await client.get(
                settings.url, headers: headers, timeout: timeout, maximumBodyBytes: settings.limits.maxCompressedBytes)
        } catch {
            let code = error.message.contains("larger than") ? OPABundle.Code.tooLarge : "bundle_download_error"
            return (fail(code, "bundle download: \(error.message)"), false)
        }
        if response.status == 304 {
            state.withLock {
                $0.lastSuccessfulRequest = Date()
                $0.notModified += 1
            }
            metrics.recordBundleNotModified()
            return (.notModified, longPolling(response))
        }
        guard response.status == 200 else {
            return (fail("bundle_download_error", "bundle download: the server answered \(response.status) for `\(settings.url)`"), false)
        }
        metrics.recordBundleDownload(ContinuousClock.now - started)
        let etag = response.header("etag")
        let bytes = response.body
        let result = Mutex<Poll>(.notModified)
        await offload { [self] in result.withLock { $0 = activate(bytes, etag: etag, source: "download") } }
        let outcome = result.withLock { $0 }
        if case .activated = outcome {
            state.withLock {
                $0.lastSuccessfulRequest = Date()
                $0.lastSuccessfulDownload = Date()
            }
        }
        return (outcome, longPolling(response))
    }

    private func longPolling(_ response: ControlPlaneClient.Response) -> Bool {
        settings.longPollingTimeout != nil && response.header("content-type") == "application/vnd.openpolicyagent.bundles"
    }

    /// Reads, verifies, compiles and installs a bundle; persists it when asked.
    func activate(_ bytes: [UInt8], etag: String?, source: String) -> Poll {
        let started = ContinuousClock.now
        let digest = Array(SHA256.hash(data: bytes))
        if let revision = state.withLock({ $0.digest == digest ? $0.revision : nil }) {
            state.withLock {
                $0.etag = etag
                $0.notModified += 1
            }
            metrics.recordBundleNotModified()
            return .activated(revision)
        }
        let bundle: OPABundle
        do {
            bundle = try OPABundle.read(bytes, limits: settings.limits)
            try bundle.verify(settings.verification)
        } catch {
            store.recordFailure([error])
            return fail(error.code, "\(source) bundle refused: \(error.message)", recorded: true)
        }
        switch store.activate(bundle) {
        case .installed(let snapshot, _):
            let revision = bundle.manifest.revision
            state.withLock {
                $0.revision = revision
                $0.etag = etag
                $0.digest = digest
                $0.lastSuccessfulActivation = Date()
                $0.activations += 1
                $0.lastError = nil
                $0.lastErrorAt = nil
                $0.fromPersisted = false
            }
            let took = ContinuousClock.now - started
            metrics.recordBundleActivation(took)
            let ms = Double(took.components.seconds) * 1000 + Double(took.components.attoseconds) / 1e15
            logger.info(
                "bundle `\(settings.name)` revision `\(revision)` activated from \(source) in \(Int(ms.rounded())) ms (\(bytes.count) bytes, snapshot \(snapshot.revision))")
            if settings.persist && source != "persisted" { persist(bytes) }
            return .activated(revision)
        case .refused(let errors):
            let first = errors.first
            return fail(first?.code ?? OPABundle.Code.format, "\(source) bundle refused: \(first?.description ?? "invalid")", recorded: true)
        case .unchanged:
            return .notModified
        }
    }

    private func persist(_ bytes: [UInt8]) {
        let file = settings.persistedFile(in: persistenceDirectory)
        let directory = (file as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let temporary = file + ".tmp"
            try Data(bytes).write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, file) == 0 else { throw CocoaError(.fileWriteUnknown) }
        } catch {
            logger.warning("cannot persist bundle `\(settings.name)` to `\(file)`: \(error)")
        }
    }

    private func fail(_ code: String, _ message: String, recorded: Bool = false) -> Poll {
        let diagnostic = Diagnostic(code: code, message: message)
        state.withLock {
            $0.lastError = diagnostic
            $0.lastErrorAt = Date()
            $0.failures += 1
        }
        if !recorded { store.recordFailure([diagnostic]) }
        metrics.recordBundleFailure()
        return .failed(message)
    }
}
