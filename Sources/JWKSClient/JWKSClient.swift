import Crypto
import Identity
import JOSE
import NIOSSL
import Networking
import PolicyCore
import Synchronization

/// Fetches JSON Web Key Sets over HTTP or HTTPS and keeps them fresh: the `KeySource` the request authenticator
/// reads remote keys through.
///
/// - The first use of a location fetches it (callers wait, up to their timeout); concurrent callers share one fetch.
/// - Every location fetched once is refreshed in the background at `refreshInterval`.
/// - A failed fetch keeps the last good keys; the background retries sooner (`retryInterval`) until it succeeds.
///   A location that never answered fails requests at once between those retries.
/// - A token naming an unknown `kid` triggers a refetch, at most once per `minimumRefetchInterval` per location,
///   so a flood of made-up `kid`s cannot turn into a flood of fetches.
/// - `jwksUri` locations are fetched directly; a discovery location first reads the issuer's
///   `/.well-known/openid-configuration` for its `jwks_uri`.
public final class JWKSClient: KeySource {
    public struct Configuration: Sendable {
        /// How often a key set is fetched again in the background (Istio configures Envoy with 5 minutes).
        public var refreshInterval: Duration
        /// After a failed background fetch, how soon to try again.
        public var retryInterval: Duration
        /// The least time between two fetches triggered by unknown `kid`s.
        public var minimumRefetchInterval: Duration
        /// The timeout of background fetches.
        public var fetchTimeout: Duration
        /// Key set documents larger than this are refused.
        public var maximumDocumentSize: Int
        /// How HTTPS servers are verified (system roots by default).
        public var tls: TLSConfiguration
        public var userAgent: String
        /// The clock the fetch intervals are measured on; tests move it instead of waiting.
        public var now: @Sendable () -> ContinuousClock.Instant

        public init(
            refreshInterval: Duration = .seconds(300),
            retryInterval: Duration = .seconds(10),
            minimumRefetchInterval: Duration = .seconds(30),
            fetchTimeout: Duration = .seconds(5),
            maximumDocumentSize: Int = 1 << 20,
            tls: TLSConfiguration = .makeClientConfiguration(),
            userAgent: String = "warden-jwks",
            now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
        ) {
            self.refreshInterval = refreshInterval
            self.retryInterval = retryInterval
            self.minimumRefetchInterval = minimumRefetchInterval
            self.fetchTimeout = fetchTimeout
            self.maximumDocumentSize = maximumDocumentSize
            self.tls = tls
            self.userAgent = userAgent
            self.now = now
        }
    }

    /// What is known about one location.
    public struct Status: Sendable {
        public var keys: KeySnapshot?
        /// The error of the most recent fetch, when it failed.
        public var lastError: JOSEError?
        public var successfulFetches: Int
        public var failedFetches: Int
    }

    private struct Entry {
        var snapshot: KeySnapshot?
        var digest: [UInt8]?
        var inFlight: Task<Result<KeySnapshot, JOSEError>, Never>?
        var lastAttempt: ContinuousClock.Instant?
        var refreshing = false
        var refresher: Task<Void, Never>?
        var lastError: JOSEError?
        var successes = 0
        var failures = 0
    }

    private struct State {
        var entries: [RemoteKeys: Entry] = [:]
        var nextRevision: UInt64 = 1
        var shutDown = false
    }

    public let configuration: Configuration
    private let client: ControlPlaneClient
    private let state = Mutex(State())

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.client = ControlPlaneClient(options: .init(tls: configuration.tls, userAgent: configuration.userAgent))
    }

    deinit {
        state.withLock { state in
            for entry in state.entries.values {
                entry.refresher?.cancel()
                entry.inFlight?.cancel()
            }
        }
    }

    /// Stops background refreshing. Keys already held stay readable.
    public func shutdown() {
        let tasks = state.withLock { state -> [Task<Void, Never>] in
            state.shutDown = true
            let tasks = state.entries.values.compactMap(\.refresher)
            for key in state.entries.keys { state.entries[key]?.refresher = nil }
            return tasks
        }
        tasks.forEach { $0.cancel() }
    }

    // MARK: - KeySource

    public func cachedKeys(for location: RemoteKeys) -> KeySnapshot? {
        state.withLock { $0.entries[location]?.snapshot }
    }

    public func keys(for location: RemoteKeys, timeout: Duration) async -> Result<KeySnapshot, JOSEError> {
        let (held, recentFailure) = state.withLock { state -> (KeySnapshot?, JOSEError?) in
            guard let entry = state.entries[location] else { return (nil, nil) }
            // While a location has never answered, requests fail fast between attempts instead of each starting a
            // fetch; the background keeps retrying.
            let recent = entry.inFlight == nil && entry.lastAttempt.map { configuration.now() - $0 < configuration.retryInterval } ?? false
            return (entry.snapshot, recent ? entry.lastError : nil)
        }
        if let held { return .success(held) }
        if let recentFailure { return .failure(recentFailure) }
        return await fetch(location, timeout: timeout)
    }

    public func refresh(_ location: RemoteKeys, unknownKeyID: String, timeout: Duration) async -> Result<KeySnapshot, JOSEError> {
        let (held, recent) = state.withLock { state -> (KeySnapshot?, Bool) in
            let entry = state.entries[location]
            let recent = entry?.lastAttempt.map { configuration.now() - $0 < configuration.minimumRefetchInterval } ?? false
            return (entry?.snapshot, recent)
        }
        if recent, let held { return .success(held) }
        let result = await fetch(location, timeout: timeout)
        if case .failure = result, let held { return .success(held) }
        return result
    }

    // MARK: - Inspection and prefetching

    /// What the client holds for `location`.
    public func status(of location: RemoteKeys) -> Status? {
        state.withLock { state in
            state.entries[location].map {
                Status(keys: $0.snapshot, lastError: $0.lastError, successfulFetches: $0.successes, failedFetches: $0.failures)
            }
        }
    }

    /// Fetches every location now (concurrently), so the first requests need not wait.
    public func prefetch(_ locations: [RemoteKeys]) async {
        await withTaskGroup(of: Void.self) { group in
            for location in locations {
                group.addTask { _ = await self.keys(for: location, timeout: self.configuration.fetchTimeout) }
            }
        }
    }

    // MARK: - Fetching

    /// Fetches `location`, joining a fetch already under way.
    private func fetch(_ location: RemoteKeys, timeout: Duration) async -> Result<KeySnapshot, JOSEError> {
        let task = state.withLock { state -> Task<Result<KeySnapshot, JOSEError>, Never> in
            if let running = state.entries[location]?.inFlight { return running }
            let task = Task { await self.performFetch(location, timeout: timeout) }
            state.entries[location, default: Entry()].inFlight = task
            state.entries[location]!.lastAttempt = configuration.now()
            return task
        }
        return await task.value
    }

    private func performFetch(_ location: RemoteKeys, timeout: Duration) async -> Result<KeySnapshot, JOSEError> {
        let outcome: Result<(JWKSet, [UInt8]), JOSEError>
        do {
            outcome = .success(try await download(location, timeout: timeout))
        } catch {
            outcome = .failure(error)
        }
        let (result, startRefresher) = state.withLock { state -> (Result<KeySnapshot, JOSEError>, Bool) in
            var entry = state.entries[location, default: Entry()]
            entry.inFlight = nil
            let result: Result<KeySnapshot, JOSEError>
            switch outcome {
            case .success(let (keys, digest)):
                if entry.digest != digest || entry.snapshot == nil {
                    entry.snapshot = KeySnapshot(keys: keys, revision: state.nextRevision)
                    entry.digest = digest
                    state.nextRevision += 1
                }
                entry.lastError = nil
                entry.successes += 1
                result = .success(entry.snapshot!)
            case .failure(let error):
                entry.lastError = error
                entry.failures += 1
                result = .failure(error)
            }
            let start = !entry.refreshing && !state.shutDown
            if start { entry.refreshing = true }
            state.entries[location] = entry
            return (result, start)
        }
        if startRefresher {
            let succeeded = if case .success = result { true } else { false }
            startRefreshing(location, firstDelay: succeeded ? configuration.refreshInterval : min(configuration.retryInterval, configuration.refreshInterval))
        }
        return result
    }

    /// Refreshes `location` in the background until shutdown: at `refreshInterval` after a success, at
    /// `retryInterval` after a failure (the last good keys stay in use meanwhile).
    private func startRefreshing(_ location: RemoteKeys, firstDelay: Duration) {
        let refreshInterval = configuration.refreshInterval
        let retryInterval = configuration.retryInterval
        let timeout = configuration.fetchTimeout
        let task = Task { [weak self] in
            var delay = firstDelay
            while !Task.isCancelled {
                do { try await Task.sleep(for: delay) } catch { return }
                guard let self else { return }
                let result = await self.fetch(location, timeout: timeout)
                if case .success = result { delay = refreshInterval } else { delay = min(retryInterval, refreshInterval) }
            }
        }
        let keep = state.withLock { state -> Bool in
            guard !state.shutDown else { return false }
            state.entries[location]?.refresher = task
            return true
        }
        if !keep { task.cancel() }
    }

    /// Downloads and parses one key set; returns it with the SHA-256 of the document, to notice changes.
    private func download(_ location: RemoteKeys, timeout: Duration) async throws(JOSEError) -> (JWKSet, [UInt8]) {
        let deadline = ContinuousClock.now + timeout
        let uri: String
        switch location {
        case .uri(let text):
            uri = text
        case .discovery(let issuer):
            uri = try await discoverJWKSURI(issuer: issuer, timeout: timeout)
        }
        let body = try await getJSON(uri, timeout: deadline - ContinuousClock.now, what: "jwks")
        let keys: JWKSet
        do {
            keys = try JWKSet.parse(String(decoding: body, as: UTF8.self))
        } catch {
            throw JOSEError(.keysUnavailable, "jwks from `\(uri)` is invalid: \(error.message)")
        }
        guard !keys.keys.isEmpty else {
            throw JOSEError(.keysUnavailable, "jwks from `\(uri)` has no usable key")
        }
        return (keys, Array(SHA256.hash(data: body)))
    }

    /// The `jwks_uri` of an OpenID provider.
    private func discoverJWKSURI(issuer: String, timeout: Duration) async throws(JOSEError) -> String {
        var base = issuer
        while base.hasSuffix("/") { base.removeLast() }
        let configurationURI = base + "/.well-known/openid-configuration"
        let body = try await getJSON(configurationURI, timeout: timeout, what: "openid configuration")
        guard let document = try? JSONReader.parse(body), let jwksURI = document["jwks_uri"]?.stringValue else {
            throw JOSEError(.keysUnavailable, "the openid configuration of `\(issuer)` has no `jwks_uri`")
        }
        return jwksURI
    }

    private func getJSON(_ uri: String, timeout: Duration, what: String) async throws(JOSEError) -> [UInt8] {
        let url: HTTPURL
        switch HTTPURL.parse(uri) {
        case .success(let parsed): url = parsed
        case .failure(let problem): throw JOSEError(.keysUnavailable, "cannot fetch \(what) from `\(uri)`: \(problem.message)")
        }
        let response: ControlPlaneClient.Response
        do {
            response = try await client.get(
                url.description, timeout: timeout, maximumBodyBytes: configuration.maximumDocumentSize)
        } catch {
            throw JOSEError(.keysUnavailable, "jwks remote fetch failed: \(error.message)")
        }
        guard response.status == 200 else {
            throw JOSEError(.keysUnavailable, "jwks remote fetch failed: \(url.host) answered \(response.status)")
        }
        return response.body
    }
}
