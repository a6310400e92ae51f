import AuthzPolicy
import PolicyCore
import Rego

/// Answers CUSTOM checks for one provider name. `input` is OPA-Envoy's input document for the request, built
/// only when a provider is asked.
public protocol CustomProvider: Sendable {
    func check(_ request: AuthzRequest, input: () -> Value) -> CustomOutcome
}

/// Where a CUSTOM provider's input document comes from for one decision: the transport that received the
/// request builds it (the server from the `CheckRequest` it received, the CLI from the request's attributes), and
/// only when a matching CUSTOM policy asks a provider, so the common decision never pays for it. The request
/// being decided is passed in, so a source need not hold a copy of it.
public protocol ProviderInputSource {
    func providerInput(for request: AuthzRequest) -> Value
}

/// An input source made of a closure, for callers off the hot path (the closure's context is allocated).
public struct ProviderInputClosure: ProviderInputSource {
    let make: () -> Value

    public init(_ make: @escaping () -> Value) {
        self.make = make
    }

    public func providerInput(for request: AuthzRequest) -> Value { make() }
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
    /// The `.manifest` revision of the bundle the snapshot was built from, if it came from a bundle.
    public let bundleRevision: String?

    public init(
        revision: Int = 0,
        authorization: CompiledPolicySet,
        providers: [String: any CustomProvider] = [:],
        sources: [String] = [],
        rego: RegoPolicySet? = nil,
        moduleCount: Int = 0,
        bundleRevision: String? = nil
    ) {
        self.revision = revision
        self.authorization = authorization
        self.providers = providers
        self.sources = sources
        self.rego = rego
        self.moduleCount = moduleCount
        self.bundleRevision = bundleRevision
    }

    public func withRevision(_ revision: Int) -> PolicySnapshot {
        PolicySnapshot(
            revision: revision, authorization: authorization, providers: providers, sources: sources, rego: rego,
            moduleCount: moduleCount, bundleRevision: bundleRevision)
    }

    /// Decides one request against this snapshot; a CUSTOM provider asked about it gets `input`'s document. A
    /// request that cannot be matched as sent (`AuthzRequest.HTTPAttributes.refusal`) is denied before any policy.
    /// Inlinable so it is specialised for the caller's input source: unspecialised, every decision looked up the
    /// metadata of `ProviderTable<Input>` in the runtime's generic-metadata cache (about 300 instructions).
    @inlinable
    public func decide(_ request: AuthzRequest, input: some ProviderInputSource) -> DecisionResponse {
        if let refusal = request.http.refusal { return .invalidRequest(refusal) }
        return authorization.decide(request, providers: ProviderTable(providers: providers, input: input))
    }

    /// Decides one request; a CUSTOM provider asked about it gets the document `input` makes.
    public func decide(_ request: AuthzRequest, input: @escaping () -> Value) -> DecisionResponse {
        decide(request, input: ProviderInputClosure(input))
    }
}

/// The snapshot's providers, as the policy engine asks them; an unknown name fails closed.
@usableFromInline
struct ProviderTable<Input: ProviderInputSource>: CustomProviders, @unchecked Sendable {
    let providers: [String: any CustomProvider]
    // Lives only for one decision, on the thread that makes it.
    let input: Input

    @usableFromInline
    init(providers: [String: any CustomProvider], input: Input) {
        self.providers = providers
        self.input = input
    }

    @usableFromInline
    func check(provider: String, request: AuthzRequest) -> CustomOutcome {
        guard let p = providers[provider] else { return NoCustomProviders().check(provider: provider, request: request) }
        return p.check(request, input: { input.providerInput(for: request) })
    }
}
