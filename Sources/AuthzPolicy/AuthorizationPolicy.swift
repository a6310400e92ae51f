import PolicyCore

/// An Istio `security.istio.io/v1` (or `v1beta1`) AuthorizationPolicy, decoded and validated.
///
/// Field semantics follow Istio: within a source or operation the fields AND together and the values of one
/// field OR together; the `from`, `to` and `when` parts of a rule AND together; the rules of a policy OR together.
public struct AuthorizationPolicy: Sendable, Hashable {
    public var id: PolicyID
    /// `metadata.labels` of the workload to select, or nil to select every workload in the namespace (every
    /// workload in the mesh when the policy is in the root namespace).
    public var selector: [String: String]?
    public var action: PolicyAction
    /// The CUSTOM provider's name.
    public var provider: String?
    /// Nil when the spec has no `rules` field: an ALLOW policy without rules denies everything.
    public var rules: [Rule]?
    /// `istio.io/dry-run: "true"`: evaluated and reported, never enforced.
    public var dryRun: Bool
    /// Where the policy was written.
    public var span: SourceSpan?

    public init(
        id: PolicyID,
        selector: [String: String]? = nil,
        action: PolicyAction = .allow,
        provider: String? = nil,
        rules: [Rule]?,
        dryRun: Bool = false,
        span: SourceSpan? = nil
    ) {
        self.id = id
        self.selector = selector
        self.action = action
        self.provider = provider
        self.rules = rules
        self.dryRun = dryRun
        self.span = span
    }

    public struct Rule: Sendable, Hashable {
        /// Nil when the rule has no `from`: any source.
        public var from: [Source]?
        /// Nil when the rule has no `to`: any operation.
        public var to: [Operation]?
        public var when: [Condition]
        public var span: SourceSpan?

        public init(from: [Source]? = nil, to: [Operation]? = nil, when: [Condition] = [], span: SourceSpan? = nil) {
            self.from = from
            self.to = to
            self.when = when
            self.span = span
        }
    }

    /// `rules[].from[].source`: who is calling.
    public struct Source: Sendable, Hashable {
        public var principals: [String] = []
        public var notPrincipals: [String] = []
        public var requestPrincipals: [String] = []
        public var notRequestPrincipals: [String] = []
        public var namespaces: [String] = []
        public var notNamespaces: [String] = []
        public var serviceAccounts: [String] = []
        public var notServiceAccounts: [String] = []
        public var trustDomains: [String] = []
        public var notTrustDomains: [String] = []
        public var ipBlocks: [String] = []
        public var notIpBlocks: [String] = []
        public var remoteIpBlocks: [String] = []
        public var notRemoteIpBlocks: [String] = []

        public init() {}
    }

    /// `rules[].to[].operation`: what is being called.
    public struct Operation: Sendable, Hashable {
        public var hosts: [String] = []
        public var notHosts: [String] = []
        public var ports: [String] = []
        public var notPorts: [String] = []
        public var methods: [String] = []
        public var notMethods: [String] = []
        public var paths: [String] = []
        public var notPaths: [String] = []

        public init() {}
    }

    /// `rules[].when[]`: a condition on one attribute.
    public struct Condition: Sendable, Hashable {
        public var key: String
        public var values: [String]
        public var notValues: [String]

        public init(key: String, values: [String] = [], notValues: [String] = []) {
            self.key = key
            self.values = values
            self.notValues = notValues
        }
    }
}
