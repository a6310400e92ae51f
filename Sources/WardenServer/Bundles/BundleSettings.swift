import Foundation
import JOSE
import PolicyCore
import PolicyLoading

/// Where a server's policies come from when they come from an OPA bundle service, as OPA's configuration names
/// it: `services.<s>.url` + `bundles.<name>.resource`, `polling`, `signing` (with `keys`), `persist`.
public struct BundleSettings: Sendable {
    public var name: String
    /// The bundle's full URL (the service URL joined with the resource).
    public var url: String
    /// Extra request headers (`services.<s>.headers`, and a bearer token from `credentials.bearer`).
    public var headers: [String: String]
    public var minDelay: Duration
    public var maxDelay: Duration
    /// Asks the server to hold the request open until the bundle changes (`Prefer: wait=N`), when it offers it.
    public var longPollingTimeout: Duration?
    /// Keys the bundle must be signed with; nil refuses signed bundles (their signature could not be checked).
    public var verification: BundleVerification?
    /// Keep the last activated bundle on disk and serve it at start when the service cannot be reached.
    public var persist: Bool
    public var limits: BundleLimits
    public var timeout: Duration

    public static let defaultMinDelay: Duration = .seconds(60)
    public static let defaultMaxDelay: Duration = .seconds(120)

    public init(
        name: String = "warden", url: String, headers: [String: String] = [:], minDelay: Duration = defaultMinDelay,
        maxDelay: Duration = defaultMaxDelay, longPollingTimeout: Duration? = nil, verification: BundleVerification? = nil,
        persist: Bool = false, limits: BundleLimits = BundleLimits(), timeout: Duration = .seconds(30)
    ) {
        self.name = name
        self.url = url
        self.headers = headers
        self.minDelay = minDelay
        self.maxDelay = maxDelay
        self.longPollingTimeout = longPollingTimeout
        self.verification = verification
        self.persist = persist
        self.limits = limits
        self.timeout = timeout
    }

    /// `5s..10s`, `5..10` (seconds), or one delay (`5s`, `500ms`): the polling window.
    public static func parsePolling(_ text: String) -> (Duration, Duration)? {
        let parts = text.components(separatedBy: "..")
        guard (1...2).contains(parts.count) else { return nil }
        let delays = parts.compactMap(parseDuration)
        guard delays.count == parts.count, let low = delays.first, let high = delays.last, low > .zero, low <= high
        else { return nil }
        return (low, high)
    }

    /// A Go-style duration, or a bare number of seconds as OPA's configuration allows.
    static func parseDuration(_ text: String) -> Duration? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(t) { return .milliseconds(seconds * 1000) }
        return PolicyCore.parseDuration(t)
    }

    /// The service URL joined with a resource, as OPA joins them.
    public static func join(_ service: String, _ resource: String) -> String {
        let base = service.hasSuffix("/") ? String(service.dropLast()) : service
        let path = resource.hasPrefix("/") ? String(resource.dropFirst()) : resource
        return path.isEmpty ? base : base + "/" + path
    }

    /// Where a persisted bundle lives below the persistence directory, as OPA lays it out.
    public func persistedFile(in directory: String) -> String {
        directory + "/bundles/" + name + "/bundle.tar.gz"
    }
}

/// Decision-log upload to a remote service, as OPA's `decision_logs` plugin does it: gzip'd JSON arrays POSTed
/// to the service's `/logs` resource, in order, with a bounded buffer.
public struct DecisionLogUploadSettings: Sendable {
    public var url: String
    public var headers: [String: String]
    public var minDelay: Duration
    public var maxDelay: Duration
    /// The most one upload's gzip'd body may hold (OPA's `upload_size_limit_bytes`).
    public var uploadSizeLimitBytes: Int
    /// The most buffered events may take; more are dropped and counted (OPA's `buffer_size_limit_bytes`).
    public var bufferSizeLimitBytes: Int
    public var timeout: Duration

    public init(
        url: String, headers: [String: String] = [:], minDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(2),
        uploadSizeLimitBytes: Int = 32 * 1024, bufferSizeLimitBytes: Int = 16 << 20, timeout: Duration = .seconds(10)
    ) {
        self.url = url
        self.headers = headers
        self.minDelay = minDelay
        self.maxDelay = maxDelay
        self.uploadSizeLimitBytes = uploadSizeLimitBytes
        self.bufferSizeLimitBytes = bufferSizeLimitBytes
        self.timeout = timeout
    }
}
