import AuthzPolicy
import DecisionPoint
import Documents
import Foundation
import PolicyCore
import Synchronization

/// The policies directory behind a live decision point: loads it, reloads it when it changes (or when asked,
/// as on SIGHUP), and keeps the last good set serving whenever a load fails.
///
/// Changes are found by polling a fingerprint of the directory (every rule file's path, size, modification and
/// change times and inode) rather than with inotify: it works the same on every platform and file system
/// (including the bind-mounted and symlink-swapped volumes Kubernetes uses for ConfigMaps), needs no extra thread
/// or file descriptors, and a one-second interval costs one `stat` per file.
///
/// A change is loaded only once it is complete: when two looks one interval apart see the same fingerprint, or at
/// the first look when every changed file was renamed into place after it was written (write-then-rename, which
/// is what operators should do). A file being written in place, say with a pause between its two documents, is
/// never loaded half-written unless the writer pauses for longer than the interval. A load whose files change
/// while they are being read is not installed either: the next looks decide again.
public final class PolicyStore: Sendable {
    /// What the store knows about its loads, for `/v1/status` and `/health`.
    public struct Status: Sendable {
        /// The revision serving now; nil before the first successful load.
        public var revision: Int?
        public var loadedAt: Date?
        public var files: [String]
        public var policies: Int
        /// Rego modules in the serving set.
        public var modules: Int
        /// The warnings of the set serving now: what Istio accepts and reports (the set loaded with them).
        public var warnings: [Diagnostic]
        /// The errors of the last load that failed, if it failed after the last success.
        public var lastError: [Diagnostic]
        public var lastErrorAt: Date?
        public var reloads: Int
        public var failures: Int
        /// The `.manifest` revision of the serving bundle, when policies come from a bundle (or a persisted set).
        public var bundleRevision: String?
        /// Whether the serving set is the persisted last good set: the paths did not load at start.
        public var fromPersisted = false
        /// The revision (content digest) and time of the set persisted last, or of the persisted set serving.
        public var persistedRevision: String?
        public var persistedAt: Date?
        /// Why the last good set could not be persisted, until a later write succeeds (a warning: it keeps serving).
        public var persistError: Diagnostic?

        public var ready: Bool { revision != nil }
    }

    /// The result of one load attempt.
    public enum Outcome: Sendable {
        case installed(PolicySnapshot, [Diagnostic])
        case refused([Diagnostic])
        /// Nothing changed since the last load.
        case unchanged
    }

    public let decisionPoint: DecisionPoint
    public let paths: [String]
    public let loader: PolicyLoader
    /// Where the last good set of `paths` is kept across restarts; nil keeps it in memory only.
    public let persisted: PersistedPolicies?
    private let state: Mutex<State>
    /// Serializes loads: a reload that starts while another runs waits for it.
    private let loading = Mutex<Void>(())
    private let observers: Mutex<[@Sendable (Outcome) -> Void]>

    struct State {
        var status = Status(files: [], policies: 0, modules: 0, warnings: [], lastError: [], reloads: 0, failures: 0)
        /// The files as they were when the serving set (or the last refused one) was read.
        var fingerprint: [String: FileStamp]?
        /// A change seen at the last look and not loaded yet: loaded when the next look sees it again.
        var pending: [String: FileStamp]?
    }

    public init(
        paths: [String], loader: PolicyLoader, decisionPoint: DecisionPoint = DecisionPoint(), persisted: PersistedPolicies? = nil
    ) {
        self.paths = paths
        self.loader = loader
        self.persisted = persisted
        self.decisionPoint = decisionPoint
        state = Mutex(State())
        observers = Mutex([])
    }

    public var status: Status { state.withLock { $0.status } }

    /// Calls `observer` after every load attempt that installs or refuses a set (for metrics and logs).
    public func observe(_ observer: @escaping @Sendable (Outcome) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Loads the directory now (`force`, as at start-up, on SIGHUP and after a policy API write), or, for the
    /// watch, when it changed and the change is complete (see the type's documentation). Compiling happens before
    /// the swap, so decisions in flight finish on the old snapshot; a set with any error is refused whole and the
    /// old one keeps serving.
    @discardableResult
    public func reload(force: Bool = true) -> Outcome {
        let outcome: Outcome = loading.withLock { _ in
            let fingerprint = Self.fingerprint(paths)
            if !force {
                let ready: Bool = state.withLock { state in
                    if state.fingerprint == fingerprint {
                        state.pending = nil
                        return false
                    }
                    if state.pending == fingerprint || Self.renamedIntoPlace(fingerprint, since: state.fingerprint) {
                        return true
                    }
                    state.pending = fingerprint
                    return false
                }
                if !ready { return .unchanged }
            }
            let (snapshot, result) = loader.load(paths)
            if !force, Self.fingerprint(paths) != fingerprint {
                // Written to while being read: what was read may be half of it.
                state.withLock { $0.pending = nil }
                return .unchanged
            }
            state.withLock {
                $0.pending = nil
                $0.fingerprint = fingerprint
            }
            let outcome = install(snapshot, result)
            if case .installed = outcome { persist(result) }
            return outcome
        }
        if case .unchanged = outcome { return outcome }
        for observer in observers.withLock({ $0 }) { observer(outcome) }
        return outcome
    }

    /// Writes what a successful load of `paths` compiled to the persisted set; a failure is recorded in the
    /// status (`persistError`) and the set keeps serving.
    private func persist(_ result: PolicyLoader.Result) {
        guard let persisted else { return }
        let now = Date()
        do throws(Diagnostic) {
            let revision = try persisted.write(result.contents, originals: paths, at: now)
            state.withLock {
                $0.status.persistedRevision = revision
                $0.status.persistedAt = now
                $0.status.persistError = nil
            }
        } catch {
            state.withLock { $0.status.persistError = error }
        }
    }

    /// Serves the persisted last good set when no set is serving (the paths did not load at start): returns the
    /// set restored, the error that prevents it (unreadable, or persisted for other paths), or nil when there is
    /// nothing to restore. The load errors stay in the status; the next good load of the paths replaces the set.
    public func restorePersisted() -> Swift.Result<PersistedPolicies.Restored, Diagnostic>? {
        guard let persisted else { return nil }
        var serving: PolicySnapshot?
        let restored: Swift.Result<PersistedPolicies.Restored, Diagnostic>? = loading.withLock { _ in
            if state.withLock({ $0.status.ready }) { return nil }
            let found: PersistedPolicies.Restored
            do throws(Diagnostic) {
                guard let read = try persisted.read() else { return nil }
                found = read
            } catch {
                return .failure(error)
            }
            let (lastError, lastErrorAt) = state.withLock { ($0.status.lastError, $0.status.lastErrorAt) }
            let (snapshot, result) = loader.load(bundle: found.bundle)
            guard let snapshot else {
                let first = result.diagnostics.first(where: \.isError)
                return .failure(Diagnostic(
                    code: first?.code ?? OPABundle.Code.format,
                    message: "persisted policies in `\(persisted.file)` do not load: \(first?.description ?? "invalid")"))
            }
            guard case .installed(let installed, _) = install(snapshot, result) else { return nil }
            state.withLock {
                $0.status.lastError = lastError
                $0.status.lastErrorAt = lastErrorAt
                $0.status.fromPersisted = true
                $0.status.persistedRevision = found.revision
                $0.status.persistedAt = found.persistedAt
            }
            serving = installed
            return .success(found)
        }
        if let serving { for observer in observers.withLock({ $0 }) { observer(.installed(serving, [])) } }
        return restored
    }

    /// Installs a bundle's policies (verified by the caller): compiled before the swap, refused whole on any error
    /// (the last good set keeps serving), observed like a reload.
    @discardableResult
    public func activate(_ bundle: OPABundle) -> Outcome {
        let outcome: Outcome = loading.withLock { _ in
            let (snapshot, result) = loader.load(bundle: bundle)
            return install(snapshot, result)
        }
        for observer in observers.withLock({ $0 }) { observer(outcome) }
        return outcome
    }

    /// Records a bundle that could not be used before it reached the loader (download, size, signature): the last
    /// good set keeps serving and the error shows in the status.
    public func recordFailure(_ errors: [Diagnostic]) {
        state.withLock {
            $0.status.lastError = errors
            $0.status.lastErrorAt = Date()
            $0.status.failures += 1
        }
        for observer in observers.withLock({ $0 }) { observer(.refused(errors)) }
    }

    private func install(_ snapshot: PolicySnapshot?, _ result: PolicyLoader.Result) -> Outcome {
        let problems = result.diagnostics.filter { $0.severity != .note }
        guard let snapshot else {
            state.withLock {
                $0.status.lastError = result.diagnostics.filter(\.isError)
                $0.status.lastErrorAt = Date()
                $0.status.failures += 1
            }
            return .refused(result.diagnostics.filter(\.isError))
        }
        let installed = decisionPoint.install(snapshot)
        state.withLock {
            $0.status.revision = installed.revision
            $0.status.bundleRevision = installed.bundleRevision
            $0.status.loadedAt = Date()
            $0.status.files = installed.sources
            $0.status.policies = installed.authorization.policies.count
            $0.status.modules = installed.moduleCount
            $0.status.warnings = problems.filter { $0.severity == .warning }
            $0.status.lastError = []
            $0.status.lastErrorAt = nil
            $0.status.reloads += 1
            $0.status.fromPersisted = false
        }
        return .installed(installed, problems)
    }

    /// Why a change to a policy file was refused.
    public enum UpdateError: Error, Sendable {
        /// The set would not load with the change: nothing was written.
        case invalid([Diagnostic])
        case notFound(String)
        case io(Diagnostic)
    }

    /// Writes (or, with nil, removes) one rule file, after validating the whole set with the change applied,
    /// then reloads. Nothing is written when the set would not load, so a bad upload never reaches the disk.
    @discardableResult
    public func update(file: String, text: String?) throws(UpdateError) -> Outcome {
        let written: Swift.Result<Void, UpdateError> = loading.withLock { _ in
            if text == nil, !FileManager.default.fileExists(atPath: file) { return .failure(.notFound(file)) }
            let check = loader.read(paths, overlay: [file: text])
            if check.hasErrors { return .failure(.invalid(check.diagnostics.filter(\.isError))) }
            do {
                if let text {
                    let directory = (file as NSString).deletingLastPathComponent
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    try text.write(toFile: file, atomically: true, encoding: .utf8)
                } else {
                    try FileManager.default.removeItem(atPath: file)
                }
            } catch {
                return .failure(.io(Diagnostic(code: Diagnostic.Code.io, message: "cannot write `\(file)`: \(error)")))
            }
            return .success(())
        }
        if case .failure(let error) = written { throw error }
        return reload()
    }

    /// Checks for changes every `interval` until the task is cancelled. `offload` runs each check (which
    /// compiles the set when it changed) where blocking is allowed; by default, on the calling task.
    public func watch(
        every interval: Duration = .seconds(1),
        offload: @Sendable (@escaping @Sendable () -> Void) async -> Void = { $0() }
    ) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            await offload { [self] in reload(force: false) }
        }
    }

    /// Every rule file's stamp; a changed, added or removed file changes it.
    static func fingerprint(_ paths: [String]) -> [String: FileStamp] {
        var out: [String: FileStamp] = [:]
        for file in DocumentFiles.expand(paths.filter(DocumentFiles.exists), extensions: PolicyLoader.ruleExtensions) {
            if let stamp = FileStamp.of(file) { out[file] = stamp }
        }
        return out
    }

    /// Whether a change is complete at first sight: no file was removed, and every new or changed file was
    /// renamed into place (or had its times set) after its last write.
    static func renamedIntoPlace(_ now: [String: FileStamp], since before: [String: FileStamp]?) -> Bool {
        guard let before, before.keys.allSatisfy({ now[$0] != nil }) else { return false }
        return now.allSatisfy { file, stamp in before[file] == stamp || stamp.settledByRename }
    }
}
