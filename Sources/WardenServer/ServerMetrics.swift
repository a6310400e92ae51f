import PolicyCore
import Prometheus

/// The server's Prometheus metrics: decisions by action and result, decision latency, policy reloads and
/// failures, and the loaded set's size and revision. Counters are created up front so a hot-path increment is
/// one atomic add.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    private let decisions: [DecisionKey: Counter]
    private let latency: DurationHistogram
    private let reloads: Counter
    private let reloadFailures: Counter
    private let loadedPolicies: Gauge
    private let loadedModules: Gauge
    private let revision: Gauge
    private let ready: Gauge

    struct DecisionKey: Hashable {
        var action: String
        var result: String
    }

    /// The `action` label: the kind of policy that decided, or `none` when no rule decided.
    static let actions = ["ALLOW", "DENY", "CUSTOM", "none"]
    static let results = ["allow", "deny"]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var decisions: [DecisionKey: Counter] = [:]
        for action in Self.actions {
            for result in Self.results {
                decisions[DecisionKey(action: action, result: result)] = registry.makeCounter(
                    descriptor: Self.name(
                        "decisions", unit: "total",
                        help: "Authorization decisions, by the action of the deciding policy and the result."),
                    labels: [("action", action), ("result", result)])
            }
        }
        self.decisions = decisions
        latency = registry.makeDurationHistogram(
            descriptor: Self.name(
                "decision_duration", unit: "seconds",
                help: "Time to decide one check, from the mapped request to the rendered response."),
            buckets: [
                .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
                .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
                .milliseconds(50), .milliseconds(100),
            ])
        reloads = registry.makeCounter(
            descriptor: Self.name("policy_reloads", unit: "total", help: "Policy sets loaded and installed."))
        reloadFailures = registry.makeCounter(
            descriptor: Self.name(
                "policy_reload_failures", unit: "total", help: "Policy loads refused because a file had errors."))
        loadedPolicies = registry.makeGauge(
            descriptor: Self.name("policies_loaded", help: "AuthorizationPolicies in the serving policy set."))
        loadedModules = registry.makeGauge(
            descriptor: Self.name("rego_modules_loaded", help: "Rego modules in the serving policy set."))
        revision = registry.makeGauge(
            descriptor: Self.name("policy_revision", help: "Revision of the serving policy set."))
        ready = registry.makeGauge(descriptor: Self.name("ready", help: "1 once a policy set is loaded."))
    }

    static func name(_ metric: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "warden", metricName: metric, unitName: unit, helpText: help)
    }

    public func recordDecision(_ response: DecisionResponse, duration: Duration) {
        let action = response.decidedBy.map { $0.action.rawValue } ?? "none"
        decisions[DecisionKey(action: action, result: response.decision.rawValue)]?.increment()
        latency.record(duration)
    }

    public func recordReload(policies: Int, modules: Int = 0, revision: Int) {
        reloads.increment()
        loadedPolicies.set(to: Double(policies))
        loadedModules.set(to: Double(modules))
        self.revision.set(to: Double(revision))
        ready.set(to: 1)
    }

    public func recordReloadFailure() {
        reloadFailures.increment()
    }

    /// The Prometheus text exposition.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
