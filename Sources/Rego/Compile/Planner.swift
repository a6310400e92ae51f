import PolicyCore

/// Decides once per compile how each literal runs. Safety ordering fixes which variables are bound before each
/// literal, so a literal whose operands are all known when it runs has at most one solution: it is planned as a
/// `DirectStep`, which the evaluator runs in its body loop (evaluate, test, bind, go on to the next literal)
/// without a continuation. `some x in xs` over a known collection is a loop of that same body loop, which
/// backtracks into it. Only other literals that iterate (references with unbound variables, calls whose
/// output is not a plain pattern) keep the general form, where the rest of the body is a continuation.
///
/// This is the shape of OPA's planner (a body becomes statements over locals; only scans nest) and of
/// regorus' RVM (loops are the only control flow that suspends), kept on Warden's own compiled literals.
///
/// Builtins with constant operands get their work done here when it can be: a `glob.match` pattern is compiled
/// once per policy instead of looked up in the shared glob cache on every call.
enum Planner {
    /// A rule with every clause planned; its parameters are bound before the bodies run.
    static func plan(_ rule: CompiledRule) -> CompiledRule {
        var parameters = Set<Int>()
        for p in rule.parameters { locals(p, into: &parameters) }
        let clauses = rule.clauses.map { clause in
            let (body, bound) = plan(clause.body, bound: parameters)
            let value = plan(clause.value, bound: bound)
            return CompiledRule.Clause(
                body: body, value: value, location: clause.location, valueIsDirect: isValue(value, bound))
        }
        // The keys are evaluated with the first clause's bindings (rules with keys have no `else`).
        let bound = clauses.first.map { bodyBound($0.body, parameters) } ?? parameters
        return CompiledRule(
            location: rule.location, frameSize: rule.frameSize, parameters: rule.parameters,
            keys: rule.keys.map { plan($0, bound: bound) }, addsToSet: rule.addsToSet, clauses: clauses)
    }

    /// A query's literals, planned with nothing bound before them.
    static func plan(query literals: [Literal]) -> [Literal] {
        plan(literals, bound: []).literals
    }

    // MARK: - Bodies

    static func plan(_ literals: [Literal], bound initial: Set<Int>) -> (literals: [Literal], bound: Set<Int>) {
        var bound = initial
        var out: [Literal] = []
        out.reserveCapacity(literals.count)
        for literal in literals { out.append(plan(literal, bound: &bound)) }
        return (out, bound)
    }

    private static func bodyBound(_ literals: [Literal], _ initial: Set<Int>) -> Set<Int> {
        var bound = initial
        for literal in literals { binds(literal.step, into: &bound) }
        return bound
    }

    /// Plans one literal given the variables bound before it, and adds those it binds.
    private static func plan(_ literal: Literal, bound: inout Set<Int>) -> Literal {
        let step: Step
        var direct: DirectStep?
        switch literal.step {
        case .test(let op):
            let op = plan(op, bound: bound)
            step = .test(op)
            if isValue(op, bound) { direct = .check(op) }
        case .unify(let a, let b):
            let a = plan(a, bound: bound), b = plan(b, bound: bound)
            step = .unify(a, b)
            if isValue(a, bound), isValue(b, bound) {
                direct = .equal(a, b)
            } else if isValue(b, bound), isPattern(a, bound) {
                direct = .bind(pattern: a, value: b)
            } else if isValue(a, bound), isPattern(b, bound) {
                direct = .bind(pattern: b, value: a)
            }
        case .call(let c):
            let arguments = c.arguments.map { plan($0, bound: bound) }
            let output = c.output.map { plan($0, bound: bound) }
            let call = Call(target: c.target, arguments: arguments, output: output, name: c.name)
            step = .call(call)
            if arguments.allSatisfy({ isValue($0, bound) }), output.map({ isPattern($0, bound) }) ?? true {
                direct = specialized(call) ?? .call(call)
            }
        case .member(let key, let value, let domain):
            let key = key.map { plan($0, bound: bound) }
            let value = plan(value, bound: bound)
            let domain = plan(domain, bound: bound)
            step = .member(key: key, value: value, domain: domain)
            // A loop over a known collection runs in the body's loop too (even with its variables bound it holds
            // once per equal member, as OPA iterates).
            if isValue(domain, bound), key.map({ isPattern($0, bound) }) ?? true, isPattern(value, bound) {
                direct = .each(key: key, value: value, domain: domain)
            }
        case .not(let inner):
            let inner = plan(inner, bound: bound).literals
            step = .not(inner)
            direct = .not(inner)
        case .every(let key, let value, let domain, let body):
            let domain = plan(domain, bound: bound)
            var inner = bound
            if let key { locals(key, into: &inner) }
            locals(value, into: &inner)
            let body = plan(body, bound: inner).literals
            step = .every(key: key, value: value, domain: domain, body: body)
            if isValue(domain, bound) { direct = .every }
        case .with(let bindings, let inner):
            let bindings = bindings.map { binding in
                guard case .value(let op) = binding.replacement else { return binding }
                return WithBinding(target: binding.target, replacement: .value(plan(op, bound: bound)))
            }
            let (planned, innerBound) = plan(inner, bound: bound)
            step = .with(bindings, planned)
            let replacementsKnown = bindings.allSatisfy { binding in
                guard case .value(let op) = binding.replacement else { return true }
                return isValue(op, bound)
            }
            if replacementsKnown, planned.allSatisfy({ $0.direct?.hasOneSolution ?? false }) {
                direct = .with(bindings, planned)
            }
            bound = innerBound
            return Literal(step: step, location: literal.location, direct: direct)
        case .print(let args):
            let args = args.map { plan($0, bound: bound) }
            step = .print(args)
            direct = .print(args)
        }
        binds(step, into: &bound)
        return Literal(step: step, location: literal.location, direct: direct)
    }

    /// The variables a literal has bound once it succeeds: every variable outside its closures (Rego's safety
    /// guarantees it), and for `with` those of the literals it covers.
    private static func binds(_ step: Step, into bound: inout Set<Int>) {
        switch step {
        case .test(let op):
            locals(op, into: &bound)
        case .unify(let a, let b):
            locals(a, into: &bound)
            locals(b, into: &bound)
        case .call(let c):
            for a in c.arguments { locals(a, into: &bound) }
            if let output = c.output { locals(output, into: &bound) }
        case .member(let key, let value, let domain):
            if let key { locals(key, into: &bound) }
            locals(value, into: &bound)
            locals(domain, into: &bound)
        case .with(_, let inner):
            for literal in inner { binds(literal.step, into: &bound) }
        case .not, .every, .print:
            break
        }
    }

    // MARK: - Builtins with constant operands

    private static func specialized(_ call: Call) -> DirectStep? {
        guard case .builtin(let builtin) = call.target else { return nil }
        switch builtin.name {
        case "glob.match":
            let args = call.arguments
            guard case .constant(.string(let pattern)) = args[0], let separators = GlobSeparators.read(args[1]),
                let compiled = try? GlobPattern(pattern, separators: separators)
            else { return nil }
            return .globMatch(GlobCall(pattern: compiled, text: args[2], call: call))
        default:
            return nil
        }
    }

    // MARK: - Operands

    /// The operand with the bodies of its comprehensions planned.
    static func plan(_ op: Operand, bound: Set<Int>) -> Operand {
        switch op {
        case .constant, .local, .input, .data, .node:
            return op
        case .ref(let r):
            return .ref(plan(r.base, bound: bound), r.path.map { plan($0, bound: bound) })
        case .array(let items):
            return .array(items.map { plan($0, bound: bound) })
        case .set(let items):
            return .set(items.map { plan($0, bound: bound) })
        case .object(let keys, let values):
            return .object(keys.map { plan($0, bound: bound) }, values.map { plan($0, bound: bound) })
        case .comprehension(let c):
            let (body, inner) = plan(c.body, bound: bound)
            let head = plan(c.head, bound: inner)
            let value = c.value.map { plan($0, bound: inner) }
            return .comprehension(
                Comprehension(
                    kind: c.kind, head: head, value: value, body: body, location: c.location,
                    headIsDirect: isValue(head, inner) && (value.map { isValue($0, inner) } ?? true)))
        }
    }

    /// Whether the operand has exactly one value or none once `bound` is bound: no variable it reads is unbound
    /// (an unbound variable in a reference would iterate).
    static func isValue(_ op: Operand, _ bound: Set<Int>) -> Bool {
        switch op {
        case .constant, .input, .data, .node, .comprehension:
            return true
        case .local(let s):
            return bound.contains(s)
        case .ref(let r):
            return isValue(r.base, bound) && r.path.allSatisfy { isValue($0, bound) }
        case .array(let items), .set(let items):
            return items.allSatisfy { isValue($0, bound) }
        case .object(let keys, let values):
            return keys.allSatisfy { isValue($0, bound) } && values.allSatisfy { isValue($0, bound) }
        }
    }

    /// Whether matching a value against the operand binds its variables without iterating: variables,
    /// constants, arrays of patterns, objects with known keys, or operands with one value.
    static func isPattern(_ op: Operand, _ bound: Set<Int>) -> Bool {
        switch op {
        case .local, .constant:
            return true
        case .array(let items):
            return items.allSatisfy { isPattern($0, bound) }
        case .object(let keys, let values):
            return keys.allSatisfy { isValue($0, bound) } && values.allSatisfy { isPattern($0, bound) }
        default:
            return isValue(op, bound)
        }
    }

    /// The variables of an operand outside its closures.
    static func locals(_ op: Operand, into out: inout Set<Int>) {
        switch op {
        case .local(let s): out.insert(s)
        case .ref(let r):
            locals(r.base, into: &out)
            for p in r.path { locals(p, into: &out) }
        case .array(let items), .set(let items):
            for i in items { locals(i, into: &out) }
        case .object(let keys, let values):
            for k in keys { locals(k, into: &out) }
            for v in values { locals(v, into: &out) }
        case .comprehension, .constant, .input, .data, .node:
            break
        }
    }
}

/// How a literal with at most one solution runs (see `Planner`).
enum DirectStep: Sendable {
    /// The operand must be defined and not `false`.
    case check(Operand)
    /// Both operands defined and equal.
    case equal(Operand, Operand)
    /// The value matched against a pattern, binding its unbound variables.
    case bind(pattern: Operand, value: Operand)
    /// A call whose operands are known; its output (if any) is a pattern.
    case call(Call)
    case not([Literal])
    /// `every` over a known domain (its body's own literals are planned).
    case every
    /// Literals that are all direct, run with `with` replacements in force.
    case with([WithBinding], [Literal])
    case print([Operand])
    /// `glob.match` with a constant pattern and separators, compiled here.
    case globMatch(GlobCall)
    /// `some x in xs` (`some k, x in xs`) over a known collection: the body's loop iterates it, binding the
    /// patterns to each member in turn.
    case each(key: Operand?, value: Operand, domain: Operand)

    /// Whether the step gives at most one solution (every step but a loop).
    var hasOneSolution: Bool {
        if case .each = self { return false }
        return true
    }
}

/// A `glob.match` call whose pattern was compiled with the policy. A text that is not a string goes through
/// the builtin, so its error is the builtin's.
final class GlobCall: Sendable {
    let pattern: GlobPattern
    let text: Operand
    let call: Call

    init(pattern: GlobPattern, text: Operand, call: Call) {
        self.pattern = pattern
        self.text = text
        self.call = call
    }
}
