import PolicyCore

/// Rules, functions and the documents of the rule tree.
extension Evaluator {
    // MARK: - Documents

    /// The document at a rule-tree node: a rule's value, a set or object built by many rules, or a package's
    /// rules and base data merged. Computed once per query (per `with` scope).
    func nodeValue(_ id: Int) throws(EvalSignal) -> Value? {
        if !dataOverrides.isEmpty, let overridden = overriddenValue(at: nodes[id].path) {
            return overridden
        }
        if cache[id].generation == generation { return cache[id].value }
        var value = try computeNodeValue(id)
        if !dataOverrides.isEmpty { value = patchOverridesBelow(nodes[id], value) }
        cache[id] = CacheEntry(generation: generation, value: value)
        return value
    }

    private func computeNodeValue(_ id: Int) throws(EvalSignal) -> Value? {
        let node = nodes[id]
        var result: Value?
        if let group = node.group {
            switch group.kind {
            case .function: return nil
            case .complete: return try evalComplete(group)
            case .multiValue: result = try evalMultiValue(group)
            }
        } else {
            result = node.baseData
        }
        if node.childKeys.isEmpty {
            if let result { return result }
            return node.group == nil ? Value.emptyObject : Optional<Value>.none
        }
        var object: [Value: Value]
        switch result {
        case .object(let o)?: object = o
        case nil: object = [:]
        default: return result
        }
        for key in node.childKeys {
            guard let v = try nodeValue(node.children[key]!) else { continue }
            if node.group != nil, let existing = object[key], existing != v {
                throw failure(
                    RegoError.Code.conflict, "object keys must be unique", node.group?.rules.first?.location)
            }
            object[key] = v
        }
        return .object(object)
    }

    // MARK: - Rule groups

    /// The value of complete rules: the one value their solutions give (a conflict if they give two), or the
    /// default.
    func evalComplete(_ group: RuleGroup) throws(EvalSignal) -> Value? {
        if let constant = group.constantValue { return constant }
        var result: Value?
        let candidates = try group.index.flatMap { (index) throws(EvalSignal) in try self.candidates(index) }
        let count = candidates?.count ?? group.rules.count
        for position in 0..<count {
            let rule = group.rules[candidates?[position] ?? position]
            try evalRuleValue(rule, arguments: nil, into: &result, conflict: "complete rules must not produce multiple outputs")
            if result != nil, group.stopsAtFirstValue { break }
        }
        if result == nil, let fallback = group.defaultRule {
            try evalRuleValue(fallback, arguments: nil, into: &result, conflict: "complete rules must not produce multiple outputs")
        }
        return result
    }

    /// The one value of a straight clause (see `Clause.isStraight`) in a new frame, or nil when its body fails.
    @inline(__always)
    private func evalStraight(_ rule: CompiledRule, _ clause: CompiledRule.Clause, arguments: [Value]?)
        throws(EvalSignal) -> Value?
    {
        guard depth < Evaluator.maximumDepth else { throw tooDeep(rule.location) }
        try checkStack(rule.location)
        depth += 1
        let saved = pushFrame(rule.frameSize)
        let mark = trail.count
        defer {
            undo(to: mark)
            popFrame(rule.frameSize, saved)
            depth -= 1
        }
        if let arguments {
            guard arguments.count == rule.parameters.count else { return nil }
            for i in arguments.indices {
                guard try matchDirect(rule.parameters[i], arguments[i]) else { return nil }
            }
        }
        for literal in clause.body {
            guard let direct = literal.direct, try run(direct, literal) else { return nil }
        }
        return try value(clause.value)
    }

    /// The rules of an indexed group worth evaluating: the index reads each branch's input path through its
    /// alias rule when it has one (that value is computed once per evaluation, and the rule bodies read it too).
    /// While `with` replaces part of `data`, every rule is a candidate.
    private func candidates(_ index: RuleIndex) throws(EvalSignal) -> [Int]? {
        guard dataOverrides.isEmpty else { return nil }
        return try index.candidates { (branch) throws(EvalSignal) -> Value? in
            guard let alias = branch.alias else { return RuleIndex.lookup(self.input, branch.path) }
            guard var value = try self.nodeValue(alias) else { return nil }
            for key in branch.tail {
                guard let child = Evaluator.lookup(value, key) else { return nil }
                value = child
            }
            return value
        }
    }

    /// Evaluates one rule (or function definition) and merges the values it gives into `result`.
    private func evalRuleValue(
        _ rule: CompiledRule, arguments: [Value]?, into result: inout Value?, conflict message: String
    ) throws(EvalSignal) {
        if let clause = rule.straightClause {
            guard let v = try evalStraight(rule, clause, arguments: arguments) else { return }
            if let existing = result {
                if existing != v { throw failure(RegoError.Code.conflict, message, rule.location) }
            } else {
                result = v
            }
            return
        }
        do {
            try evalRule(rule, arguments: arguments) { (clause) throws(EvalSignal) in
                func merge(_ v: Value) throws(EvalSignal) {
                    if let existing = result {
                        if existing != v { throw self.failure(RegoError.Code.conflict, message, rule.location) }
                    } else {
                        result = v
                    }
                    // A constant value cannot change with further solutions of this body.
                    if case .constant = clause.value { throw EvalSignal.stop }
                }
                if clause.valueIsDirect {
                    if let v = try self.value(clause.value) { try merge(v) }
                } else {
                    try self.eval(clause.value, merge)
                }
            }
        } catch {
            guard case .stop = error else { throw error }
        }
    }

    /// Runs a rule's clauses in a new frame, calling `emit` (with the frame in place) for each solution of
    /// the first clause that has any.
    func evalRule(
        _ rule: CompiledRule, arguments: [Value]?, _ emit: (CompiledRule.Clause) throws(EvalSignal) -> Void
    ) throws(EvalSignal) {
        // Nesting is counted by the bodies (`evalBody`), every rule has one; this check gives the error the rule's place.
        guard depth < Evaluator.maximumDepth else { throw tooDeep(rule.location) }
        try checkStack(rule.location)
        let saved = pushFrame(rule.frameSize)
        let mark = trail.count
        defer {
            undo(to: mark)
            popFrame(rule.frameSize, saved)
        }
        if let arguments {
            guard arguments.count == rule.parameters.count else { return }
            for i in arguments.indices {
                guard try matchDirect(rule.parameters[i], arguments[i]) else { return }
            }
        }
        try evalClauses(rule, emit)
    }

    private func evalClauses(
        _ rule: CompiledRule, _ emit: (CompiledRule.Clause) throws(EvalSignal) -> Void
    ) throws(EvalSignal) {
        for clause in rule.clauses {
            var found = false
            try evalBody(clause.body, 0) { () throws(EvalSignal) in
                found = true
                try emit(clause)
            }
            if found { return }
        }
    }

    /// The set or object built by `contains` rules and rules with variables in their reference.
    func evalMultiValue(_ group: RuleGroup) throws(EvalSignal) -> Value {
        let isSet = group.rules.allSatisfy { $0.addsToSet && $0.keys.isEmpty } && !group.rules.isEmpty
        var set = Set<Value>()
        var object: [Value: Value] = [:]
        let candidates = try group.index.flatMap { (index) throws(EvalSignal) in try self.candidates(index) }
        let count = candidates?.count ?? group.rules.count
        for position in 0..<count {
            let rule = group.rules[candidates?[position] ?? position]
            if isSet, let clause = rule.straightClause {
                if let v = try evalStraight(rule, clause, arguments: nil) { set.insert(v) }
                continue
            }
            try evalRule(rule, arguments: nil) { (clause) throws(EvalSignal) in
                if isSet {
                    if clause.valueIsDirect {
                        if let v = try self.value(clause.value) { set.insert(v) }
                    } else {
                        try self.eval(clause.value) { (v) throws(EvalSignal) in set.insert(v) }
                    }
                    return
                }
                var keys: [Value] = []
                keys.reserveCapacity(rule.keys.count)
                try self.evalAll(rule.keys, 0, &keys) { (keys) throws(EvalSignal) in
                    try self.eval(clause.value) { (v) throws(EvalSignal) in
                        try self.insert(&object, keys[...], v, addsToSet: rule.addsToSet, rule.location)
                    }
                }
            }
        }
        if group.rules.isEmpty, let rule = group.defaultRule, rule.addsToSet { return .set([]) }
        return isSet ? .set(set) : .object(object)
    }

    /// Puts a value (or a set member) at a key path inside an object.
    private func insert(
        _ object: inout [Value: Value], _ keys: ArraySlice<Value>, _ value: Value, addsToSet: Bool, _ location: Location
    ) throws(EvalSignal) {
        let key = keys[keys.startIndex]
        if keys.count == 1 {
            if addsToSet {
                switch object[key] {
                case nil:
                    object[key] = .set([value])
                case .set(var members)?:
                    object[key] = nil
                    members.insert(value)
                    object[key] = .set(members)
                default:
                    throw failure(RegoError.Code.conflict, "object keys must be unique", location)
                }
            } else if let existing = object[key] {
                if existing != value { throw failure(RegoError.Code.conflict, "object keys must be unique", location) }
            } else {
                object[key] = value
            }
            return
        }
        var child: [Value: Value]
        switch object[key] {
        case nil: child = [:]
        case .object(let o)?: child = o
        default: throw failure(RegoError.Code.conflict, "object keys must be unique", location)
        }
        object[key] = nil
        try insert(&child, keys.dropFirst(), value, addsToSet: addsToSet, location)
        object[key] = .object(child)
    }

    // MARK: - Functions

    func callFunction(_ id: Int, _ arguments: [Value]) throws(EvalSignal) -> Value? {
        guard let group = nodes[id].group else { return nil }
        var result: Value?
        for rule in group.rules {
            try evalRuleValue(
                rule, arguments: arguments, into: &result,
                conflict: "functions must not produce multiple outputs for same inputs")
            if result != nil, group.stopsAtFirstValue { break }
        }
        if result == nil, let fallback = group.defaultRule {
            try evalRuleValue(
                fallback, arguments: arguments, into: &result,
                conflict: "functions must not produce multiple outputs for same inputs")
        }
        return result
    }

    // MARK: - Calls

    func call(_ c: Call, _ literal: Literal, _ k: Continuation) throws(EvalSignal) {
        let target = c.target, args = c.arguments, output = c.output
        // Comparisons and membership need no operand array.
        if functionOverrides.isEmpty, args.count == 2 {
            switch target {
            case .compare(let comparison):
                try eval(args[0]) { (a) throws(EvalSignal) in
                    try self.eval(args[1]) { (b) throws(EvalSignal) in
                        let holds = comparison.holds(a, b)
                        if let output {
                            try self.match(output, .bool(holds), k)
                        } else if holds {
                            try k()
                        }
                    }
                }
                return
            case .member:
                try eval(args[0]) { (a) throws(EvalSignal) in
                    try self.eval(args[1]) { (b) throws(EvalSignal) in
                        let holds = Evaluator.contains(b, a)
                        if let output {
                            try self.match(output, .bool(holds), k)
                        } else if holds {
                            try k()
                        }
                    }
                }
                return
            default:
                break
            }
        }
        var values: [Value] = []
        values.reserveCapacity(args.count)
        try evalAll(args, 0, &values) { (values) throws(EvalSignal) in
            guard let result = try self.invoke(target, values, c.name, literal) else { return }
            if let output {
                try self.match(output, result, k)
            } else {
                if case .bool(false) = result { return }
                try k()
            }
        }
    }

    /// A call whose operands are all known (see `Planner`): whether it holds, its output bound.
    func callDirect(_ c: Call, _ literal: Literal) throws(EvalSignal) -> Bool {
        let args = c.arguments
        if functionOverrides.isEmpty, args.count == 2 {
            switch c.target {
            case .compare(let comparison):
                guard let a = try value(args[0]), let b = try value(args[1]) else { return false }
                let holds = comparison.holds(a, b)
                if let output = c.output { return try matchDirect(output, .bool(holds)) }
                return holds
            case .member:
                guard let a = try value(args[0]), let b = try value(args[1]) else { return false }
                let holds = Evaluator.contains(b, a)
                if let output = c.output { return try matchDirect(output, .bool(holds)) }
                return holds
            default:
                break
            }
        }
        var values = argumentPool.popLast() ?? []
        defer {
            values.removeAll(keepingCapacity: true)
            argumentPool.append(values)
        }
        for arg in args {
            guard let v = try value(arg) else { return false }
            values.append(v)
        }
        guard let result = try invoke(c.target, values, c.name, literal) else { return false }
        if let output = c.output { return try matchDirect(output, result) }
        if case .bool(false) = result { return false }
        return true
    }

    func invoke(_ target: CallTarget, _ values: [Value], _ name: String, _ literal: Literal) throws(EvalSignal)
        -> Value?
    {
        if !functionOverrides.isEmpty, let (key, replacement) = replacement(for: target, name) {
            switch replacement {
            case .value(let v):
                return v
            case .target(let other):
                // The replacement runs with the original function in place, as in OPA, so a replacement that
                // calls the function it replaces does not call itself.
                functionOverrides[key] = nil
                defer { functionOverrides[key] = replacement }
                return try invokeUnreplaced(other, values, name, literal)
            }
        }
        return try invokeUnreplaced(target, values, name, literal)
    }

    private func invokeUnreplaced(_ target: CallTarget, _ values: [Value], _ name: String, _ literal: Literal)
        throws(EvalSignal) -> Value?
    {
        switch target {
        case .builtin(let builtin):
            guard values.count == builtin.arity else { return nil }
            do {
                return try builtin.implementation(values, builtinContext)
            } catch {
                // OPA: a builtin error makes the call undefined; with strict builtin errors the first one becomes
                // the query's error once evaluation ends.
                if builtinError == nil {
                    builtinError = RegoError.diagnostic(
                        error.kind.rawValue, "\(builtin.name): \(error.message)", literal.location)
                }
                return nil
            }
        case .function(let id):
            return try callFunction(id, values)
        case .compare(let comparison):
            guard values.count == 2 else { return nil }
            return .bool(comparison.holds(values[0], values[1]))
        case .member:
            guard values.count == 2 else { return nil }
            return .bool(Evaluator.contains(values[1], values[0]))
        case .memberWithKey:
            guard values.count == 3 else { return nil }
            return .bool(Evaluator.contains(values[2], key: values[0], value: values[1]))
        }
    }

    private func replacement(for target: CallTarget, _ name: String) -> (FunctionKey, FunctionReplacement)? {
        let key: FunctionKey
        switch target {
        case .builtin(let b): key = .builtin(b.name)
        case .function(let id): key = .node(id)
        case .compare: key = .builtin(name)
        case .member, .memberWithKey: return nil
        }
        guard let replacement = functionOverrides[key] else { return nil }
        return (key, replacement)
    }

    /// `x in xs`: a member of an array or set, or a value of an object.
    static func contains(_ collection: Value, _ element: Value) -> Bool {
        switch collection {
        case .array(let a): return a.contains(element)
        case .set(let s): return s.contains(element)
        case .object(let o): return o.values.contains(element)
        default: return false
        }
    }

    /// `k, v in xs`.
    static func contains(_ collection: Value, key: Value, value: Value) -> Bool {
        guard let member = lookup(collection, key) else { return false }
        if case .set = collection { return key == value }
        return member == value
    }
}
