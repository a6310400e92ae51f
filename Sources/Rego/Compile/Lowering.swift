import PolicyCore

/// Turns the syntax of one rule (or one query) into compiled literals: names are resolved to frame slots,
/// imports, rules or the `input` and `data` roots; `:=` and `some` declarations are checked; nested calls become
/// literals of their own whose results go to temporary slots. Safety ordering runs afterwards.
final class Lowering {
    let tree: TreeIndex
    let context: ModuleContext?
    private(set) var slots: [Slot] = []
    private(set) var diagnostics: [Diagnostic] = []
    /// Scopes by id, for the safety pass.
    private(set) var scopes: [Scope] = []

    init(tree: TreeIndex, context: ModuleContext?) {
        self.tree = tree
        self.context = context
    }

    var file: String { context?.file ?? "" }

    func newScope(parent: Scope?) -> Scope {
        let scope = Scope(id: scopes.count, parent: parent)
        scopes.append(scope)
        return scope
    }

    func newSlot(_ name: String, _ kind: Slot.Kind, scope: Scope, location: Location, declared: Bool) -> Int {
        slots.append(Slot(name: name, kind: kind, scope: scope.id, location: location, declared: declared))
        return slots.count - 1
    }

    func error(_ code: String, _ message: String, _ location: Location) {
        diagnostics.append(RegoError.diagnostic(code, message, location))
    }

    // MARK: - Names

    private func isGlobal(_ name: String) -> Bool {
        if name == "input" || name == "data" { return true }
        guard let context else { return false }
        return context.imports[name] != nil || context.ruleNames.contains(name)
    }

    /// The operand a name stands for, where the name is not a local of `scope`.
    private func global(_ name: String, location: Location) -> Operand? {
        if let context {
            if let path = context.imports[name] { return rootedReference(path) }
            if context.ruleNames.contains(name) {
                return resolveData(from: 0, path: context.package.map { .constant(.string($0)) } + [.constant(.string(name))])
            }
        }
        if name == "input" { return .input }
        if name == "data" { return .node(0) }
        return nil
    }

    /// An import's path (`data.a.b`, `input.x`) as an operand.
    private func rootedReference(_ term: Term) -> Operand {
        switch term.kind {
        case .variable(let name):
            return name == "input" ? .input : .node(0)
        case .ref(let head, let path):
            let base: Operand = head.variableName == "input" ? .input : .node(0)
            var parts: [Operand] = []
            for part in path {
                parts.append(part.groundValue.map { .constant($0) } ?? .constant(.null))
            }
            return extend(base, parts)
        default:
            return .constant(.null)
        }
    }

    func lowerName(_ name: String, scope: Scope, location: Location) -> Operand {
        if let slot = scope.lookup(name) {
            slots[slot].uses += 1
            return .local(slot)
        }
        if let global = global(name, location: location) { return global }
        // Only head terms get here: a variable no body binds (reported as unsafe).
        let slot = newSlot(name, .user, scope: scope, location: location, declared: false)
        scope.define(name, slot: slot)
        slots[slot].uses += 1
        return .local(slot)
    }

    /// `base[path...]`, resolving `data` references as far down the rule tree as constant keys go.
    func extend(_ base: Operand, _ path: [Operand]) -> Operand {
        if path.isEmpty { return base }
        switch base {
        case .node(let id):
            return resolveData(from: id, path: path)
        case .ref(let inner):
            return extend(inner.base, inner.path + path)
        default:
            return .ref(base, path)
        }
    }

    func resolveData(from start: Int, path: [Operand]) -> Operand {
        var node = start
        var i = 0
        while i < path.count, case .constant(let key) = path[i], let child = tree.children[node][key] {
            node = child
            i += 1
        }
        return i == path.count ? .node(node) : .ref(.node(node), Array(path[i...]))
    }

    // MARK: - Bodies

    /// Declares and lowers the expressions of a body in `scope`, without ordering them.
    func lowerStatements(_ body: Body, in scope: Scope) -> [Literal] {
        declareNames(of: body, in: scope)
        var literals: [Literal] = []
        for (i, expr) in body.enumerated() {
            scope.position = i
            literals.append(contentsOf: lowerExpr(expr, scope: scope))
        }
        scope.position = Int.max
        checkUnusedDeclarations(in: scope)
        return literals
    }

    /// Orders a lowered body for safety and checks that the head's variables are bound by it.
    func order(
        _ literals: [Literal], in scope: Scope, safe: Set<Int> = [], head: [Operand] = [], headLocation: Location? = nil
    ) -> (literals: [Literal], safe: Set<Int>) {
        let safety = Safety(lowering: self, scope: scope)
        let (ordered, bound) = safety.reorder(literals, safe: safe)
        if let headLocation {
            var needed = Set<Int>()
            for op in head {
                safety.required(Literal(step: .test(op), location: headLocation), into: &needed)
            }
            var names = Set<String>()
            for s in needed where !bound.contains(s) && slots[s].scope == scope.id && slots[s].kind != .temporary {
                names.insert(slots[s].kind == .wildcard ? "_" : slots[s].name)
            }
            for name in names.sorted() {
                error(RegoError.Code.unsafeVariable, "var \(name) is unsafe", headLocation)
            }
        }
        return (ordered, bound)
    }

    /// A query: its literals, and for each expression the slot its value is captured in (nil: its value is
    /// `true`). As OPA does, each expression that is not negated, an assignment or a unification captures its
    /// value (`x = t`, or a call's result); when the query has several expressions or iterates, captured values
    /// must also be true.
    func lowerQuery(_ body: Body, scope: Scope) -> (literals: [Literal], captures: [Int?]) {
        declareNames(of: body, in: scope)
        let mustHold = body.count > 1 || body.contains { Lowering.iterates($0) }
        var literals: [Literal] = []
        var checks: [Literal] = []
        var captures: [Int?] = []
        defer { scope.position = Int.max }
        for (i, expr) in body.enumerated() {
            scope.position = i
            var capture: Int?
            if !expr.negated, capturesValue(expr, scope: scope) {
                // Reported as `_` when unsafe, as OPA names its generated capture variables.
                capture = newSlot("_", .wildcard, scope: scope, location: expr.location, declared: false)
            }
            captures.append(capture)
            literals.append(contentsOf: lowerExpr(expr, scope: scope, capture: capture))
            if let capture, mustHold {
                checks.append(Literal(step: .test(.local(capture)), location: expr.location))
            }
        }
        checkUnusedDeclarations(in: scope)
        return (literals + checks, captures)
    }

    private func capturesValue(_ expr: Expr, scope: Scope) -> Bool {
        switch expr.kind {
        case .term(let t):
            if case .call(let function, let arguments) = t.kind {
                guard let (_, arity, _) = resolveFunction(function, scope: scope) else { return false }
                return arguments.count == arity
            }
            return true
        case .call(let function, let arguments):
            if let name = function.variableName, name == "assign" || name == "eq" { return false }
            if function.variableName == "print" { return false }
            guard let (_, arity, _) = resolveFunction(function, scope: scope) else { return false }
            return arguments.count == arity
        case .someDeclaration, .someIn, .every:
            return false
        }
    }

    /// Whether an expression iterates: a reference with a variable after its head, outside comprehensions, or
    /// a call of a relation (`walk`).
    static func iterates(_ expr: Expr) -> Bool {
        func term(_ t: Term) -> Bool {
            switch t.kind {
            case .ref(let head, let path):
                if path.contains(where: { $0.variableName != nil }) { return true }
                return term(head) || path.contains(where: term)
            case .array(let items), .set(let items):
                return items.contains(where: term)
            case .object(let members):
                return members.contains { term($0.key) || term($0.value) }
            case .call(let function, let arguments):
                return function.dottedName == "walk" || arguments.contains(where: term)
            default:
                return false
            }
        }
        switch expr.kind {
        case .term(let t): return term(t)
        case .call(let function, let arguments):
            return function.dottedName == "walk" || arguments.contains(where: term)
        case .someDeclaration: return false
        case .someIn(let key, let value, let domain):
            return (key.map(term) ?? false) || term(value) || term(domain)
        case .every(let key, let value, let domain, _):
            return (key.map(term) ?? false) || term(value) || term(domain)
        }
    }

    private enum Role { case some, assign, reference }

    /// Declares the variables of a body before lowering it, so forward uses (reordered later) find them, and
    /// reports OPA's declaration errors.
    private func declareNames(of body: Body, in scope: Scope) {
        var occurrences: [(name: String, role: Role, location: Location, index: Int)] = []
        for (index, expr) in body.enumerated() {
            var found: [(name: String, role: Role, location: Location)] = []
            collect(expr, into: &found)
            occurrences.append(contentsOf: found.map { ($0.name, $0.role, $0.location, index) })
        }
        var declaredHere: [String: Role] = [:]
        var referenced: Set<String> = []
        var undeclared: [(String, Location)] = []
        for (name, role, location, index) in occurrences {
            switch role {
            case .reference:
                if declaredHere[name] == nil {
                    referenced.insert(name)
                    undeclared.append((name, location))
                }
            case .some, .assign:
                if name == "input" || name == "data" {
                    error(RegoError.Code.compile, "variables must not shadow \(name) (use a different variable name)", location)
                    continue
                }
                if let previous = declaredHere[name] {
                    if previous == .assign {
                        error(RegoError.Code.compile, "var \(name) assigned above", location)
                    } else {
                        error(RegoError.Code.compile, "var \(name) declared above", location)
                    }
                    continue
                }
                if role == .assign, referenced.contains(name) {
                    error(RegoError.Code.compile, "var \(name) referenced above", location)
                    continue
                }
                declaredHere[name] = role
                let slot = newSlot(name, .user, scope: scope, location: location, declared: role == .some)
                scope.define(name, slot: slot)
                scope.declaredAt[name] = index
            }
        }
        for (name, location) in undeclared where scope.lookup(name) == nil && !isGlobal(name) {
            let slot = newSlot(name, .user, scope: scope, location: location, declared: false)
            scope.define(name, slot: slot)
        }
    }

    private func checkUnusedDeclarations(in scope: Scope) {
        for (name, slot) in scope.names.sorted(by: { $0.value < $1.value })
        where slots[slot].declared && slots[slot].uses == 0 && slots[slot].kind == .user {
            error(RegoError.Code.compile, "declared var \(name) unused", slots[slot].location)
        }
    }

    private func collect(_ expr: Expr, into out: inout [(name: String, role: Role, location: Location)]) {
        switch expr.kind {
        case .term(let t):
            references(t, into: &out)
        case .call(let function, let arguments):
            if function.variableName == "assign", arguments.count == 2, !expr.negated {
                references(arguments[1], into: &out)
                patternVariables(arguments[0], role: .assign, into: &out)
            } else {
                for a in arguments { references(a, into: &out) }
            }
        case .someDeclaration(let symbols):
            for s in symbols {
                if let name = s.variableName, name != "_" { out.append((name, .some, s.location)) }
            }
        case .someIn(let key, let value, let domain):
            references(domain, into: &out)
            if let key { patternVariables(key, role: .some, into: &out) }
            patternVariables(value, role: .some, into: &out)
        case .every(_, _, let domain, _):
            references(domain, into: &out)
        }
        // `with f as lower`: a builtin's name as the value names the builtin, not a variable.
        for w in expr.withModifiers where w.value.dottedName.flatMap({ Builtins.all[$0] }) == nil {
            references(w.value, into: &out)
        }
    }

    /// Variables a declaration introduces: the variables of a pattern, outside references.
    private func patternVariables(_ t: Term, role: Role, into out: inout [(name: String, role: Role, location: Location)]) {
        switch t.kind {
        case .variable(let name):
            if name != "_" { out.append((name, role, t.location)) }
        case .array(let items):
            for i in items { patternVariables(i, role: role, into: &out) }
        case .object(let members):
            for m in members {
                references(m.key, into: &out)
                patternVariables(m.value, role: role, into: &out)
            }
        default:
            references(t, into: &out)
        }
    }

    private func references(_ t: Term, into out: inout [(name: String, role: Role, location: Location)]) {
        switch t.kind {
        case .variable(let name):
            if name != "_" { out.append((name, .reference, t.location)) }
        case .ref(let head, let path):
            references(head, into: &out)
            for p in path { references(p, into: &out) }
        case .array(let items), .set(let items):
            for i in items { references(i, into: &out) }
        case .object(let members):
            for m in members {
                references(m.key, into: &out)
                references(m.value, into: &out)
            }
        case .call(_, let arguments):
            for a in arguments { references(a, into: &out) }
        case .null, .bool, .number, .string, .arrayComprehension, .setComprehension, .objectComprehension:
            break
        }
    }

    // MARK: - Expressions

    /// The literals of one expression, nested calls first.
    /// The literals of one expression, nested calls first. With `capture`, a query expression's value is kept
    /// in that slot (as OPA's query compiler captures it).
    func lowerExpr(_ expr: Expr, scope: Scope, capture: Int? = nil) -> [Literal] {
        var literals: [Literal] = []
        let location = expr.location
        var steps: [Literal] = []
        if expr.negated, case .call(let function, _) = expr.kind, function.variableName == "assign" {
            error(RegoError.Code.compile, "cannot assign vars inside negated expression", location)
            return []
        }
        switch expr.kind {
        case .term(let t):
            if case .call(let function, let arguments) = t.kind {
                lowerCallExpr(function, arguments, scope: scope, location: location, into: &steps, capture: capture)
            } else {
                let op = lowerTerm(t, scope: scope, into: &steps)
                if let capture {
                    steps.append(Literal(step: .unify(.local(capture), op), location: location))
                } else {
                    steps.append(Literal(step: .test(op), location: location))
                }
            }
        case .call(let function, let arguments):
            lowerCallExpr(function, arguments, scope: scope, location: location, into: &steps, capture: capture)
        case .someDeclaration:
            return []
        case .someIn(let key, let value, let domain):
            let domainOp = lowerTerm(domain, scope: scope, into: &steps)
            let keyOp = key.map { lowerTerm($0, scope: scope, into: &steps) }
            let valueOp = lowerTerm(value, scope: scope, into: &steps)
            steps.append(Literal(step: .member(key: keyOp, value: valueOp, domain: domainOp), location: location))
        case .every(let key, let value, let domain, let body):
            let domainOp = lowerTerm(domain, scope: scope, into: &steps)
            let inner = newScope(parent: scope)
            var keyOp: Operand?
            if let key {
                keyOp = declarePattern(key, in: inner)
            }
            let valueOp = declarePattern(value, in: inner)
            var bound = Set<Int>()
            if let keyOp { collectSlots(keyOp, into: &bound) }
            collectSlots(valueOp, into: &bound)
            let (bodyLiterals, _) = order(lowerStatements(body, in: inner), in: inner, safe: bound)
            steps.append(
                Literal(
                    step: .every(key: keyOp, value: valueOp, domain: domainOp, body: bodyLiterals),
                    location: location))
        }
        if expr.negated {
            steps = negation(of: steps, location: location, scope: scope)
        }
        if !expr.withModifiers.isEmpty {
            var bindings: [WithBinding] = []
            for modifier in expr.withModifiers {
                if let binding = lowerWith(modifier, scope: scope, into: &literals) { bindings.append(binding) }
            }
            steps = [Literal(step: .with(bindings, steps), location: location)]
        }
        literals.append(contentsOf: steps)
        return literals
    }

    /// `not` over an expression's literals. As OPA's compiler does, the operands are evaluated before the
    /// negation: nested calls, the references a call takes (not those `=` or `==` unify), and the references that
    /// index a reference. So an undefined operand makes `not startswith(input.path, "/a")` undefined, not true.
    private func negation(of steps: [Literal], location: Location, scope: Scope) -> [Literal] {
        guard let mainIndex = steps.lastIndex(where: { $0.location == location }) else {
            return [Literal(step: .not(steps), location: location)]
        }
        var before = steps
        let main = before.remove(at: mainIndex)
        let step: Step
        switch main.step {
        case .call(let call):
            var arguments = call.arguments
            let unifies: Bool
            if case .compare(.equal) = call.target, call.output == nil { unifies = true } else { unifies = false }
            for i in arguments.indices {
                arguments[i] = unifies
                    ? hoistIndexes(arguments[i], scope: scope, location: location, into: &before)
                    : hoist(arguments[i], scope: scope, location: location, into: &before)
            }
            step = .call(call.target, arguments, output: call.output, name: call.name)
        case .unify(let a, let b):
            step = .unify(
                hoistIndexes(a, scope: scope, location: location, into: &before),
                hoistIndexes(b, scope: scope, location: location, into: &before))
        case .test(let a):
            step = .test(hoistIndexes(a, scope: scope, location: location, into: &before))
        default:
            step = main.step
        }
        return before + [Literal(step: .not([Literal(step: step, location: main.location)]), location: location)]
    }

    /// A call operand evaluated ahead: a reference (or document) into a fresh slot; composites member by member.
    private func hoist(_ op: Operand, scope: Scope, location: Location, into steps: inout [Literal]) -> Operand {
        switch op {
        case .ref, .input, .data, .node:
            let indexed = hoistIndexes(op, scope: scope, location: location, into: &steps)
            let slot = newSlot("", .temporary, scope: scope, location: location, declared: false)
            steps.append(Literal(step: .unify(.local(slot), indexed), location: location))
            return .local(slot)
        case .array(let items):
            return .array(items.map { hoist($0, scope: scope, location: location, into: &steps) })
        case .set(let items):
            return .set(items.map { hoist($0, scope: scope, location: location, into: &steps) })
        case .object(let keys, let values):
            return .object(
                keys.map { hoist($0, scope: scope, location: location, into: &steps) },
                values.map { hoist($0, scope: scope, location: location, into: &steps) })
        case .constant, .local, .comprehension:
            return op
        }
    }

    /// A term whose reference indexes (`input.x[input.y]`) are evaluated ahead; the term itself stays.
    private func hoistIndexes(_ op: Operand, scope: Scope, location: Location, into steps: inout [Literal]) -> Operand {
        switch op {
        case .ref(let reference):
            let path = reference.path.map { hoist($0, scope: scope, location: location, into: &steps) }
            return .ref(hoistIndexes(reference.base, scope: scope, location: location, into: &steps), path)
        case .array, .set, .object:
            return hoist(op, scope: scope, location: location, into: &steps)
        default:
            return op
        }
    }

    private func collectSlots(_ op: Operand, into out: inout Set<Int>) {
        switch op {
        case .local(let s): out.insert(s)
        case .array(let items), .set(let items):
            for i in items { collectSlots(i, into: &out) }
        case .object(_, let values):
            for v in values { collectSlots(v, into: &out) }
        default: break
        }
    }

    /// Declares the variables of a function parameter (a variable, `_`, a constant or a composite pattern).
    func declareParameter(_ t: Term, in scope: Scope) -> Operand {
        switch t.kind {
        case .variable(let name):
            if name == "_" { return .local(newSlot("_", .wildcard, scope: scope, location: t.location, declared: true)) }
            if let existing = scope.lookupHere(name) { return .local(existing) }
            let slot = newSlot(name, .user, scope: scope, location: t.location, declared: true)
            slots[slot].uses += 1
            scope.define(name, slot: slot)
            return .local(slot)
        case .array(let items):
            return .array(items.map { declareParameter($0, in: scope) })
        case .object(let members):
            var ignored: [Literal] = []
            let keys = members.map { lowerTerm($0.key, scope: scope, into: &ignored) }
            return .object(keys, members.map { declareParameter($0.value, in: scope) })
        default:
            var ignored: [Literal] = []
            return lowerTerm(t, scope: scope, into: &ignored)
        }
    }

    /// Declares the variables of an `every` key or value pattern in its body's scope.
    private func declarePattern(_ t: Term, in scope: Scope) -> Operand {
        switch t.kind {
        case .variable(let name):
            if name == "_" { return .local(newSlot("_", .wildcard, scope: scope, location: t.location, declared: true)) }
            let slot = newSlot(name, .user, scope: scope, location: t.location, declared: true)
            scope.define(name, slot: slot)
            return .local(slot)
        default:
            var ignored: [Literal] = []
            return lowerTerm(t, scope: scope, into: &ignored)
        }
    }

    private func lowerCallExpr(
        _ function: Term, _ arguments: [Term], scope: Scope, location: Location, into steps: inout [Literal],
        capture: Int? = nil
    ) {
        let name = function.variableName ?? ""
        if name == "assign" || name == "eq", arguments.count == 2 {
            if name == "assign" { checkAssignable(arguments[0]) }
            let lhs = arguments[0], rhs = arguments[1]
            // `x := f(y)` is `f(y, x)`: the call's output goes straight to the pattern.
            if case .call(let f, let args) = rhs.kind {
                let out = lowerTerm(lhs, scope: scope, into: &steps)
                lowerCall(f, args, output: out, scope: scope, location: location, into: &steps)
                return
            }
            if name == "eq", case .call(let f, let args) = lhs.kind {
                let out = lowerTerm(rhs, scope: scope, into: &steps)
                lowerCall(f, args, output: out, scope: scope, location: location, into: &steps)
                return
            }
            let a = lowerTerm(lhs, scope: scope, into: &steps)
            let b = lowerTerm(rhs, scope: scope, into: &steps)
            steps.append(Literal(step: .unify(a, b), location: location))
            return
        }
        lowerCall(
            function, arguments, output: capture.map { .local($0) }, scope: scope, location: location, into: &steps)
    }

    /// `:=` accepts a variable, or an array or object of them, on its left.
    private func checkAssignable(_ t: Term) {
        switch t.kind {
        case .variable: return
        case .array(let items):
            for i in items { checkAssignable(i) }
        case .object(let members):
            for m in members { checkAssignable(m.value) }
        default:
            let what: String
            switch t.kind {
            case .number: what = "number"
            case .string: what = "string"
            case .bool: what = "boolean"
            case .null: what = "null"
            case .ref: what = "ref"
            case .set: what = "set"
            case .call: what = "call"
            default: what = "comprehension"
            }
            error(RegoError.Code.compile, "cannot assign to \(what)", t.location)
        }
    }

    /// A call: emits the literal and returns nothing; the output (if any) receives the result.
    private func lowerCall(
        _ function: Term, _ arguments: [Term], output: Operand?, scope: Scope, location: Location,
        into steps: inout [Literal]
    ) {
        let name = function.dottedName ?? "<function>"
        if name == "print" {
            let ops = arguments.map { lowerTerm($0, scope: scope, into: &steps) }
            steps.append(Literal(step: .print(ops), location: location))
            return
        }
        guard let (target, arity, displayName) = resolveFunction(function, scope: scope) else {
            error(RegoError.Code.type, "undefined function \(name)", function.location)
            return
        }
        var args = arguments
        var out = output
        if out == nil, args.count == arity + 1 {
            let last = args.removeLast()
            var pre: [Literal] = []
            out = lowerTerm(last, scope: scope, into: &pre)
            // The output's own calls (unusual) are evaluated after this call.
            var ops: [Operand] = []
            for a in args { ops.append(lowerTerm(a, scope: scope, into: &steps)) }
            steps.append(Literal(step: .call(target, ops, output: out, name: displayName), location: location))
            steps.append(contentsOf: pre)
            return
        }
        if args.count != arity {
            arityErrors.append((displayName, arguments, output != nil, location))
            return
        }
        var ops: [Operand] = []
        for a in args { ops.append(lowerTerm(a, scope: scope, into: &steps)) }
        steps.append(Literal(step: .call(target, ops, output: out, name: displayName), location: location))
    }

    /// Calls with the wrong number of operands, reported by the type checker with the operands' types.
    private(set) var arityErrors: [(name: String, arguments: [Term], hasOutput: Bool, location: Location)] = []

    /// The target of a call, its arity and its display name.
    func resolveFunction(_ function: Term, scope: Scope) -> (CallTarget, Int, String)? {
        guard let name = function.dottedName else { return nil }
        switch name {
        case "internal.member_2": return (.member, 2, name)
        case "internal.member_3": return (.memberWithKey, 3, name)
        default: break
        }
        if let comparison = Comparison(builtinName: name), let builtin = Builtins.all[name] {
            return (.compare(comparison), builtin.arity, builtin.name)
        }
        // User functions: a name of the package, an import, or a `data` path.
        var path: [Value]?
        switch function.kind {
        case .variable(let v):
            if let context, scope.lookup(v) == nil {
                if let imported = context.imports[v], case .node(let id) = rootedReference(imported) {
                    path = tree.paths[id]
                } else if context.ruleNames.contains(v) {
                    path = context.package.map { .string($0) } + [.string(v)]
                }
            }
        case .ref(let head, let parts):
            let keys = parts.compactMap { $0.groundValue }
            if let h = head.variableName, keys.count == parts.count {
                if h == "data" {
                    path = keys
                } else if let context, scope.lookup(h) == nil {
                    if let imported = context.imports[h], case .node(let id) = rootedReference(imported) {
                        path = tree.paths[id] + keys
                    } else if context.ruleNames.contains(h) {
                        path = context.package.map { .string($0) } + [.string(h)] + keys
                    }
                }
            }
        default:
            break
        }
        if let path, let node = tree.node(at: path), let arity = tree.functionArity[node] {
            return (.function(node), arity, RuleNode.name(of: path))
        }
        if let builtin = Builtins.all[name] {
            return (.builtin(builtin), builtin.arity, name)
        }
        return nil
    }

    // MARK: - with

    private func lowerWith(_ modifier: WithModifier, scope: Scope, into steps: inout [Literal]) -> WithBinding? {
        let target: WithBinding.Target
        let t = modifier.target
        var rootName: String?
        var path: [Value] = []
        var pathIsGround = true
        switch t.kind {
        case .variable(let v):
            rootName = v
        case .ref(let head, let parts):
            rootName = head.variableName
            for p in parts {
                if let v = p.groundValue { path.append(v) } else { pathIsGround = false }
            }
        default:
            break
        }
        if rootName == "input", pathIsGround {
            target = .input(path)
        } else if rootName == "data", pathIsGround, let functionTarget = functionTarget(t, scope: scope) {
            target = .function(functionTarget)
        } else if rootName == "data", pathIsGround {
            target = .data(path)
        } else if let functionTarget = functionTarget(t, scope: scope) {
            target = .function(functionTarget)
        } else {
            error(
                RegoError.Code.type,
                "with keyword target must reference existing input, data, or a function", t.location)
            return nil
        }
        if case .function = target, let (replacement, _, _) = resolveFunctionReplacement(modifier.value, scope: scope) {
            return WithBinding(target: target, replacement: .function(replacement))
        }
        let value = lowerTerm(modifier.value, scope: scope, into: &steps)
        return WithBinding(target: target, replacement: .value(value))
    }

    private func functionTarget(_ t: Term, scope: Scope) -> FunctionKey? {
        guard let (target, _, _) = resolveFunction(t, scope: scope) else { return nil }
        switch target {
        case .function(let id): return .node(id)
        case .builtin(let b): return .builtin(b.name)
        case .compare: return .builtin(t.dottedName ?? "")
        case .member, .memberWithKey: return nil
        }
    }

    private func resolveFunctionReplacement(_ t: Term, scope: Scope) -> (CallTarget, Int, String)? {
        switch t.kind {
        case .variable(let v) where scope.lookup(v) != nil: return nil
        case .variable, .ref: return resolveFunction(t, scope: scope)
        default: return nil
        }
    }

    // MARK: - Terms

    func lowerTerm(_ t: Term, scope: Scope, into steps: inout [Literal]) -> Operand {
        switch t.kind {
        case .null: return .constant(.null)
        case .bool(let b): return .constant(.bool(b))
        case .number(let n): return .constant(.number(n))
        case .string(let s): return .constant(.string(s))
        case .variable(let name):
            if name == "_" {
                return .local(newSlot("_", .wildcard, scope: scope, location: t.location, declared: false))
            }
            return lowerName(name, scope: scope, location: t.location)
        case .ref(let head, let path):
            let base: Operand
            if case .variable(let name) = head.kind, name != "_" {
                base = lowerName(name, scope: scope, location: head.location)
            } else {
                base = lowerTerm(head, scope: scope, into: &steps)
            }
            var parts: [Operand] = []
            parts.reserveCapacity(path.count)
            for p in path { parts.append(lowerTerm(p, scope: scope, into: &steps)) }
            return extend(base, parts)
        case .array(let items):
            let ops = items.map { lowerTerm($0, scope: scope, into: &steps) }
            if let values = constants(ops) { return .constant(.array(values)) }
            return .array(ops)
        case .set(let items):
            let ops = items.map { lowerTerm($0, scope: scope, into: &steps) }
            if let values = constants(ops) { return .constant(.set(Set(values))) }
            return .set(ops)
        case .object(let members):
            var keys: [Operand] = []
            var values: [Operand] = []
            for m in members {
                keys.append(lowerTerm(m.key, scope: scope, into: &steps))
                values.append(lowerTerm(m.value, scope: scope, into: &steps))
            }
            if let ks = constants(keys), let vs = constants(values) {
                var object: [Value: Value] = [:]
                // Later members win, as in OPA.
                for (k, v) in zip(ks, vs) { object[k] = v }
                return .constant(.object(object))
            }
            return .object(keys, values)
        case .arrayComprehension(let head, let body):
            return comprehension(.array, head: head, value: nil, body: body, scope: scope, location: t.location)
        case .setComprehension(let head, let body):
            return comprehension(.set, head: head, value: nil, body: body, scope: scope, location: t.location)
        case .objectComprehension(let key, let value, let body):
            return comprehension(.object, head: key, value: value, body: body, scope: scope, location: t.location)
        case .call(let function, let arguments):
            let slot = newSlot("", .temporary, scope: scope, location: t.location, declared: false)
            lowerCall(function, arguments, output: .local(slot), scope: scope, location: t.location, into: &steps)
            return .local(slot)
        }
    }

    private func constants(_ ops: [Operand]) -> [Value]? {
        var values: [Value] = []
        values.reserveCapacity(ops.count)
        for op in ops {
            guard case .constant(let v) = op else { return nil }
            values.append(v)
        }
        return values
    }

    private func comprehension(
        _ kind: Comprehension.Kind, head: Term, value: Term?, body: Body, scope: Scope, location: Location
    ) -> Operand {
        let inner = newScope(parent: scope)
        var literals = lowerStatements(body, in: inner)
        let headOp = lowerTerm(head, scope: inner, into: &literals)
        let valueOp = value.map { lowerTerm($0, scope: inner, into: &literals) }
        let (ordered, _) = order(
            literals, in: inner, head: [headOp] + (valueOp.map { [$0] } ?? []), headLocation: location)
        return .comprehension(Comprehension(kind: kind, head: headOp, value: valueOp, body: ordered, location: location))
    }
}
