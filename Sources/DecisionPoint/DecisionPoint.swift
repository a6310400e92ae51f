import PolicyCore
import Synchronization

/// The live decision point: the current snapshot, swapped atomically on reload. Safe to call from any number
/// of tasks; a decision never blocks on a reload (compiling happens before the swap).
public final class DecisionPoint: Sendable {
    private let current: Mutex<PolicySnapshot?>
    private let revisions = Atomic<Int>(0)

    public init(snapshot: PolicySnapshot? = nil) {
        current = Mutex(snapshot.map { $0.withRevision(1) })
        if snapshot != nil { revisions.store(1, ordering: .relaxed) }
    }

    /// The snapshot serving now, or nil before the first successful load.
    public var snapshot: PolicySnapshot? { current.withLock { $0 } }

    /// Installs a new snapshot and returns it with its revision number.
    @discardableResult
    public func install(_ snapshot: PolicySnapshot) -> PolicySnapshot {
        let revision = revisions.add(1, ordering: .relaxed).newValue
        let numbered = snapshot.withRevision(revision)
        current.withLock { $0 = numbered }
        return numbered
    }

    /// Decides one request; with no snapshot loaded it fails closed.
    public func decide(_ request: AuthzRequest, input: some ProviderInputSource) -> DecisionResponse {
        guard let snapshot = current.withLock({ $0 }) else { return .notReady }
        return snapshot.decide(request, input: input)
    }
}
