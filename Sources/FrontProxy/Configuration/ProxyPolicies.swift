import Documents
import Foundation
import Identity
import PolicyCore
import Synchronization

/// The authentication policies a proxy enforces, from `--policies DIR`: PeerAuthentication and RequestAuthentication
/// documents (other kinds are skipped), read again when a file changes. A set with any error is refused whole and
/// the last good one keeps serving; what applies to the proxy's workload is resolved once per load into an immutable
/// `ProxySnapshot`, swapped atomically.
public final class ProxyPolicies: Sendable {
    /// What the snapshot is made from besides the policies.
    public struct Base: Sendable {
        public var settings: ExchangeSettings
        public var rootNamespace: String
        public var defaultNamespace: String
        public var authenticatorOptions: RequestAuthenticator.Options

        public init(
            settings: ExchangeSettings, rootNamespace: String = "istio-system", defaultNamespace: String = "default",
            authenticatorOptions: RequestAuthenticator.Options = .init()
        ) {
            self.settings = settings
            self.rootNamespace = rootNamespace
            self.defaultNamespace = defaultNamespace
            self.authenticatorOptions = authenticatorOptions
        }
    }

    public enum LoadOutcome: Sendable {
        /// A new snapshot serves; the warnings of its documents and of its resolution.
        case installed(ProxySnapshot, warnings: [Diagnostic])
        /// The files have errors; the previous snapshot keeps serving.
        case refused([Diagnostic])
        case unchanged
    }

    public let directory: String?
    public let keySource: (any KeySource)?
    private struct State {
        var base: Base
        var snapshot: ProxySnapshot
        var policies = AuthenticationPolicies()
        var fingerprint: [String: Data]?
        var revision = 0
    }
    private let state: Mutex<State>

    /// Extensions of the files read.
    public static let extensions: Set<String> = ["yaml", "yml", "json"]

    /// A store serving `base` with no policies until `reload` loads `directory`.
    public init(directory: String?, base: Base, keySource: (any KeySource)? = nil) {
        self.directory = directory
        self.keySource = keySource
        let snapshot = Self.snapshot(AuthenticationPolicies(), base: base, keySource: keySource, revision: 0).snapshot
        state = Mutex(State(base: base, snapshot: snapshot))
    }

    /// The snapshot serving now.
    public var current: ProxySnapshot { state.withLock { $0.snapshot } }

    /// Changes the non-policy part of the snapshot (say, the proxy's own identity after a certificate rotation).
    public func updateBase(_ change: (inout Base) -> Void) {
        state.withLock { state in
            change(&state.base)
            // The workload does not change, so the authenticator (and its cache of verified tokens) stays.
            var settings = state.base.settings
            settings.authenticator = state.snapshot.settings.authenticator
            state.snapshot.settings = settings
        }
    }

    /// Loads the directory when its files changed (or always, with `force`).
    public func reload(force: Bool = false) -> LoadOutcome {
        guard let directory else { return .unchanged }
        let files = DocumentFiles.files(under: directory, extensions: Self.extensions)
        var contents: [String: Data] = [:]
        for file in files { contents[file] = FileManager.default.contents(atPath: file) ?? Data() }
        if !force, state.withLock({ $0.fingerprint == contents }) { return .unchanged }
        var policies = AuthenticationPolicies()
        var problems: [Diagnostic] = []
        if !DocumentFiles.isDirectory(directory) {
            problems.append(Diagnostic(code: Diagnostic.Code.io, message: "`\(directory)` is not a directory"))
        }
        let base = state.withLock { $0.base }
        for file in files {
            guard let data = contents[file], let text = String(data: data, encoding: .utf8) else {
                problems.append(Diagnostic(
                    code: Diagnostic.Code.io, message: "`\(file)` is not UTF-8 text", span: SourceSpan(file: file, line: 1, column: 1)))
                continue
            }
            let parsed = YAMLDocuments.parse(text, file: file)
            problems += parsed.diagnostics
            policies.append(AuthenticationPolicies.decode(parsed.documents, defaultNamespace: base.defaultNamespace))
        }
        problems += policies.diagnostics + policies.duplicateDiagnostics
        let errors = problems.filter(\.isError)
        guard errors.isEmpty else {
            state.withLock { $0.fingerprint = contents }
            return .refused(errors.sortedByPlace())
        }
        let installed = state.withLock { state -> (ProxySnapshot, [Diagnostic]) in
            state.revision += 1
            let made = Self.snapshot(policies, base: state.base, keySource: keySource, revision: state.revision)
            state.policies = policies
            state.snapshot = made.snapshot
            state.fingerprint = contents
            return (made.snapshot, made.warnings)
        }
        prefetchKeys(installed.0)
        let warnings = problems.filter { $0.severity == .warning } + installed.1
        return .installed(installed.0, warnings: warnings)
    }

    /// Watches the directory every `interval` until cancelled, reporting what each change did.
    public func watch(every interval: Duration, report: @Sendable (LoadOutcome) -> Void) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            let outcome = reload()
            if case .unchanged = outcome { continue }
            report(outcome)
        }
    }

    /// Fetches the remote key sets of the workload's rules ahead of the first request that needs them.
    private func prefetchKeys(_ snapshot: ProxySnapshot) {
        guard let keySource, let authenticator = snapshot.settings.authenticator else { return }
        for rule in authenticator.rules {
            guard case .remote(let location) = rule.keys else { continue }
            Task { _ = await keySource.keys(for: location, timeout: rule.timeout) }
        }
    }

    static func snapshot(
        _ policies: AuthenticationPolicies, base: Base, keySource: (any KeySource)?, revision: Int
    ) -> (snapshot: ProxySnapshot, warnings: [Diagnostic]) {
        let workload = base.settings.workload
        let peer = PeerAuthenticationSet(policies: policies.peer, rootNamespace: base.rootNamespace)
        let resolution = peer.resolve(namespace: workload.namespace, labels: workload.labels, declaredPorts: workload.declaredPorts)
        let request = RequestAuthenticationSet(policies: policies.request, rootNamespace: base.rootNamespace)
        let rules = request.rules(forNamespace: workload.namespace, labels: workload.labels)
        var settings = base.settings
        settings.authenticator = rules.isEmpty
            ? nil : RequestAuthenticator(rules: rules, keySource: keySource, options: base.authenticatorOptions)
        return (ProxySnapshot(settings: settings, peerAuthentication: resolution, revision: revision), resolution.warnings)
    }
}
