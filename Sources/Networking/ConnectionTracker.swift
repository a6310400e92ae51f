import NIOCore
import Synchronization

/// The connections of one listener: admission under a connection limit, graceful shutdown (stop accepting, ask
/// every connection to finish what it is doing, wait for them to close) and forced shutdown (close everything).
///
/// A listener registers each accepted channel; a channel refused (over the limit, or after shutdown began) is
/// closed at once, before any byte of it is read, so a flood of connections costs file descriptors only up to the
/// limit. Graceful shutdown sends NIO's `ChannelShouldQuiesceEvent` down each pipeline: HTTP/1's server pipeline
/// closes an idle connection and closes a busy one after its response; HTTP/2 sends GOAWAY.
public final class ConnectionTracker: Sendable {
    /// The most connections open at once; the next one is closed on accept.
    public let maximumConnections: Int

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var quiescing = false
        var refused = 0
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    public init(maximumConnections: Int) {
        self.maximumConnections = maximumConnections
    }

    /// The listening socket, closed when shutdown begins.
    public func setListener(_ channel: any Channel) {
        let closeNow = state.withLock { state in
            state.listener = channel
            return state.quiescing
        }
        if closeNow { channel.close(promise: nil) }
    }

    /// Admits an accepted connection, or closes it and returns false.
    @discardableResult
    public func admit(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let admitted = state.withLock { state in
            guard !state.quiescing, state.connections.count < maximumConnections else {
                state.refused += 1
                return false
            }
            state.connections[id] = channel
            return true
        }
        guard admitted else {
            channel.close(promise: nil)
            return false
        }
        channel.closeFuture.whenComplete { [self] _ in
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.connections.removeValue(forKey: id)
                guard state.quiescing, state.connections.isEmpty else { return [] }
                defer { state.drainWaiters = [] }
                return state.drainWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
        return true
    }

    /// Open connections now.
    public var count: Int { state.withLock { $0.connections.count } }

    /// Connections closed on accept because of the limit or shutdown, since the start.
    public var refusedCount: Int { state.withLock { $0.refused } }

    public var isShuttingDown: Bool { state.withLock { $0.quiescing } }

    /// Stops accepting and asks every connection to finish its work and close.
    public func beginGracefulShutdown() {
        for connection in stopAccepting() {
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// Stops accepting and closes every connection now.
    public func closeAll() {
        for connection in stopAccepting() { connection.close(promise: nil) }
    }

    /// Returns once shutdown has begun and every connection has closed.
    public func drained() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if state.quiescing, state.connections.isEmpty { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func stopAccepting() -> [any Channel] {
        let (listener, connections, waiters) = state.withLock { state in
            state.quiescing = true
            let waiters = state.connections.isEmpty ? state.drainWaiters : []
            if state.connections.isEmpty { state.drainWaiters = [] }
            return (state.listener, Array(state.connections.values), waiters)
        }
        listener?.close(promise: nil)
        for waiter in waiters { waiter.resume() }
        return connections
    }
}
