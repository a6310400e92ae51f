import PolicyCore

/// Picks the rules of a group worth evaluating for an input, from the equalities their bodies require of it
/// (`input.method == "GET"`, `input.path = "/a"`, `input.role in {"admin", "ops"}`): a tree of hash lookups on
/// input paths, so a group of hundreds of rules evaluates only the few whose conditions can hold.
///
/// The index only prunes: every candidate's body is still evaluated in full, so a rule the index keeps is
/// checked exactly as without it.
final class RuleIndex: Sendable {
    indirect enum Node: Sendable {
        /// Candidate rules, by position in the group, in order.
        case leaf([Int])
        /// Looks up the value at `path` in `input`: its rules, or `otherwise` when it is undefined or unlisted.
        case branch(Branch, table: [Value: Node], otherwise: Node)
    }

    /// Where a branch reads the input: `path`, which is also the value of the rule `alias` (a helper rule that
    /// names a part of the input, such as `method := input.attributes.request.http.method`) followed by `tail`,
    /// so the evaluator can take the rule's value, computed once per evaluation, instead of walking the input.
    struct Branch: Sendable {
        let path: [Value]
        let alias: Int?
        let tail: [Value]
    }

    let root: Node

    init(root: Node) { self.root = root }

    /// The candidates for an input, walking the input by each branch's path.
    func candidates(input: Value?) -> [Int] {
        candidates { branch in RuleIndex.lookup(input, branch.path) }
    }

    /// The candidates, reading each branch's value with `read`.
    @inline(__always)
    func candidates<E: Error>(_ read: (Branch) throws(E) -> Value?) throws(E) -> [Int] {
        var node = root
        while true {
            switch node {
            case .leaf(let rules):
                return rules
            case .branch(let branch, let table, let otherwise):
                if let value = try read(branch), let next = table[value] {
                    node = next
                } else {
                    node = otherwise
                }
            }
        }
    }

    static func lookup(_ input: Value?, _ path: [Value]) -> Value? {
        guard var value = input else { return nil }
        for key in path {
            switch value {
            case .object(let o):
                guard let v = o[key] else { return nil }
                value = v
            case .array(let a):
                guard case .number(let n) = key, let i = n.intValue, i >= 0, i < a.count else { return nil }
                value = a[i]
            default:
                return nil
            }
        }
        return value
    }

    // MARK: - Building

    /// What one rule requires: input paths and the values allowed there.
    typealias Constraints = [[Value]: Set<Value>]

    /// An index for rules with these constraints; nil when no constraint would prune anything.
    static func build(_ constraints: [Constraints?], aliases: InputAliases) -> RuleIndex? {
        let all = Array(constraints.indices)
        guard constraints.count >= 2, constraints.contains(where: { !($0?.isEmpty ?? true) }) else { return nil }
        return RuleIndex(root: node(all, constraints, aliases, used: [], depth: 0))
    }

    private static func node(
        _ rules: [Int], _ constraints: [Constraints?], _ aliases: InputAliases, used: Set<[Value]>, depth: Int
    ) -> Node {
        guard rules.count >= 2, depth < 4 else { return .leaf(rules) }
        // The path the most rules constrain.
        var counts: [[Value]: Int] = [:]
        for r in rules {
            for path in (constraints[r] ?? [:]).keys where !used.contains(path) { counts[path, default: 0] += 1 }
        }
        guard let best = counts.max(by: { a, b in a.value < b.value || (a.value == b.value && lessPath(b.key, a.key)) })
        else {
            return .leaf(rules)
        }
        let path = best.key
        var byValue: [Value: [Int]] = [:]
        var unconstrained: [Int] = []
        for r in rules {
            if let values = constraints[r]?[path] {
                for v in values { byValue[v, default: []].append(r) }
            } else {
                unconstrained.append(r)
            }
        }
        var table: [Value: Node] = [:]
        let nextUsed = used.union([path])
        for (value, constrained) in byValue {
            let merged = (constrained + unconstrained).sorted()
            table[value] = node(merged, constraints, aliases, used: nextUsed, depth: depth + 1)
        }
        let otherwise = node(unconstrained, constraints, aliases, used: nextUsed, depth: depth + 1)
        let (alias, tail) = aliases.alias(covering: path)
        return .branch(Branch(path: path, alias: alias, tail: tail), table: table, otherwise: otherwise)
    }

    private static func lessPath(_ a: [Value], _ b: [Value]) -> Bool {
        Value.compare(.array(a), .array(b)) < 0
    }

    /// The equalities on input a rule's body requires. Rules with `else` have none: their other clauses run
    /// exactly when the first fails.
    static func constraints(of rule: CompiledRule, aliases: InputAliases) -> Constraints? {
        guard rule.clauses.count == 1 else { return nil }
        var out: Constraints = [:]
        for literal in rule.clauses[0].body {
            guard let (path, values) = requirement(literal.step, aliases) else { continue }
            if let existing = out[path] {
                out[path] = existing.intersection(values)
            } else {
                out[path] = values
            }
        }
        return out
    }

    private static func requirement(_ step: Step, _ aliases: InputAliases) -> ([Value], Set<Value>)? {
        switch step {
        case .unify(let a, let b):
            return equality(a, b, aliases)
        case .call(let c):
            let args = c.arguments
            guard c.output == nil, args.count == 2 else { return nil }
            switch c.target {
            case .compare(.equal):
                return equality(args[0], args[1], aliases)
            case .member:
                guard let collection = args[1].constantValue else { return nil }
                let allowed: Set<Value>
                switch collection {
                case .array(let items): allowed = Set(items)
                case .set(let items): allowed = items
                case .object(let members): allowed = Set(members.values)
                default: return nil
                }
                if let path = aliases.inputPath(args[0]) { return (path, allowed) }
                return aliases.preimage(args[0], allowed)
            default:
                return nil
            }
        default:
            return nil
        }
    }

    private static func equality(_ a: Operand, _ b: Operand, _ aliases: InputAliases) -> ([Value], Set<Value>)? {
        if let path = aliases.inputPath(a), let v = b.constantValue { return (path, [v]) }
        if let path = aliases.inputPath(b), let v = a.constantValue { return (path, [v]) }
        if let v = b.constantValue, let found = aliases.preimage(a, [v]) { return found }
        if let v = a.constantValue, let found = aliases.preimage(b, [v]) { return found }
        return nil
    }

}

/// Rules that only name a part of the input (`method := input.attributes.request.http.method`, as OPA-Envoy
/// policies write them): the index reads conditions on them as conditions on the input. While `with` replaces
/// part of `data`, the evaluator does not use indexes, so a replaced alias never misleads one.
struct InputAliases {
    private var paths: [Int: [Value]] = [:]
    /// Alias rules by the input path they name (the first such rule when several name one path).
    private var byPath: [[Value]: Int] = [:]
    /// Rules that look an input path up in a constant object (`caller := services[principal]`, with
    /// `services` a constant and `principal` an alias): the path and the object.
    private var lookups: [Int: (path: [Value], table: [Value: Value])] = [:]

    init(_ groups: [(node: Int, rules: [CompiledRule])]) {
        var candidates: [Int: Operand] = [:]
        var constants: [Int: Value] = [:]
        for (node, rules) in groups {
            guard rules.count == 1, let rule = rules.first, rule.parameters.isEmpty, rule.keys.isEmpty,
                !rule.addsToSet, rule.clauses.count == 1, rule.clauses[0].body.isEmpty
            else { continue }
            candidates[node] = rule.clauses[0].value
            if case .constant(let v) = rule.clauses[0].value { constants[node] = v }
        }
        // Resolve chains of aliases (`http := input.attributes.request.http`, `method := http.method`), walking
        // each chain to its end and back, without recursion (chains can be thousands of rules long).
        var unresolved = Set<Int>()
        for start in candidates.keys.sorted() where paths[start] == nil && !unresolved.contains(start) {
            var chain: [(node: Int, tail: [Value])] = []
            var visited: Set<Int> = []
            var current = start
            var resolved: [Value]?
            while resolved == nil, !unresolved.contains(current), let value = candidates[current],
                visited.insert(current).inserted
            {
                guard let (base, tail) = InputAliases.step(value) else { break }
                chain.append((current, tail))
                guard let next = base else {
                    resolved = []
                    break
                }
                if let known = paths[next] {
                    resolved = known
                } else {
                    current = next
                }
            }
            guard var path = resolved else {
                unresolved.formUnion(chain.map(\.node))
                continue
            }
            for (node, tail) in chain.reversed() {
                path += tail
                paths[node] = path
            }
        }
        for (node, path) in paths.sorted(by: { $0.key < $1.key }) where byPath[path] == nil { byPath[path] = node }
        for (node, value) in candidates {
            guard case .ref(let r) = value, r.path.count == 1, let path = inputPath(r.path[0]) else { continue }
            let table: Value?
            switch r.base {
            case .node(let id): table = constants[id]
            case .constant(let v): table = v
            default: table = nil
            }
            if case .object(let object)? = table { lookups[node] = (path, object) }
        }
    }

    /// The alias rule whose value is the longest prefix of `path`, and the rest of the path after it.
    func alias(covering path: [Value]) -> (node: Int?, tail: [Value]) {
        for length in stride(from: path.count, through: 1, by: -1) {
            if let node = byPath[Array(path[..<length])] { return (node, Array(path[length...])) }
        }
        return (nil, path)
    }

    /// For a rule that looks an input path up in a constant object: the path, and the keys whose values are
    /// in `values` (the lookup is one of `values` exactly when the input is one of those keys).
    func preimage(_ op: Operand, _ values: Set<Value>) -> ([Value], Set<Value>)? {
        guard case .node(let id) = op, let (path, table) = lookups[id] else { return nil }
        return (path, Set(table.compactMap { values.contains($0.value) ? $0.key : nil }))
    }

    /// One link of an alias: the node it reads (nil for `input` itself) and the constant keys after it.
    private static func step(_ op: Operand) -> (base: Int?, tail: [Value])? {
        switch op {
        case .input:
            return (nil, [])
        case .node(let id):
            return (id, [])
        case .ref(let r):
            guard let tail = r.constantPath else { return nil }
            switch r.base {
            case .input: return (nil, tail)
            case .node(let id): return (id, tail)
            default: return nil
            }
        default:
            return nil
        }
    }

    private func path(of op: Operand) -> [Value]? {
        guard let (base, tail) = InputAliases.step(op) else { return nil }
        guard let base else { return tail }
        return paths[base].map { $0 + tail }
    }

    /// The input path an operand reads, if it reads one with constant keys.
    func inputPath(_ op: Operand) -> [Value]? {
        path(of: op)
    }
}
