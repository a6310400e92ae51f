import AuthzPolicy
import PolicyCore
import Rego

/// Answers CUSTOM checks for one provider name.
public protocol CustomProvider: Sendable {
    func check(_ request: AuthzRequest) -> CustomOutcome
}

/// Everything a decision needs, compiled once and never changed: swapping in a new snapshot is how policies
/// reload. Decisions in flight keep the snapshot they started with.
public struct PolicySnapshot: Sendable {
    /// Increases with every snapshot a decision point installs.
    public let revision: Int
    public let authorization: CompiledPolicySet
    /// CUSTOM providers by name.
    public let providers: [String: any CustomProvider]
    /// The files the snapshot was built from.
    public let sources: [String]
    /// The compiled Rego modules (CUSTOM providers evaluate them; OPA's data API queries them), if any.
    public let rego: RegoPolicySet?
    /// How many Rego modules `rego` was compiled from.
    public let moduleCount: Int

    public init(
        revision: Int = 0,
        authorization: CompiledPolicySet,
        providers: [String: any CustomProvider] = [:],
        sources: [String] = [],
        rego: RegoPolicySet? = nil,
        moduleCount: Int = 0
    ) {
        self.revision = revision
        self.authorization = authorization
        self.providers = providers
        self.sources = sources
        self.rego = rego
        self.moduleCount = moduleCount
    }

    public func withRevision(_ revision: Int) -> PolicySnapshot {
        PolicySnapshot(
            revision: revision, authorization: authorization, providers: providers, sources: sources, rego: rego,
            moduleCount: moduleCount)
    }

    /// Decides one request against this snapshot.
    public func decide(_ request: AuthzRequest) -> DecisionResponse {
        if let refusal = request.http.refusal { return .invalidRequest(refusal) }
        return authorization.decide(request, providers: ProviderTable(providers: providers))
    }
}

/// The snapshot's providers, as the policy engine asks them; an unknown name fails closed.
struct ProviderTable: CustomProviders {
    let providers: [String: any CustomProvider]

    func check(provider: String, request: AuthzRequest) -> CustomOutcome {
        guard let p = providers[provider] else { return NoCustomProviders().check(provider: provider, request: request) }
        return p.check(request)
    }
}
