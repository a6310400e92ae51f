import Foundation
import Networking
import PolicyCore
import Prometheus

/// The server's Prometheus metrics: decisions by action and result, decision latency, policy reloads and
/// failures, and the loaded set's size and revision. Counters are created up front so a hot-path increment is
/// one atomic add.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// By `decisionIndex`: a check's increment is an array read, not a hash of two strings.
    private let decisions: [Counter]
    private let latency: DurationHistogram
    private let reloads: Counter
    private let reloadFailures: Counter
    private let loadedPolicies: Gauge
    private let loadedModules: Gauge
    private let revision: Gauge
    private let ready: Gauge
    private let bundleActivations: Counter
    private let bundleFailures: Counter
    private let bundleNotModified: Counter
    private let bundleLastActivation: Gauge
    private let bundleActivation: DurationHistogram
    private let bundleDownload: DurationHistogram
    private let logUploads: Counter
    private let logUploadedEvents: Counter
    private let logUploadFailures: Counter
    private let logDropped: Counter
    private let grpcLimitEvents: [ListenerLimit: Counter]
    private let adminRequests: [Bool: Counter]
    private let clientRefusals: [String: Counter]

    /// The policies that decide, in counter order; nil, labelled `none`, when no rule decided (AUDIT never decides).
    static let deciders: [PolicyAction?] = [.allow, .deny, .custom, nil]
    /// The `action` label of each of `deciders`.
    static let actions = deciders.map { $0?.rawValue ?? "none" }
    static let results = [Decision.allow, .deny]

    /// The counter of a decision: its decider's place in `deciders`, then its result's in `results` (a few
    /// comparisons, no hashing).
    static func decisionIndex(_ response: DecisionResponse) -> Int {
        let decider = response.decidedBy.flatMap { $0.action == .audit ? nil : $0.action }
        let action = deciders.firstIndex(of: decider) ?? deciders.count - 1
        return action * results.count + (results.firstIndex(of: response.decision) ?? 0)
    }

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        decisions = Self.actions.flatMap { action in
            Self.results.map { result in
                registry.makeCounter(
                    descriptor: Self.name(
                        "decisions", unit: "total",
                        help: "Authorization decisions, by the action of the deciding policy and the result."),
                    labels: [("action", action), ("result", result.rawValue)])
            }
        }
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
        bundleActivations = registry.makeCounter(
            descriptor: Self.name("bundle_activations", unit: "total", help: "Bundles verified, compiled and swapped in."))
        bundleFailures = registry.makeCounter(
            descriptor: Self.name(
                "bundle_failures", unit: "total",
                help: "Bundle downloads or activations that failed (the last good set kept serving)."))
        bundleNotModified = registry.makeCounter(
            descriptor: Self.name("bundle_not_modified", unit: "total", help: "Bundle polls answered 304 Not Modified."))
        bundleLastActivation = registry.makeGauge(
            descriptor: Self.name(
                "bundle_last_activation_timestamp", unit: "seconds", help: "When the serving bundle was activated (Unix time)."))
        let durations: [Duration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        bundleActivation = registry.makeDurationHistogram(
            descriptor: Self.name(
                "bundle_activation_duration", unit: "seconds", help: "Time to read, verify, compile and swap in a bundle."),
            buckets: durations)
        bundleDownload = registry.makeDurationHistogram(
            descriptor: Self.name("bundle_download_duration", unit: "seconds", help: "Time to download a bundle."),
            buckets: durations)
        logUploads = registry.makeCounter(
            descriptor: Self.name("decision_log_uploads", unit: "total", help: "Decision-log batches uploaded."))
        logUploadedEvents = registry.makeCounter(
            descriptor: Self.name("decision_log_uploaded_events", unit: "total", help: "Decision-log events uploaded."))
        logUploadFailures = registry.makeCounter(
            descriptor: Self.name("decision_log_upload_failures", unit: "total", help: "Decision-log uploads that failed (retried)."))
        logDropped = registry.makeCounter(
            descriptor: Self.name(
                "decision_log_dropped", unit: "total", help: "Decision-log events dropped because the upload buffer was full."))
        grpcLimitEvents = Dictionary(uniqueKeysWithValues: ListenerLimit.allCases.map { limit in
            (limit, registry.makeCounter(
                descriptor: Self.name(
                    "grpc_limit_events", unit: "total",
                    help: "Times the gRPC listener enforced a limit: connections refused, closed idle or made to wait, streams reset."),
                labels: [("limit", limit.rawValue)]))
        })
        var adminRequests: [Bool: Counter] = [:]
        for allowed in [true, false] {
            adminRequests[allowed] = registry.makeCounter(
                descriptor: Self.name(
                    "admin_requests", unit: "total",
                    help: "Management API requests, by whether the authorization policy let them through."),
                labels: [("result", allowed ? "allowed" : "refused")])
        }
        self.adminRequests = adminRequests
        var clientRefusals: [String: Counter] = [:]
        for listener in Self.dataPlaneListeners {
            clientRefusals[listener] = registry.makeCounter(
                descriptor: Self.name(
                    "client_refusals", unit: "total",
                    help: "Decision requests refused because the client was not on the listener's allow-list."),
                labels: [("listener", listener)])
        }
        self.clientRefusals = clientRefusals
    }

    /// The `listener` label of `client_refusals`.
    static let dataPlaneListeners = ["grpc", "http"]

    static func name(_ metric: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "warden", metricName: metric, unitName: unit, helpText: help)
    }

    public func recordDecision(_ response: DecisionResponse, duration: Duration) {
        decisions[Self.decisionIndex(response)].increment()
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

    public func recordBundleActivation(_ duration: Duration) {
        bundleActivations.increment()
        bundleActivation.record(duration)
        bundleLastActivation.set(to: Date().timeIntervalSince1970)
    }

    public func recordBundleFailure() { bundleFailures.increment() }
    public func recordBundleNotModified() { bundleNotModified.increment() }
    public func recordBundleDownload(_ duration: Duration) { bundleDownload.record(duration) }
    public func recordDecisionLogUpload(events: Int) {
        logUploads.increment()
        logUploadedEvents.increment(by: Int64(events))
    }
    public func recordDecisionLogUploadFailure() { logUploadFailures.increment() }
    public func recordDecisionLogDropped() { logDropped.increment() }
    public func recordGRPCLimit(_ limit: ListenerLimit) { grpcLimitEvents[limit]?.increment() }
    public func recordAdminRequest(allowed: Bool) { adminRequests[allowed]?.increment() }
    /// A client the `listener` (`grpc` or `http`) refused for not being on its allow-list.
    public func recordClientRefused(listener: String) { clientRefusals[listener]?.increment() }

    /// The Prometheus text exposition.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
