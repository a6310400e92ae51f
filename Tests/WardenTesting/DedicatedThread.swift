import Foundation
import Synchronization

/// Work run on a thread of its own, outside Swift concurrency's shared pool, whose outcome a task can await.
///
/// For test steps whose timing matters (a writer's pause): a task's sleep can stretch by seconds while the two
/// pool threads are busy with other suites, a thread's sleep only by the kernel's scheduling.
public final class DedicatedThread: Sendable {
    private struct State {
        var outcome: Result<Void, any Error>?
        var waiter: CheckedContinuation<Void, any Error>?
    }

    private let state = Mutex(State())

    /// Starts `body` at once.
    public init(_ body: @escaping @Sendable () throws -> Void) {
        Thread { [self] in
            let outcome = Result { try body() }
            let waiter = state.withLock { state in
                state.outcome = outcome
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(with: outcome)
        }.start()
    }

    /// Waits for `body` to finish and rethrows what it threw.
    public var value: Void {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let outcome = state.withLock { state in
                    if state.outcome == nil { state.waiter = continuation }
                    return state.outcome
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        }
    }
}
