import Prometheus
import Synchronization

/// The proxy's Prometheus metrics (`/metrics` on `--admin`): requests by status and decision, latency histograms of
/// whole requests, checks and upstream responses, TLS handshake failures and refused connections by reason, check
/// failures by kind, and configuration reloads.
public final class ProxyMetrics: ExchangeObserver, ConnectionObserver, Sendable {
    public let registry: PrometheusCollectorRegistry
    private let total: DurationHistogram
    private let check: DurationHistogram
    private let upstream: DurationHistogram
    private let checkFailures: [CheckFailure: Counter]
    private let requests = Mutex<[RequestKey: Counter]>([:])
    private let handshakeFailures = Mutex<[String: Counter]>([:])
    private let refused = Mutex<[String: Counter]>([:])
    private let reloads: Counter
    private let reloadFailures: Counter
    private let ready: Gauge

    struct RequestKey: Hashable {
        var status: Int
        var decision: ExchangeRecord.Outcome
    }

    static let buckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        total = registry.makeDurationHistogram(
            descriptor: Self.name("request_duration", unit: "seconds", help: "Time from a request's head to the end of its response."),
            buckets: Self.buckets)
        check = registry.makeDurationHistogram(
            descriptor: Self.name("check_duration", unit: "seconds", help: "Time to get the authorization server's answer."),
            buckets: Self.buckets)
        upstream = registry.makeDurationHistogram(
            descriptor: Self.name(
                "upstream_duration", unit: "seconds", help: "Time from forwarding a request to the upstream's response head."),
            buckets: Self.buckets)
        var failures: [CheckFailure: Counter] = [:]
        for kind in CheckFailure.allCases {
            failures[kind] = registry.makeCounter(
                descriptor: Self.name("check_failures", unit: "total", help: "Checks that failed (each failed closed), by kind."),
                labels: [("kind", kind.rawValue)])
        }
        checkFailures = failures
        reloads = registry.makeCounter(
            descriptor: Self.name("config_reloads", unit: "total", help: "Authentication policy sets loaded and installed."))
        reloadFailures = registry.makeCounter(
            descriptor: Self.name(
                "config_reload_failures", unit: "total", help: "Authentication policy loads refused because a file had errors."))
        ready = registry.makeGauge(descriptor: Self.name("ready", help: "1 while the proxy accepts requests."))
    }

    static func name(_ metric: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "warden_proxy", metricName: metric, unitName: unit, helpText: help)
    }

    public func exchangeFinished(_ record: ExchangeRecord, connection: ConnectionFacts) {
        counter(RequestKey(status: record.status, decision: record.outcome)).increment()
        total.record(.nanoseconds(Int64(clamping: record.totalNanos)))
        if let nanos = record.checkNanos { check.record(.nanoseconds(Int64(clamping: nanos))) }
        if let nanos = record.upstreamNanos { upstream.record(.nanoseconds(Int64(clamping: nanos))) }
        if let failure = record.checkFailure { checkFailures[failure]?.increment() }
    }

    private func counter(_ key: RequestKey) -> Counter {
        requests.withLock { counters in
            if let existing = counters[key] { return existing }
            let made = registry.makeCounter(
                descriptor: Self.name("requests", unit: "total", help: "Requests by response status and decision."),
                labels: [("status", String(key.status)), ("decision", key.decision.rawValue)])
            counters[key] = made
            return made
        }
    }

    public func handshakeFailed(reason: String) {
        labelled(handshakeFailures, "tls_handshake_failures", help: "TLS handshakes that failed, by reason.", reason).increment()
    }

    public func connectionRefused(reason: String) {
        labelled(refused, "connections_refused", help: "Connections refused before HTTP, by reason.", reason).increment()
    }

    private func labelled(_ table: borrowing Mutex<[String: Counter]>, _ metric: String, help: String, _ reason: String) -> Counter {
        table.withLock { counters in
            if let existing = counters[reason] { return existing }
            let made = registry.makeCounter(
                descriptor: Self.name(metric, unit: "total", help: help), labels: [("reason", reason)])
            counters[reason] = made
            return made
        }
    }

    public func recordReload(success: Bool) {
        (success ? reloads : reloadFailures).increment()
    }

    public func setReady(_ isReady: Bool) {
        ready.set(to: isReady ? 1 : 0)
    }

    /// The Prometheus text exposition.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
