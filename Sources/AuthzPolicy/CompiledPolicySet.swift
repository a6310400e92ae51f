import PolicyCore

/// Answers CUSTOM checks. The decision point wires real providers (Rego); without any, every CUSTOM match
/// fails closed.
public protocol CustomProviders: Sendable {
    /// Asks the provider named by a matching CUSTOM policy about the request.
    func check(provider: String, request: AuthzRequest) -> CustomOutcome
}

/// No providers configured: a matching CUSTOM policy denies, as Istio denies when its provider is unknown.
public struct NoCustomProviders: CustomProviders {
    public init() {}

    public func check(provider: String, request: AuthzRequest) -> CustomOutcome {
        .failed(Diagnostic(code: "custom_provider_missing", message: "no CUSTOM provider named `\(provider)` is configured"))
    }
}

/// A set of AuthorizationPolicies compiled once into per-namespace indexes. Immutable and safe to share across
/// tasks; `decide` walks no YAML and allocates nothing in the common case.
///
/// Scoping follows Istio: a policy in the root namespace applies to every workload its selector matches, in
/// every namespace; any other policy applies to the workloads of its own namespace that its selector matches.
public struct CompiledPolicySet: Sendable {
    public let policies: [AuthorizationPolicy]
    public let rootNamespace: String
    /// The namespace assumed for a request that names none.
    public let defaultNamespace: String
    /// Problems found while compiling (only policies built in code, not decoded, can have them).
    public let diagnostics: [Diagnostic]

    private let buckets: [String: NamespaceBucket]
    private let rootBucket: NamespaceBucket

    public init(policies: [AuthorizationPolicy], rootNamespace: String = "istio-system", defaultNamespace: String = "default") {
        self.policies = policies
        self.rootNamespace = rootNamespace
        self.defaultNamespace = defaultNamespace
        // Root-namespace policies first, then the namespace's own; by name within each, for a stable order.
        let sorted = policies.sorted { $0.id < $1.id }
        let root = sorted.filter { $0.id.namespace == rootNamespace }
        var byNamespace: [String: [AuthorizationPolicy]] = [:]
        for p in sorted where p.id.namespace != rootNamespace { byNamespace[p.id.namespace, default: []].append(p) }
        rootBucket = NamespaceBucket(policies: root)
        var buckets: [String: NamespaceBucket] = [rootNamespace: rootBucket]
        for (namespace, own) in byNamespace { buckets[namespace] = NamespaceBucket(policies: root + own) }
        self.buckets = buckets
        // Root policies are compiled into every bucket; report their problems once.
        var diagnostics = rootBucket.diagnosticsByPolicy.flatMap { $0 }
        for (namespace, bucket) in buckets.sorted(by: { $0.key < $1.key }) where namespace != rootNamespace {
            diagnostics += bucket.diagnosticsByPolicy.dropFirst(root.count).flatMap { $0 }
        }
        self.diagnostics = diagnostics
    }

    /// Decides one request: CUSTOM, then DENY, then ALLOW; AUDIT marks and dry-run outcomes on the side.
    public func decide(_ request: AuthzRequest, providers: some CustomProviders = NoCustomProviders()) -> DecisionResponse {
        let bucket = self.bucket(for: request)
        let view = RequestView(request)
        let labels = request.destination.labels
        var response = DecisionResponse(decision: .deny, reason: .noAllowMatched)

        if bucket.has(.audit) {
            response.audits = bucket.allMatches(.audit, view, labels).map { bucket.match($0) }
        }
        if bucket.hasDryRun {
            response.dryRun = bucket.dryRunOutcomes(view, labels)
        }

        if bucket.has(.custom) {
            for rule in bucket.allMatches(.custom, view, labels) {
                let match = bucket.match(rule)
                let provider = bucket.policies[bucket.rules[Int(rule)].policy].provider ?? ""
                if response.custom.contains(where: { $0.provider == provider }) { continue }
                let outcome = providers.check(provider: provider, request: request)
                response.custom.append(CustomCheck(match: match, provider: provider, outcome: outcome))
                if !outcome.allowed {
                    response.decision = .deny
                    response.reason = outcome.failure == nil ? .customDenied : .customFailed
                    response.decidedBy = match
                    if let failure = outcome.failure { response.diagnostics.append(failure) }
                    return response
                }
            }
        }

        if let rule = bucket.firstMatch(.deny, view, labels) {
            response.decision = .deny
            response.reason = .denyMatched
            response.decidedBy = bucket.match(rule)
            return response
        }

        guard bucket.anyAllowApplies(labels) else {
            response.decision = .allow
            response.reason = .noAllowPolicy
            return response
        }
        if let rule = bucket.firstMatch(.allow, view, labels) {
            response.decision = .allow
            response.reason = .allowMatched
            response.decidedBy = bucket.match(rule)
        }
        return response
    }

    /// The policies that apply to the request's workload, in evaluation order, with an account of every rule.
    public func explain(_ request: AuthzRequest) -> [PolicyExplanation] {
        bucket(for: request).explain(request)
    }

    /// The namespace a request's workload is taken to be in.
    public func workloadNamespace(of request: AuthzRequest) -> String {
        request.destination.namespace ?? defaultNamespace
    }

    private func bucket(for request: AuthzRequest) -> NamespaceBucket {
        buckets[workloadNamespace(of: request)] ?? rootBucket
    }
}

/// Evaluation stages: which list a policy's rules go into.
enum Stage: Int, CaseIterable {
    case custom, deny, allow, audit, dryRunDeny, dryRunAllow

    init(_ policy: AuthorizationPolicy) {
        switch policy.action {
        case .custom: self = .custom
        case .deny: self = policy.dryRun ? .dryRunDeny : .deny
        case .allow: self = policy.dryRun ? .dryRunAllow : .allow
        case .audit: self = .audit
        }
    }
}

/// The attributes a rule can be indexed by: exact values only, most selective first.
enum IndexAttribute: Hashable, Sendable {
    case path, sourcePrincipal, host, header(String), sourceNamespace, sni, port, method

    init?(_ predicate: Predicate) {
        guard !predicate.negated else { return nil }
        switch predicate.attribute {
        case .path: self = .path
        case .sourcePrincipal: self = .sourcePrincipal
        case .host: self = .host
        case .requestHeader(let name): self = .header(name)
        case .sourceNamespace: self = .sourceNamespace
        case .connectionSNI: self = .sni
        case .destinationPort: self = .port
        case .method: self = .method
        default: return nil
        }
    }

    var rank: Int {
        switch self {
        case .path: 0
        case .sourcePrincipal: 1
        case .host: 2
        case .header: 3
        case .sourceNamespace: 4
        case .sni: 5
        case .port: 6
        case .method: 7
        }
    }

    /// The exact keys a predicate on this attribute accepts, or nil when it is not a set of exact values.
    func keys(_ predicate: Predicate) -> [ByteString]? {
        switch predicate.matcher {
        case .strings(let set), .header(let set):
            return set.onlyExactValues
        case .paths(let set, let templates):
            return templates.isEmpty ? set.onlyExactValues : nil
        case .ports(let ports):
            return ports.map { ByteString(String($0)) }
        case .namespaces(let patterns):
            return patterns.allSatisfy { $0.parts.count == 1 } ? patterns.map { ByteString($0.parts[0]) } : nil
        default:
            return nil
        }
    }

    @inline(__always)
    func key(_ view: RequestView) -> ByteString? {
        switch self {
        case .path: view.request.http.path.map(ByteString.init)
        case .sourcePrincipal: view.request.source.principal.map(ByteString.init)
        case .host: view.host.map(ByteString.init)
        case .header(let name): view.request.http.headers.value(lowercased: name).map(ByteString.init)
        case .sourceNamespace: view.request.source.namespace.map(ByteString.init)
        case .sni: view.request.connectionSNI.map(ByteString.init)
        case .port: view.request.destination.port.map { ByteString(String($0)) }
        case .method: view.request.http.method.map(ByteString.init)
        }
    }
}

/// The rules of one stage, indexed: a candidate list per exact value of the chosen attribute, and the rules that
/// could not be indexed. Lists hold rule positions in evaluation order.
struct StageIndex: Sendable {
    var indexes: [(attribute: IndexAttribute, postings: [ByteString: [Int32]])] = []
    var unindexed: [Int32] = []

    var isEmpty: Bool { indexes.isEmpty && unindexed.isEmpty }

    mutating func add(_ position: Int32, rule: CompiledRule) {
        let choice = rule.requiredPredicates
            .compactMap { p -> (IndexAttribute, [ByteString])? in
                guard let attribute = IndexAttribute(p), let keys = attribute.keys(p) else { return nil }
                return (attribute, keys)
            }
            .min { $0.0.rank < $1.0.rank }
        guard let (attribute, keys) = choice else {
            unindexed.append(position)
            return
        }
        let slot = indexes.firstIndex { $0.attribute == attribute } ?? {
            indexes.append((attribute, [:]))
            return indexes.count - 1
        }()
        for key in Set(keys) { indexes[slot].postings[key, default: []].append(position) }
    }
}

/// Every policy that can apply to workloads of one namespace (the root namespace's and the namespace's own),
/// compiled and indexed by stage.
final class NamespaceBucket: Sendable {
    let policies: [AuthorizationPolicy]
    let rules: [CompiledRule]
    let stages: [StageIndex]
    let diagnosticsByPolicy: [[Diagnostic]]
    let hasDryRun: Bool
    /// Enforced ALLOW policies; whether one applies decides between "no ALLOW policy" and "no ALLOW matched".
    private let allowSelectors: [[String: String]]
    private let hasUnconditionalAllow: Bool

    init(policies: [AuthorizationPolicy]) {
        self.policies = policies
        var rules: [CompiledRule] = []
        var diagnostics: [[Diagnostic]] = []
        for (i, p) in policies.enumerated() {
            let compiled = CompiledPolicy(p, position: i)
            rules += compiled.rules
            diagnostics.append(compiled.diagnostics)
        }
        var stages = [StageIndex](repeating: StageIndex(), count: Stage.allCases.count)
        for (position, rule) in rules.enumerated() {
            stages[Stage(policies[rule.policy]).rawValue].add(Int32(position), rule: rule)
        }
        self.rules = rules
        self.stages = stages
        diagnosticsByPolicy = diagnostics
        hasDryRun = policies.contains { $0.dryRun }
        let enforcedAllow = policies.filter { $0.action == .allow && !$0.dryRun }
        hasUnconditionalAllow = enforcedAllow.contains { $0.selector == nil || $0.selector!.isEmpty }
        allowSelectors = Array(Set(enforcedAllow.compactMap(\.selector)))
    }

    func has(_ stage: Stage) -> Bool { !stages[stage.rawValue].isEmpty }

    func match(_ position: Int32) -> RuleMatch {
        let rule = rules[Int(position)]
        let policy = policies[rule.policy]
        return RuleMatch(policy: policy.id, action: policy.action, rule: rule.index)
    }

    @inline(__always)
    func applies(_ policy: Int, _ labels: [String: String]) -> Bool {
        guard let selector = policies[policy].selector else { return true }
        for (key, value) in selector where labels[key] != value { return false }
        return true
    }

    func anyAllowApplies(_ labels: [String: String]) -> Bool {
        if hasUnconditionalAllow { return true }
        return allowSelectors.contains { selector in selector.allSatisfy { labels[$0.key] == $0.value } }
    }

    /// The first rule of `stage`, in evaluation order, that applies to the workload and matches.
    func firstMatch(_ stage: Stage, _ view: RequestView, _ labels: [String: String]) -> Int32? {
        let index = stages[stage.rawValue]
        var best = Int32.max
        func scan(_ candidates: [Int32]) {
            for position in candidates {
                if position >= best { return }
                let rule = rules[Int(position)]
                if applies(rule.policy, labels) && rule.matches(view) {
                    best = position
                    return
                }
            }
        }
        for (attribute, postings) in index.indexes {
            if let key = attribute.key(view), let candidates = postings[key] { scan(candidates) }
        }
        scan(index.unindexed)
        return best == .max ? nil : best
    }

    /// Every rule of `stage` that applies and matches, in evaluation order.
    func allMatches(_ stage: Stage, _ view: RequestView, _ labels: [String: String]) -> [Int32] {
        let index = stages[stage.rawValue]
        var found: [Int32] = []
        func scan(_ candidates: [Int32]) {
            for position in candidates {
                let rule = rules[Int(position)]
                if applies(rule.policy, labels) && rule.matches(view) { found.append(position) }
            }
        }
        for (attribute, postings) in index.indexes {
            if let key = attribute.key(view), let candidates = postings[key] { scan(candidates) }
        }
        scan(index.unindexed)
        found.sort()
        // One mark per policy: its first matching rule.
        var seen: Set<Int> = []
        return found.filter { seen.insert(rules[Int($0)].policy).inserted }
    }

    /// What the dry-run DENY and ALLOW policies that apply would have decided, as Envoy's shadow rules report it.
    func dryRunOutcomes(_ view: RequestView, _ labels: [String: String]) -> [DryRunOutcome] {
        var out: [DryRunOutcome] = []
        let applicable = policies.indices.filter { policies[$0].dryRun && applies($0, labels) }
        if applicable.contains(where: { policies[$0].action == .deny }) {
            let match = firstMatch(.dryRunDeny, view, labels).map(match)
            out.append(DryRunOutcome(action: .deny, decision: match == nil ? .allow : .deny, match: match))
        }
        if applicable.contains(where: { policies[$0].action == .allow }) {
            let match = firstMatch(.dryRunAllow, view, labels).map(match)
            out.append(DryRunOutcome(action: .allow, decision: match == nil ? .deny : .allow, match: match))
        }
        return out
    }
}
