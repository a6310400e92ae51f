import PolicyCore
import Synchronization

/// The live decision point: the current snapshot, swapped atomically on reload. Safe to call from any number
/// of tasks; a decision never blocks on a reload (compiling happens before the swap).
public final class DecisionPoint: Sendable {
    private let current: Mutex<Serving?>
    private let revisions = Atomic<Int>(0)

    /// An installed snapshot, held by reference: taking the one serving costs one retain, where copying the
    /// snapshot out retains (and later releases) each of its parts, on every check.
    public final class Serving: Sendable {
        public let snapshot: PolicySnapshot

        init(_ snapshot: PolicySnapshot) {
            self.snapshot = snapshot
        }
    }

    public init(snapshot: PolicySnapshot? = nil) {
        current = Mutex(snapshot.map { Serving($0.withRevision(1)) })
        if snapshot != nil { revisions.store(1, ordering: .relaxed) }
    }

    /// The snapshot serving now, or nil before the first successful load.
    public var serving: Serving? { current.withLock { $0 } }

    /// The snapshot serving now, copied out.
    public var snapshot: PolicySnapshot? { serving?.snapshot }

    /// Installs a new snapshot and returns it with its revision number.
    @discardableResult
    public func install(_ snapshot: PolicySnapshot) -> PolicySnapshot {
        let revision = revisions.add(1, ordering: .relaxed).newValue
        let numbered = snapshot.withRevision(revision)
        let serving = Serving(numbered)
        current.withLock { $0 = serving }
        return numbered
    }

    /// Decides one request; with no snapshot loaded it fails closed.
    public func decide(_ request: AuthzRequest, input: some ProviderInputSource) -> DecisionResponse {
        serving?.snapshot.decide(request, input: input) ?? .notReady
    }
}
