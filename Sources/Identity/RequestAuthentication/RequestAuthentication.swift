import JOSE
import PolicyCore

/// An Istio `security.istio.io/v1` (or `v1beta1`) RequestAuthentication: the JWT rules a workload verifies.
///
/// A token that fails a rule refuses the request (401); a request without a token passes without an identity, and
/// AuthorizationPolicies then decide whether that is enough.
public struct RequestAuthentication: Sendable {
    public var id: ID
    /// `spec.selector.matchLabels`; nil selects every workload of the namespace (of the mesh in the root namespace).
    public var selector: [String: String]?
    public var jwtRules: [JWTRule]
    public var span: SourceSpan?

    public init(id: ID, selector: [String: String]? = nil, jwtRules: [JWTRule], span: SourceSpan? = nil) {
        self.id = id
        self.selector = selector
        self.jwtRules = jwtRules
        self.span = span
    }

    /// The namespace and name of a RequestAuthentication.
    public struct ID: Sendable, Hashable, Comparable, CustomStringConvertible {
        public var namespace: String
        public var name: String

        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }

        public var description: String { namespace + "/" + name }

        public static func < (a: ID, b: ID) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
    }

    /// Whether the policy applies to a workload of `namespace` with `labels`, given the mesh's root namespace.
    public func applies(toNamespace namespace: String, labels: [String: String], rootNamespace: String) -> Bool {
        guard id.namespace == namespace || id.namespace == rootNamespace else { return false }
        guard let selector else { return true }
        return selector.allSatisfy { labels[$0.key] == $0.value }
    }
}

/// Every RequestAuthentication of a mesh, answering which JWT rules a workload enforces.
public struct RequestAuthenticationSet: Sendable {
    public let policies: [RequestAuthentication]
    public let rootNamespace: String

    public init(policies: [RequestAuthentication], rootNamespace: String = "istio-system") {
        self.policies = policies.sorted { $0.id < $1.id }
        self.rootNamespace = rootNamespace
    }

    /// The policies that apply to a workload.
    public func policies(forNamespace namespace: String, labels: [String: String]) -> [RequestAuthentication] {
        policies.filter { $0.applies(toNamespace: namespace, labels: labels, rootNamespace: rootNamespace) }
    }

    /// The merged rules of every policy that applies to a workload, ordered by issuer (then by policy and position),
    /// as Istio orders the providers it generates.
    public func rules(forNamespace namespace: String, labels: [String: String]) -> [JWTRule] {
        let rules = policies(forNamespace: namespace, labels: labels).flatMap(\.jwtRules)
        return rules.enumerated().sorted { a, b in
            a.element.issuer != b.element.issuer ? a.element.issuer < b.element.issuer : a.offset < b.offset
        }.map(\.element)
    }
}
