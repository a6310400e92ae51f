import Synchronization
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

    private let buckets: StaticTable<NamespaceBucket>
    private let rootBucket: NamespaceBucket

    /// A workload whose policies have at most this many rules in all is decided by checking those rules in order;
    /// beyond it, through the bucket's rule index (see `NamespaceBucket`).
    public static let defaultDirectLimit = 16

    /// Compiles `policies`. `directLimit` is the most rules a workload's policies may have for a decision to
    /// check them one by one rather than through the rule index (`Int.max`: always; 0: never); both decide alike.
    public init(
        policies: [AuthorizationPolicy], rootNamespace: String = "istio-system", defaultNamespace: String = "default",
        directLimit: Int = CompiledPolicySet.defaultDirectLimit
    ) {
        self.policies = policies
        self.rootNamespace = rootNamespace
        self.defaultNamespace = defaultNamespace
        // Root-namespace policies first, then the namespace's own; by name within each, for a stable order.
        let sorted = policies.sorted { $0.id < $1.id }
        let root = sorted.filter { $0.id.namespace == rootNamespace }
        var byNamespace: [String: [AuthorizationPolicy]] = [:]
        for p in sorted where p.id.namespace != rootNamespace { byNamespace[p.id.namespace, default: []].append(p) }
        // Root policies come first in every bucket, at the same positions, so they are compiled once and every
        // bucket shares their predicates: a decision in any namespace reads the same, cache-resident ones.
        let rootCompiled = root.enumerated().map { CompiledPolicy($1, position: $0) }
        rootBucket = NamespaceBucket(policies: root, compiledRoot: rootCompiled, directLimit: directLimit)
        var buckets: [(String, NamespaceBucket)] = [(rootNamespace, rootBucket)]
        for (namespace, own) in byNamespace.sorted(by: { $0.key < $1.key }) {
            let bucket = NamespaceBucket(policies: root + own, compiledRoot: rootCompiled, directLimit: directLimit)
            buckets.append((namespace, bucket))
        }
        self.buckets = StaticTable(buckets.map { ($0.0, $0.1) })
        // Every bucket holds the root policies' problems; report them once.
        var diagnostics = rootBucket.diagnosticsByPolicy.flatMap { $0 }
        for (_, bucket) in buckets.dropFirst() {
            diagnostics += bucket.diagnosticsByPolicy.dropFirst(root.count).flatMap { $0 }
        }
        self.diagnostics = diagnostics
    }

    /// Decides one request: CUSTOM, then DENY, then ALLOW; AUDIT marks and dry-run outcomes on the side.
    public func decide(_ request: AuthzRequest) -> DecisionResponse {
        decide(request, asking: NoCustomProviders())
    }

    /// Decides one request, asking `providers` about matching CUSTOM policies.
    public func decide(_ request: AuthzRequest, providers: some CustomProviders) -> DecisionResponse {
        decide(request, asking: providers)
    }

    /// The decision itself, specialised for each kind of provider table so the common path carries no existential.
    @inline(__always)
    private func decide<Providers: CustomProviders>(_ request: AuthzRequest, asking providers: Providers) -> DecisionResponse {
        decide(request, RequestView(), bucket(for: request), asking: providers)
    }

    @inline(__always)
    private func decide<Providers: CustomProviders>(
        _ request: AuthzRequest, _ view: RequestView, _ bucket: NamespaceBucket, asking providers: Providers
    ) -> DecisionResponse {
        let candidates = bucket.candidates(request, view)
        // The response is assembled once at the end, its matches as positions in the bucket's table of matches:
        // nothing on this path allocates unless a CUSTOM provider is asked or a dry-run policy applies.
        // Nil when nothing was audited: the common decision builds no list at all.
        var audits: RuleMatches? = nil
        if bucket.has(.audit) {
            let found = candidates.allMatches(.audit, request, view)
            if found.count > 0 {
                var list = RuleMatches(table: bucket.matches)
                for i in 0..<found.count { list.append(position: Int(found[i])) }
                audits = list
            }
        }
        let dryRun = candidates.appliesDryRun ? bucket.dryRunOutcomes(candidates, request, view) : []
        var custom: [CustomCheck] = []
        if bucket.has(.custom) {
            let found = candidates.allMatches(.custom, request, view)
            for i in 0..<found.count {
                let rule = found[i]
                let match = bucket.matches[Int(rule)]
                let provider = bucket.policies[bucket.rules[Int(rule)].policy].provider ?? ""
                if custom.contains(where: { $0.provider == provider }) { continue }
                let outcome = providers.check(provider: provider, request: request)
                custom.append(CustomCheck(match: match, provider: provider, outcome: outcome))
                if !outcome.allowed {
                    return DecisionResponse(
                        decision: .deny, reason: outcome.failure == nil ? .customDenied : .customFailed, decidedBy: match,
                        audits: audits ?? RuleMatches(), custom: custom, dryRun: dryRun,
                        diagnostics: outcome.failure.map { [$0] } ?? [])
                }
            }
        }
        let decision: Decision, reason: DecisionReason, decidedBy: Int32?
        if let rule = candidates.firstMatch(.deny, request, view) {
            (decision, reason, decidedBy) = (.deny, .denyMatched, rule)
        } else if !candidates.anyAllowApplies {
            (decision, reason, decidedBy) = (.allow, .noAllowPolicy, nil)
        } else if let rule = candidates.firstMatch(.allow, request, view) {
            (decision, reason, decidedBy) = (.allow, .allowMatched, rule)
        } else {
            (decision, reason, decidedBy) = (.deny, .noAllowMatched, nil)
        }
        if custom.isEmpty && dryRun.isEmpty && audits == nil { return bucket.plainResponse(decidedBy, reason) }
        let match = decidedBy.map { bucket.matches[Int($0)] }, audited = audits ?? RuleMatches()
        if custom.isEmpty && dryRun.isEmpty {
            return DecisionResponse(decision: decision, reason: reason, decidedBy: match, audits: audited)
        }
        return DecisionResponse(
            decision: decision, reason: reason, decidedBy: match, audits: audited, custom: custom, dryRun: dryRun)
    }

    /// The policies that apply to the request's workload, in evaluation order, with an account of every rule.
    public func explain(_ request: AuthzRequest) -> [PolicyExplanation] {
        bucket(for: request).explain(request)
    }

    /// The namespace a request's workload is taken to be in.
    public func workloadNamespace(of request: AuthzRequest) -> String {
        request.destination.namespace ?? defaultNamespace
    }

    /// How many workload plans the bucket deciding `namespace` has resolved so far.
    func plansResolved(namespace: String) -> Int {
        (buckets[namespace] ?? rootBucket).resolutions.load(ordering: .relaxed)
    }

    private func bucket(for request: AuthzRequest) -> NamespaceBucket {
        // Not `namespace ?? defaultNamespace`: that copies the request's string (a retain and a release).
        let found = request.destination.namespace != nil
            ? buckets.index(of: request.destination.namespace!) : buckets.index(of: defaultNamespace)
        return found.map { buckets.values[$0] } ?? rootBucket
    }
}

/// Evaluation stages: which list a policy's rules go into.
enum Stage: Int, CaseIterable {
    case custom, deny, allow, audit, dryRunDeny, dryRunAllow

    static let count = 6

    init(_ policy: AuthorizationPolicy) {
        switch policy.action {
        case .custom: self = .custom
        case .deny: self = policy.dryRun ? .dryRunDeny : .deny
        case .allow: self = policy.dryRun ? .dryRunAllow : .allow
        case .audit: self = .audit
        }
    }
}

/// Every policy that can apply to workloads of one namespace (the root namespace's and the namespace's own),
/// compiled and indexed.
///
/// Two indexes keep a decision from visiting rules that cannot match. Policies are grouped by selector, and every
/// label of every selector is indexed, so the groups that select a workload are found with one lookup per workload
/// label (a group is selected when all its labels were found). When those groups hold few rules (at most
/// `directLimit`, the usual case: a workload is selected by a handful of policies however many the namespace
/// has), their rules are checked in evaluation order from per-group lists, so the cost of a decision follows the
/// workload's policies, not the namespace's. Otherwise rules are found through the index of their most selective
/// required field (see `RuleIndex`).
final class NamespaceBucket: Sendable {
    let policies: [AuthorizationPolicy]
    let rules: [CompiledRule]
    /// What each rule reports when it matches, by rule position: a decision's matches refer to this table.
    let matches: [RuleMatch]
    /// The whole response of a decision without AUDIT matches, CUSTOM checks or dry-run outcomes, the common one:
    /// by the position of the DENY or ALLOW rule that decided, then for `no_allow_policy` and `no_allow_matched`.
    /// Returning a copy costs less than building it: the response's initializer builds it and then copies it.
    private let plainResponses: [DecisionResponse]
    let diagnosticsByPolicy: [[Diagnostic]]
    private let stagesPresent: UInt8

    // Selector groups. Group 0 holds the policies without a selector (they apply to every workload).
    /// Every label of every selector: (label name, label value) → a range of `labelGroups`, the groups whose
    /// selector holds that label.
    private let labelIndex: PairTable
    private let labelGroups: Int32Table
    private let groupLabelCount: Int32Table
    private let ruleGroups: Int32Table
    /// Per group, which kinds of policy it holds (`GroupKinds`).
    private let groupKinds: [GroupKinds]

    private let index: RuleIndex
    private let program: RuleProgram
    /// The rules of each selector group by stage, in evaluation order: group `g`, stage `s` is
    /// `groupRules[groupRanges[(g * Stage.count + s) * 2] ..< groupRanges[... + 1]]`.
    private let groupRules: Int32Table
    private let groupRanges: Int32Table
    /// How many rules each group holds.
    private let groupRuleCount: Int32Table
    private let directLimit: Int

    /// `compiledRoot`, when given, is the first policies already compiled at their positions (the root
    /// namespace's, shared by every bucket).
    init(
        policies: [AuthorizationPolicy], compiledRoot: [CompiledPolicy] = [],
        directLimit: Int = CompiledPolicySet.defaultDirectLimit
    ) {
        self.policies = policies
        self.directLimit = directLimit
        var rules: [CompiledRule] = []
        var diagnostics: [[Diagnostic]] = []
        for (i, p) in policies.enumerated() {
            let compiled = i < compiledRoot.count ? compiledRoot[i] : CompiledPolicy(p, position: i)
            rules += compiled.rules
            diagnostics.append(compiled.diagnostics)
        }
        self.rules = rules
        matches = rules.map { rule in
            RuleMatch(policy: policies[rule.policy].id, action: policies[rule.policy].action, rule: rule.index)
        }
        diagnosticsByPolicy = diagnostics
        let stages = rules.map { Stage(policies[$0.policy]) }
        plainResponses = zip(matches, stages).map { match, stage in
            stage == .deny
                ? DecisionResponse(decision: .deny, reason: .denyMatched, decidedBy: match, audits: RuleMatches())
                : DecisionResponse(decision: .allow, reason: .allowMatched, decidedBy: match, audits: RuleMatches())
        } + [
            DecisionResponse(decision: .allow, reason: .noAllowPolicy, decidedBy: nil, audits: RuleMatches()),
            DecisionResponse(decision: .deny, reason: .noAllowMatched, decidedBy: nil, audits: RuleMatches()),
        ]
        stagesPresent = stages.reduce(0) { $0 | 1 << UInt8($1.rawValue) }

        // Selector groups.
        var groupOf: [[String: String]: Int32] = [:]
        var selectors: [[(key: String, value: String)]] = [[]]
        var policyGroup: [Int32] = []
        for p in policies {
            guard let selector = p.selector, !selector.isEmpty else {
                policyGroup.append(0)
                continue
            }
            if let g = groupOf[selector] {
                policyGroup.append(g)
            } else {
                let g = Int32(selectors.count)
                groupOf[selector] = g
                selectors.append(selector.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
                policyGroup.append(g)
            }
        }
        var byLabel: [[String]: [Int32]] = [:]
        for (g, selector) in selectors.enumerated() {
            for label in selector { byLabel[[label.key, label.value], default: []].append(Int32(g)) }
        }
        var flatGroups: [Int32] = []
        var pairs: [(String, String, Int32, Int32)] = []
        for (label, groups) in byLabel.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            pairs.append((label[0], label[1], Int32(flatGroups.count), Int32(flatGroups.count + groups.count)))
            flatGroups += groups
        }
        labelIndex = PairTable(pairs)
        labelGroups = Int32Table.make(flatGroups)
        groupLabelCount = Int32Table.make(selectors.map { Int32($0.count) })
        ruleGroups = Int32Table.make(rules.map { policyGroup[$0.policy] })
        var kinds = [GroupKinds](repeating: [], count: selectors.count)
        for (p, policy) in policies.enumerated() {
            switch (policy.action, policy.dryRun) {
            case (.allow, false): kinds[Int(policyGroup[p])].insert(.allow)
            case (.allow, true): kinds[Int(policyGroup[p])].insert(.dryRunAllow)
            case (.deny, true): kinds[Int(policyGroup[p])].insert(.dryRunDeny)
            default: break
            }
        }
        groupKinds = kinds

        index = RuleIndex(rules: rules, stages: stages)
        program = RuleProgram(rules)

        // Per-group rule lists by stage; positions are already in evaluation order.
        var lists = Array(repeating: [Int32](), count: selectors.count * Stage.count)
        var counts = Array(repeating: Int32(0), count: selectors.count)
        for (position, rule) in rules.enumerated() {
            let g = Int(policyGroup[rule.policy])
            lists[g * Stage.count + stages[position].rawValue].append(Int32(position))
            counts[g] += 1
        }
        var flat: [Int32] = []
        var ranges: [Int32] = []
        for list in lists {
            ranges.append(Int32(flat.count))
            flat += list
            ranges.append(Int32(flat.count))
        }
        groupRules = Int32Table.make(flat)
        groupRanges = Int32Table.make(ranges)
        groupRuleCount = Int32Table.make(counts)
    }

    @inline(__always)
    func has(_ stage: Stage) -> Bool { stagesPresent & (1 << UInt8(stage.rawValue)) != 0 }

    /// The plain response (see `plainResponses`) when `rule` decided, or for `reason` when no rule did.
    @inline(__always)
    func plainResponse(_ rule: Int32?, _ reason: DecisionReason) -> DecisionResponse {
        if let rule { return plainResponses[Int(rule)] }
        return plainResponses[rules.count + (reason == .noAllowPolicy ? 0 : 1)]
    }

    /// Whether a policy's selector selects a workload with these labels.
    func applies(_ policy: Int, _ labels: [String: String]) -> Bool {
        guard let selector = policies[policy].selector else { return true }
        for (key, value) in selector where labels[key] != value { return false }
        return true
    }

    /// Plans already resolved for the workloads seen, by their labels' storage.
    private let plans = WorkloadPlans()
    /// How many plans were resolved (a decision that found its plan resolves none).
    let resolutions = Atomic<Int>(0)

    /// The selector groups and rule postings of one request, found without allocating in the common case: the
    /// groups from the workload's plan (resolved once per workload), the postings from the rule index when the
    /// workload's policies hold too many rules to check them one by one.
    func candidates(_ request: AuthzRequest, _ view: RequestView) -> Candidates {
        let plan = plans.plan(for: request.destination.labels) { resolve($0) }
        var candidates = Candidates(bucket: self, plan: plan)
        if plan.direct { return candidates }
        for a in index.attributes.indices {
            index.attributes[a].lookup(request, view, into: &candidates.postings)
        }
        return candidates
    }

    /// The selector groups that select a workload with these labels, what they hold, and their rules by stage.
    func resolve(_ labels: [String: String]) -> WorkloadPlan {
        resolutions.add(1, ordering: .relaxed)
        var groups = GroupSet()
        if !labelIndex.isEmpty {
            // Groups of several labels seen so far, once per label found; one is selected when all were found.
            var partial = SmallList()
            for (key, value) in labels {
                guard let (start, end) = labelIndex.range(key, value) else { continue }
                for i in Int(start)..<Int(end) {
                    let g = labelGroups[i]
                    let needed = groupLabelCount[Int(g)]
                    if needed == 1 {
                        groups.insert(g)
                    } else {
                        // A workload's label names are distinct, so each label of a selector is found once at most.
                        if partial.count(of: g) == needed - 1 { groups.insert(g) }
                        partial.append(g)
                    }
                }
            }
        }
        var kinds = groupKinds[0]
        var applicable = Int(groupRuleCount[0])
        var selected: [Int32] = [0]
        for i in 0..<groups.count {
            let g = groups[i]
            kinds.formUnion(groupKinds[Int(g)])
            applicable += Int(groupRuleCount[Int(g)])
            selected.append(g)
        }
        let direct = applicable <= directLimit
        var lists: [[Int32]] = []
        if direct {
            // Each group's list is in evaluation order; so is their merge.
            for stage in 0..<Stage.count {
                var list: [Int32] = []
                for g in selected {
                    let base = (Int(g) * Stage.count + stage) * 2
                    for i in Int(groupRanges[base])..<Int(groupRanges[base + 1]) { list.append(groupRules[i]) }
                }
                lists.append(list.sorted())
            }
        }
        return WorkloadPlan(labels: labels, groups: groups, kinds: kinds, direct: direct, stageLists: lists)
    }

    /// The kinds of policy a selector group holds, for what applies to a workload without visiting its rules.
    struct GroupKinds: OptionSet {
        let rawValue: UInt8
        /// An enforced ALLOW policy (with or without rules).
        static let allow = GroupKinds(rawValue: 1)
        static let dryRunDeny = GroupKinds(rawValue: 2)
        static let dryRunAllow = GroupKinds(rawValue: 4)
    }

    /// The candidate rules of one request, by stage.
    struct Candidates: ~Copyable {
        let bucket: NamespaceBucket
        let plan: WorkloadPlan
        var postings = SmallList()

        init(bucket: NamespaceBucket, plan: WorkloadPlan) {
            self.bucket = bucket
            self.plan = plan
        }

        var kinds: GroupKinds { plan.kinds }
        /// The applicable groups' rules are checked from the plan's lists, without the rule index (`postings` is
        /// empty).
        var direct: Bool { plan.direct }

        var anyAllowApplies: Bool { kinds.contains(.allow) }
        var appliesDryRun: Bool { !kinds.isDisjoint(with: [.dryRunDeny, .dryRunAllow]) }

        /// The first rule of `stage`, in evaluation order, that applies to the workload and matches.
        func firstMatch(_ stage: Stage, _ request: AuthzRequest, _ view: RequestView) -> Int32? {
            if direct { return firstDirectMatch(stage, request, view) }
            let index = bucket.index
            var best = Int32.max
            let s = stage.rawValue * 2
            for p in 0..<postings.count {
                let base = Int(postings[p]) * 2 * Stage.count + s
                best = first(in: Int(index.ranges[base]), Int(index.ranges[base + 1]), before: best, request, view)
            }
            best = first(in: Int(index.unindexedRanges[s]), Int(index.unindexedRanges[s + 1]), before: best, request, view)
            return best == .max ? nil : best
        }

        /// The first matching rule among `positions[start..<end]` that comes before `limit` (lists are sorted).
        @inline(__always)
        private func first(in start: Int, _ end: Int, before limit: Int32, _ request: AuthzRequest, _ view: RequestView) -> Int32 {
            let positions = bucket.index.positions
            var i = start
            while i < end {
                let position = positions[i]
                if position >= limit { break }
                if matches(position, request, view) { return position }
                i += 1
            }
            return limit
        }

        /// The first matching rule of `stage` in the plan's list (in evaluation order).
        private func firstDirectMatch(_ stage: Stage, _ request: AuthzRequest, _ view: RequestView) -> Int32? {
            let rules = plan.stageLists
            var i = Int(rules[stage.rawValue])
            let end = Int(rules[stage.rawValue + 1])
            while i < end {
                let position = rules[i]
                if bucket.program.matches(Int(position), request, view) { return position }
                i += 1
            }
            return nil
        }

        /// Every rule of `stage` that applies and matches, one per policy (its first), in evaluation order.
        func allMatches(_ stage: Stage, _ request: AuthzRequest, _ view: RequestView) -> SmallList {
            var found = SmallList()
            if direct {
                // In evaluation order, so a policy's first match comes first and its other rules can be skipped.
                let rules = plan.stageLists
                var matched = -1
                for i in Int(rules[stage.rawValue])..<Int(rules[stage.rawValue + 1]) {
                    let position = rules[i]
                    let policy = bucket.rules[Int(position)].policy
                    if policy == matched { continue }
                    if bucket.program.matches(Int(position), request, view) {
                        found.append(position)
                        matched = policy
                    }
                }
                return found
            }
            let index = bucket.index
            let s = stage.rawValue * 2
            func collect(_ start: Int32, _ end: Int32) {
                var i = Int(start)
                while i < Int(end) {
                    let position = index.positions[i]
                    if !found.contains(position) && matches(position, request, view) { found.insertSorted(position) }
                    i += 1
                }
            }
            for p in 0..<postings.count {
                let base = Int(postings[p]) * 2 * Stage.count + s
                collect(index.ranges[base], index.ranges[base + 1])
            }
            collect(index.unindexedRanges[s], index.unindexedRanges[s + 1])
            return onePerPolicy(found)
        }

        /// Sorted matches, each policy's first only (a policy's rules have consecutive positions).
        private func onePerPolicy(_ matches: SmallList) -> SmallList {
            guard matches.count > 1 else { return matches }
            var out = SmallList()
            var last = -1
            for i in 0..<matches.count {
                let policy = bucket.rules[Int(matches[i])].policy
                if policy != last { out.append(matches[i]) }
                last = policy
            }
            return out
        }

        @inline(__always)
        private func matches(_ position: Int32, _ request: AuthzRequest, _ view: RequestView) -> Bool {
            plan.groups.contains(bucket.ruleGroups[Int(position)]) && bucket.program.matches(Int(position), request, view)
        }
    }

    /// What the dry-run DENY and ALLOW policies that apply would have decided, as Envoy's shadow rules report it.
    func dryRunOutcomes(_ candidates: borrowing Candidates, _ request: AuthzRequest, _ view: RequestView) -> [DryRunOutcome] {
        var out: [DryRunOutcome] = []
        if candidates.kinds.contains(.dryRunDeny) {
            let match = candidates.firstMatch(.dryRunDeny, request, view).map { matches[Int($0)] }
            out.append(DryRunOutcome(action: .deny, decision: match == nil ? .allow : .deny, match: match))
        }
        if candidates.kinds.contains(.dryRunAllow) {
            let match = candidates.firstMatch(.dryRunAllow, request, view).map { matches[Int($0)] }
            out.append(DryRunOutcome(action: .allow, decision: match == nil ? .deny : .allow, match: match))
        }
        return out
    }
}

/// The selector groups that apply to one workload: group 0 (no selector) always, and usually a handful more.
struct GroupSet {
    private var members = SmallList()

    /// The groups found besides group 0.
    var count: Int { members.count }

    @inline(__always)
    subscript(_ i: Int) -> Int32 { members[i] }

    mutating func insert(_ g: Int32) {
        if !contains(g) { members.append(g) }
    }

    @inline(__always)
    func contains(_ g: Int32) -> Bool {
        g == 0 || members.contains(g)
    }
}

/// A short list of `Int32` kept inline (eight entries), spilling into an array beyond that (allocated only then, so
/// a short list is copied and destroyed without reference counting).
struct SmallList {
    private var inline: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32) = (-1, -1, -1, -1, -1, -1, -1, -1)
    private(set) var count = 0
    private var overflow: [Int32]?

    mutating func append(_ value: Int32) {
        count += 1
        self[count - 1] = value
    }

    /// Inserts `value` in ascending order, unless it is already there (the list must be sorted).
    mutating func insertSorted(_ value: Int32) {
        var i = count
        while i > 0 && self[i - 1] > value { i -= 1 }
        if i > 0 && self[i - 1] == value { return }
        append(value)
        var j = count - 1
        while j > i {
            self[j] = self[j - 1]
            j -= 1
        }
        self[i] = value
    }

    @inline(__always)
    subscript(_ i: Int) -> Int32 {
        get {
            precondition(UInt(bitPattern: i) < UInt(bitPattern: count), "index out of range")
            if i < 8 { return withUnsafeBytes(of: inline) { $0.load(fromByteOffset: i &* 4, as: Int32.self) } }
            return overflow![i - 8]
        }
        set {
            precondition(UInt(bitPattern: i) < UInt(bitPattern: count), "index out of range")
            if i < 8 {
                withUnsafeMutableBytes(of: &inline) { $0.storeBytes(of: newValue, toByteOffset: i &* 4, as: Int32.self) }
            } else if overflow == nil {
                overflow = [newValue]
            } else if i - 8 == overflow!.count {
                overflow!.append(newValue)
            } else {
                overflow![i - 8] = newValue
            }
        }
    }

    @inline(__always)
    func contains(_ value: Int32) -> Bool {
        let v = value
        if inline.0 == v || inline.1 == v || inline.2 == v || inline.3 == v || inline.4 == v || inline.5 == v
            || inline.6 == v || inline.7 == v
        {
            return true
        }
        return count > 8 && overflow!.contains(v)
    }

    /// How many times `value` is in the list.
    func count(of value: Int32) -> Int32 {
        var n: Int32 = 0
        for i in 0..<count where self[i] == value { n += 1 }
        return n
    }
}
