import Logging
import Networking
import Synchronization

/// Reports each limit the gRPC listener enforces: counted in `warden_grpc_limit_events_total{limit}`, and logged, the
/// first of each kind at once and then at most one line per kind every ten seconds, saying how many there were since
/// the last line (a flood of refused connections must not become a flood of log lines). Limits that refuse work are
/// warnings; closing an idle connection is routine (a proxy's spare connection closes every idle timeout), logged
/// at debug.
final class ListenerLimitReport: ListenerLimitObserver {
    private let metrics: ServerMetrics
    private let logger: Logger
    private let interval: Duration
    private struct Pending {
        var lastLogged: ContinuousClock.Instant?
        var unlogged = 0
    }
    private let pending = Mutex<[ListenerLimit: Pending]>([:])

    init(metrics: ServerMetrics, logger: Logger, interval: Duration = .seconds(10)) {
        self.metrics = metrics
        self.logger = logger
        self.interval = interval
    }

    func limitEnforced(_ limit: ListenerLimit) {
        metrics.recordGRPCLimit(limit)
        let now = ContinuousClock.now
        let count: Int? = pending.withLock { pending in
            var entry = pending[limit] ?? Pending()
            entry.unlogged += 1
            defer { pending[limit] = entry }
            if let last = entry.lastLogged, now - last < interval { return nil }
            entry.lastLogged = now
            defer { entry.unlogged = 0 }
            return entry.unlogged
        }
        guard let count else { return }
        logger.log(
            level: Self.level(limit),
            "gRPC \(limit.rawValue) enforced: \(Self.describe(limit)) (\(count) since the last report)")
    }

    static func level(_ limit: ListenerLimit) -> Logger.Level {
        limit == .idleTimeout ? .debug : .warning
    }

    static func describe(_ limit: ListenerLimit) -> String {
        switch limit {
        case .maxConnections: "a connection was closed on accept, the listener has its most"
        case .idleTimeout: "a connection with no open stream was closed"
        case .maxMessageBytes: "a stream sending a larger request message was reset"
        case .maxConnectionBufferBytes: "a connection was made to wait, its calls hold their most request bytes"
        case .maxBufferedBytes: "a stream was reset, the listener's streams hold their most request bytes"
        case .requestTimeout: "a stream whose request did not arrive whole in time was reset"
        }
    }
}
