import PolicyCore

/// Compiles modules and base data into the immutable form the evaluator runs, in OPA's stages: parse, resolve
/// imports, build the rule tree (with its conflict checks), lower and order each body, check types and
/// recursion, and index the rules of each group.
struct PolicyCompiler {
    private var diagnostics: [Diagnostic] = []
    private let data: Value
    private let limits: InputLimits

    private init(data: Value, limits: InputLimits) {
        self.data = data
        self.limits = limits
    }

    static func compile(
        modules sources: [RegoModuleSource], data: Value, limits: InputLimits = .default
    ) -> Result<RegoPolicySet, RegoCompileError> {
        // Parsing and the stages after it recurse as deeply as the text nests (within the limit): on a stack of
        // their own, whatever thread asked.
        DeepStack.run(stackBytes: DeepStack.bytes(forDepth: limits.maxNestingDepth)) {
            var compiler = PolicyCompiler(data: data, limits: limits)
            return compiler.run(sources)
        }
    }

    private mutating func run(_ sources: [RegoModuleSource]) -> Result<RegoPolicySet, RegoCompileError> {
        // Parse, in file order.
        var modules: [Module] = []
        for source in sources.sorted(by: { $0.path < $1.path }) {
            let (module, problems) = Parser.parseModule(
                source.text, file: source.path, maximumDepth: limits.maxNestingDepth)
            diagnostics.append(contentsOf: problems)
            if let module { modules.append(module) }
        }
        guard diagnostics.isEmpty else { return .failure(RegoCompileError(diagnostics)) }

        let contexts = moduleContexts(modules)
        guard diagnostics.isEmpty else { return .failure(RegoCompileError(diagnostics)) }

        let tree = buildTree(contexts)
        checkTree(tree)
        guard diagnostics.isEmpty else { return .failure(RegoCompileError(diagnostics)) }

        let index = TreeIndex(tree)
        var compiled: [(node: NodeBuilder, rules: [CompiledRule], defaultRule: CompiledRule?)] = []
        var typeChecker = TypeChecker(tree: index, functionParameters: functionParameterTypes(tree))
        for node in tree.nodes where node.hasRules {
            var rules: [CompiledRule] = []
            var defaultRule: CompiledRule?
            for definition in node.definitions {
                let (rule, problems) = compileRule(definition, tree: index, typeChecker: &typeChecker)
                diagnostics.append(contentsOf: problems)
                if definition.rule.isDefault { defaultRule = rule } else { rules.append(rule) }
            }
            compiled.append((node, rules.map(Planner.plan), defaultRule.map(Planner.plan)))
        }
        guard diagnostics.isEmpty else { return .failure(RegoCompileError(diagnostics.sortedByPlace())) }
        let aliases = InputAliases(compiled.filter { $0.defaultRule == nil }.map { ($0.node.id, $0.rules) })
        var groups: [Int: RuleGroup] = [:]
        for (node, rules, defaultRule) in compiled {
            groups[node.id] = makeGroup(node.definitions[0].kind, rules: rules, defaultRule: defaultRule, aliases: aliases)
        }

        checkRecursion(tree, groups)
        guard diagnostics.isEmpty else { return .failure(RegoCompileError(diagnostics)) }

        let nodes = tree.nodes.map { builder in
            RuleNode(
                id: builder.id, path: builder.path, children: builder.children.mapValues(\.id),
                baseData: baseData(at: builder.path), group: groups[builder.id])
        }
        let packages = Set(modules.map(\.package)).sorted { $0.lexicographicallyPrecedes($1) }
        return .success(RegoPolicySet(nodes: nodes, tree: index, data: data, packages: packages, limits: limits))
    }

    // MARK: - Modules

    private mutating func moduleContexts(_ modules: [Module]) -> [ModuleContext] {
        var rulesByPackage: [[String]: Set<String>] = [:]
        for module in modules {
            for rule in module.rules { rulesByPackage[module.package, default: []].insert(rule.head.name) }
        }
        var contexts: [ModuleContext] = []
        for module in modules {
            var imports: [String: Term] = [:]
            for imp in module.imports {
                let root: String?
                switch imp.path.kind {
                case .variable(let name): root = name
                case .ref(let head, _): root = head.variableName
                default: root = nil
                }
                switch root {
                case "data", "input":
                    if let name = imp.boundName { imports[name] = imp.path }
                case "future", "rego":
                    continue
                default:
                    diagnostics.append(
                        RegoError.diagnostic(
                            RegoError.Code.parse,
                            "unexpected import path, must begin with one of: {data, future, input, rego}, got: "
                                + (root ?? "?") + " (hint: if this is unexpected, try updating OPA)",
                            imp.location))
                }
            }
            contexts.append(
                ModuleContext(module: module, imports: imports, ruleNames: rulesByPackage[module.package] ?? []))
        }
        return contexts
    }

    // MARK: - The rule tree

    private func buildTree(_ contexts: [ModuleContext]) -> TreeBuilder {
        let tree = TreeBuilder()
        for context in contexts {
            let packagePath = context.package.map { Value.string($0) }
            tree.node(at: packagePath).packageLocations.append(context.module.packageLocation)
            for rule in context.module.rules {
                var path = packagePath + [.string(rule.head.name)]
                var dynamic: [Term] = []
                for term in rule.head.reference.dropFirst() {
                    if dynamic.isEmpty, let key = term.groundValue, isScalar(key) {
                        path.append(key)
                    } else {
                        dynamic.append(term)
                    }
                }
                let kind: NodeBuilder.Definition.Kind
                if let arguments = rule.head.arguments {
                    kind = .function(arity: arguments.count)
                } else if rule.head.isContains || !dynamic.isEmpty {
                    kind = .multiValue
                } else {
                    kind = .complete
                }
                tree.node(at: path).definitions.append(
                    NodeBuilder.Definition(rule: rule, context: context, kind: kind, dynamicKeys: dynamic))
            }
        }
        return tree
    }

    private func isScalar(_ v: Value) -> Bool {
        switch v {
        case .array, .object, .set: return false
        default: return true
        }
    }

    private mutating func checkTree(_ tree: TreeBuilder) {
        for node in tree.nodes where node.hasRules {
            let definitions = node.definitions
            let name = RuleNode.name(of: node.path)
            let first = definitions[0]
            if definitions.contains(where: { $0.kind != first.kind })
                || (first.kind == .multiValue
                    && Set(definitions.map { $0.rule.head.isContains && $0.dynamicKeys.isEmpty }).count > 1)
            {
                // OPA names the path with the variable keys of the first rule that has them.
                var shown = name
                if let dynamic = definitions.first(where: { !$0.dynamicKeys.isEmpty }) {
                    shown += dynamic.dynamicKeys.map { "[" + $0.regoText + "]" }.joined()
                }
                diagnostics.append(
                    RegoError.diagnostic(RegoError.Code.type, "conflicting rules \(shown) found", first.location))
                continue
            }
            let defaults = definitions.filter(\.rule.isDefault)
            if defaults.count > 1 {
                let places = defaults.map { "\($0.location.file):\($0.location.line)" }.joined(separator: ", ")
                diagnostics.append(
                    RegoError.diagnostic(
                        RegoError.Code.type, "multiple default rules \(name) found at \(places)",
                        defaults[0].context.module.packageLocation))
            }
            if first.kind == .multiValue, !defaults.isEmpty {
                diagnostics.append(
                    RegoError.diagnostic(
                        RegoError.Code.type, "multi-value rules cannot have a default value", defaults[0].location))
            }
            // A rule with one value (or a function, or a set) owns its whole path: nothing may be defined below it.
            let ownsPath = first.kind != .multiValue || definitions.allSatisfy { $0.rule.head.isContains }
            if ownsPath {
                let below = tree.descendants(of: node)
                let conflicting = below.filter(\.hasRules)
                if !conflicting.isEmpty {
                    var message = "rule \(name) conflicts with:"
                    for other in conflicting {
                        for d in other.definitions {
                            message += "\n  rule \(RuleNode.name(of: other.path)) at \(d.location.file):\(d.location.line)"
                        }
                    }
                    diagnostics.append(RegoError.diagnostic(RegoError.Code.type, message, first.location))
                }
                for other in below + [node] {
                    for location in other.packageLocations {
                        let package = other.path.map { $0.stringValue ?? $0.description }.joined(separator: ".")
                        diagnostics.append(
                            RegoError.diagnostic(
                                RegoError.Code.type,
                                "package \(package) conflicts with rule \(node.path.last?.stringValue ?? "") defined at \(first.location.file):\(first.location.line)",
                                location))
                    }
                }
            }
            if conflictsWithBaseData(node.path) {
                let dataPath = node.path.map { $0.stringValue ?? $0.description }.joined(separator: "/")
                diagnostics.append(
                    RegoError.diagnostic(
                        RegoError.Code.compile, "conflicting rule for data path \(dataPath) found", first.location))
            }
        }
    }

    /// Whether base data already defines the path (or a non-object on the way to it).
    private func conflictsWithBaseData(_ path: [Value]) -> Bool {
        var value = data
        for key in path {
            guard case .object(let o) = value else { return true }
            guard let next = o[key] else { return false }
            value = next
        }
        return true
    }

    private func baseData(at path: [Value]) -> Value? {
        var value = data
        for key in path {
            guard case .object(let o) = value, let next = o[key] else { return nil }
            value = next
        }
        return value
    }

    // MARK: - Rules

    /// The parameter types of each function, from its definitions' patterns (several definitions: the union).
    private func functionParameterTypes(_ tree: TreeBuilder) -> [Int: [RegoType]] {
        var out: [Int: [RegoType]] = [:]
        for node in tree.nodes {
            guard case .function(let arity)? = node.definitions.first?.kind else { continue }
            var types: [[RegoType]] = Array(repeating: [], count: arity)
            for definition in node.definitions {
                guard let arguments = definition.rule.head.arguments, arguments.count == arity else { continue }
                for (i, argument) in arguments.enumerated() { types[i].append(TypeChecker.patternType(argument)) }
            }
            out[node.id] = types.map(TypeChecker.union)
        }
        return out
    }

    private func compileRule(
        _ definition: NodeBuilder.Definition, tree: TreeIndex, typeChecker: inout TypeChecker
    ) -> (CompiledRule, [Diagnostic]) {
        let rule = definition.rule
        let lowering = Lowering(tree: tree, context: definition.context)
        let top = lowering.newScope(parent: nil)
        var parameters: [Operand] = []
        if let arguments = rule.head.arguments {
            for argument in arguments { parameters.append(lowering.declareParameter(argument, in: top)) }
        }
        var clauses: [CompiledRule.Clause] = []
        // The main body, with the reference's variables and the value.
        let scope = lowering.newScope(parent: top)
        var literals = lowering.lowerStatements(rule.body, in: scope)
        let keys = definition.dynamicKeys.map { lowering.lowerTerm($0, scope: scope, into: &literals) }
        let valueTerm = rule.head.key ?? rule.head.value
        let value = valueTerm.map { lowering.lowerTerm($0, scope: scope, into: &literals) } ?? .constant(.bool(true))
        let (ordered, _) = lowering.order(
            literals, in: scope, head: keys + [value], headLocation: rule.head.location)
        clauses.append(CompiledRule.Clause(body: ordered, value: value, location: rule.location))
        for clause in rule.elseClauses {
            let elseScope = lowering.newScope(parent: top)
            var elseLiterals = lowering.lowerStatements(clause.body, in: elseScope)
            let elseValue =
                clause.value.map { lowering.lowerTerm($0, scope: elseScope, into: &elseLiterals) } ?? .constant(.bool(true))
            let (elseOrdered, _) = lowering.order(
                elseLiterals, in: elseScope, head: [elseValue], headLocation: clause.location)
            clauses.append(CompiledRule.Clause(body: elseOrdered, value: elseValue, location: clause.location))
        }
        let compiled = CompiledRule(
            location: rule.location, frameSize: lowering.slots.count, parameters: parameters, keys: keys,
            addsToSet: rule.head.isContains, clauses: clauses)
        var problems = lowering.diagnostics
        if problems.isEmpty {
            problems.append(contentsOf: typeChecker.check(compiled, lowering: lowering))
        }
        return (compiled, problems)
    }

    private func makeGroup(
        _ kind: NodeBuilder.Definition.Kind, rules: [CompiledRule], defaultRule: CompiledRule?, aliases: InputAliases
    ) -> RuleGroup {
        let groupKind: RuleGroup.Kind
        switch kind {
        case .complete: groupKind = .complete
        case .multiValue: groupKind = .multiValue
        case .function(let arity): groupKind = .function(arity: arity)
        }
        // Rules that can only give one constant value need not be evaluated past the first that succeeds.
        var stops = false
        if case .multiValue = groupKind {
        } else {
            let values = rules.flatMap { $0.clauses.map(\.value.constantValue) }
            if let first = values.first ?? nil, values.allSatisfy({ $0 == first }) { stops = true }
        }
        let index: RuleIndex?
        if case .function = groupKind {
            index = nil
        } else {
            index = RuleIndex.build(rules.map { RuleIndex.constraints(of: $0, aliases: aliases) }, aliases: aliases)
        }
        return RuleGroup(kind: groupKind, rules: rules, defaultRule: defaultRule, stopsAtFirstValue: stops, index: index)
    }

    // MARK: - Recursion

    private mutating func checkRecursion(_ tree: TreeBuilder, _ groups: [Int: RuleGroup]) {
        // Which rule nodes each rule node reads.
        var ruleNodesBelow: [Int: [Int]] = [:]
        func below(_ id: Int) -> [Int] {
            if let known = ruleNodesBelow[id] { return known }
            let node = tree.nodes[id]
            var out = node.hasRules ? [id] : []
            for key in node.children.keys.sorted() { out.append(contentsOf: below(node.children[key]!.id)) }
            ruleNodesBelow[id] = out
            return out
        }
        var edges: [Int: [Int]] = [:]
        for (id, group) in groups {
            var referenced = Set<Int>()
            for rule in group.rules + (group.defaultRule.map { [$0] } ?? []) {
                for clause in rule.clauses {
                    NodeReferences.collect(clause.body, into: &referenced)
                    NodeReferences.collect(clause.value, into: &referenced)
                }
                for k in rule.keys { NodeReferences.collect(k, into: &referenced) }
            }
            var targets = Set<Int>()
            for r in referenced {
                if r < 0 {
                    // A path into base data beside a package's rules: only the node's own rules, if any.
                    if tree.nodes[-r - 1].hasRules { targets.insert(-r - 1) }
                } else {
                    targets.formUnion(below(r))
                }
            }
            edges[id] = targets.sorted()
        }
        // Only rules on a cycle can reach themselves: find those in linear time first, so that a policy of
        // thousands of rules is not searched once per rule.
        let cyclic = PolicyCompiler.nodesOnCycles(edges)
        for id in groups.keys.sorted() where cyclic.contains(id) {
            guard let cycle = path(from: id, to: id, edges) else { continue }
            let names = ([id] + cycle).map { RuleNode.name(of: tree.nodes[$0].path) }
            let location = tree.nodes[id].definitions[0].location
            diagnostics.append(
                RegoError.diagnostic(
                    RegoError.Code.recursion,
                    "rule \(names[0]) is recursive: " + names.joined(separator: " -> "), location))
        }
    }

    /// The nodes that lie on a cycle: those of strongly connected components with more than one node, and
    /// nodes with an edge to themselves (Tarjan's algorithm, with an explicit stack so that long chains do not
    /// nest calls).
    static func nodesOnCycles(_ edges: [Int: [Int]]) -> Set<Int> {
        var index: [Int: Int] = [:]
        var lowLink: [Int: Int] = [:]
        var onStack = Set<Int>()
        var stack: [Int] = []
        var out = Set<Int>()
        var next = 0
        for root in edges.keys.sorted() where index[root] == nil {
            // Each frame: a node and how many of its edges have been followed.
            var frames: [(node: Int, edge: Int)] = [(root, 0)]
            index[root] = next
            lowLink[root] = next
            next += 1
            stack.append(root)
            onStack.insert(root)
            while let (node, edge) = frames.last {
                let targets = edges[node] ?? []
                if edge < targets.count {
                    frames[frames.count - 1].edge += 1
                    let target = targets[edge]
                    if index[target] == nil {
                        index[target] = next
                        lowLink[target] = next
                        next += 1
                        stack.append(target)
                        onStack.insert(target)
                        frames.append((target, 0))
                    } else if onStack.contains(target) {
                        lowLink[node] = min(lowLink[node]!, index[target]!)
                    }
                    continue
                }
                frames.removeLast()
                if let parent = frames.last?.node { lowLink[parent] = min(lowLink[parent]!, lowLink[node]!) }
                guard lowLink[node] == index[node] else { continue }
                var component: [Int] = []
                while let member = stack.popLast() {
                    onStack.remove(member)
                    component.append(member)
                    if member == node { break }
                }
                if component.count > 1 || targets.contains(node) { out.formUnion(component) }
            }
        }
        return out
    }

    /// The shortest path of edges from `start` to `goal` (excluding `start`), if any.
    private func path(from start: Int, to goal: Int, _ edges: [Int: [Int]]) -> [Int]? {
        var previous: [Int: Int] = [:]
        var queue = [start]
        var head = 0
        var seen: Set<Int> = []
        while head < queue.count {
            let current = queue[head]
            head += 1
            for next in edges[current] ?? [] {
                if next == goal {
                    var path = [goal]
                    var at = current
                    while at != start {
                        path.insert(at, at: 0)
                        at = previous[at]!
                    }
                    return path
                }
                if seen.insert(next).inserted {
                    previous[next] = current
                    queue.append(next)
                }
            }
        }
        return nil
    }
}

/// The rule-tree nodes an operand or body refers to (including the functions it calls). A node read only
/// through a constant key that is not one of its children (base data beside its rules) is recorded as
/// `-id - 1`.
enum NodeReferences {
    static func collect(_ literals: [Literal], into out: inout Set<Int>) {
        for literal in literals { collect(literal.step, into: &out) }
    }

    static func collect(_ step: Step, into out: inout Set<Int>) {
        switch step {
        case .test(let op):
            collect(op, into: &out)
        case .unify(let a, let b):
            collect(a, into: &out)
            collect(b, into: &out)
        case .call(let c):
            if case .function(let id) = c.target { out.insert(id) }
            for a in c.arguments { collect(a, into: &out) }
            if let output = c.output { collect(output, into: &out) }
        case .member(let key, let value, let domain):
            if let key { collect(key, into: &out) }
            collect(value, into: &out)
            collect(domain, into: &out)
        case .not(let inner):
            collect(inner, into: &out)
        case .every(let key, let value, let domain, let body):
            if let key { collect(key, into: &out) }
            collect(value, into: &out)
            collect(domain, into: &out)
            collect(body, into: &out)
        case .with(let bindings, let inner):
            for b in bindings {
                switch b.replacement {
                case .value(let op): collect(op, into: &out)
                case .function(.function(let id)): out.insert(id)
                case .function: break
                }
            }
            collect(inner, into: &out)
        case .print(let args):
            for a in args { collect(a, into: &out) }
        }
    }

    static func collect(_ op: Operand, into out: inout Set<Int>) {
        switch op {
        case .node(let id): out.insert(id)
        case .data: out.insert(0)
        case .ref(let r):
            if case .node(let id) = r.base {
                if case .constant? = r.path.first { out.insert(-id - 1) } else { out.insert(id) }
            } else {
                collect(r.base, into: &out)
            }
            for p in r.path { collect(p, into: &out) }
        case .array(let items), .set(let items):
            for i in items { collect(i, into: &out) }
        case .object(let keys, let values):
            for k in keys { collect(k, into: &out) }
            for v in values { collect(v, into: &out) }
        case .comprehension(let c):
            collect(c.head, into: &out)
            if let v = c.value { collect(v, into: &out) }
            collect(c.body, into: &out)
        case .constant, .local, .input:
            break
        }
    }
}
