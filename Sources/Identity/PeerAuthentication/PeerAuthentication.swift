import PolicyCore

/// An Istio `security.istio.io/v1` (or `v1beta1`) PeerAuthentication: whether a workload's inbound connections must,
/// may or must not be mutual TLS.
///
/// Where it applies: a policy in the root namespace without a selector is mesh-wide; one in another namespace without
/// a selector is namespace-wide; one with a selector (outside the root namespace) is for the workloads it selects.
/// `PeerAuthenticationSet` resolves which one decides for a workload, and its mode per port.
public struct PeerAuthentication: Sendable {
    /// A mode as written in a policy.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Inherit from the scope above (the mesh's UNSET, or no policy at all, means PERMISSIVE).
        case unset = "UNSET"
        /// Plaintext only.
        case disable = "DISABLE"
        /// Mutual TLS or plaintext on the same port.
        case permissive = "PERMISSIVE"
        /// Mutual TLS only.
        case strict = "STRICT"

        /// The mode this one means once `inherited` (the resolved mode of the scope above) stands in for UNSET.
        public func resolved(inheriting inherited: MutualTLSMode) -> MutualTLSMode {
            switch self {
            case .unset: inherited
            case .disable: .disable
            case .permissive: .permissive
            case .strict: .strict
            }
        }
    }

    public var id: ID
    /// `spec.selector.matchLabels`; nil (or empty) makes the policy namespace-wide, or mesh-wide in the root namespace.
    public var selector: [String: String]?
    /// `spec.mtls.mode`; `.unset` when `mtls` or its `mode` is absent.
    public var mode: Mode
    /// `spec.portLevelMtls`: a mode per workload port (only with a selector).
    public var portLevelModes: [Int: Mode]
    /// `metadata.creationTimestamp` in seconds since the epoch; nil when the document has none (such a policy counts
    /// as the oldest, as Kubernetes' zero time does).
    public var creationTimestamp: Int64?
    public var span: SourceSpan?

    public init(
        id: ID, selector: [String: String]? = nil, mode: Mode = .unset, portLevelModes: [Int: Mode] = [:],
        creationTimestamp: Int64? = nil, span: SourceSpan? = nil
    ) {
        self.id = id
        self.selector = selector
        self.mode = mode
        self.portLevelModes = portLevelModes
        self.creationTimestamp = creationTimestamp
        self.span = span
    }

    public typealias ID = RequestAuthentication.ID

    /// A selector with at least one label: the policy is for particular workloads.
    public var hasWorkloadSelector: Bool { !(selector?.isEmpty ?? true) }

    /// Whether the selector picks a workload with `labels` (a policy without one picks every workload).
    public func selects(labels: [String: String]) -> Bool {
        guard let selector else { return true }
        return selector.allSatisfy { labels[$0.key] == $0.value }
    }

    /// Istio's order among policies of one scope: older first, then by name, then by namespace. Of several that
    /// could decide, the first in this order does.
    public static func precedes(_ a: PeerAuthentication, _ b: PeerAuthentication) -> Bool {
        let x = a.creationTimestamp ?? Int64.min, y = b.creationTimestamp ?? Int64.min
        if x != y { return x < y }
        if a.id.name != b.id.name { return a.id.name < b.id.name }
        return a.id.namespace < b.id.namespace
    }
}

/// The mode a workload enforces once inheritance is resolved.
public enum MutualTLSMode: String, Sendable, Hashable, CustomStringConvertible {
    case disable = "DISABLE"
    case permissive = "PERMISSIVE"
    case strict = "STRICT"

    public var description: String { rawValue }
}
