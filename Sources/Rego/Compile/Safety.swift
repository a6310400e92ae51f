import PolicyCore

/// OPA's safety rule: every variable must be bound before it is read. Literals are reordered so that each
/// runs once the variables it reads are bound (OPA's `reorderBodyForSafety`); what cannot be ordered is
/// reported as `rego_unsafe_var_error`.
///
/// Each body is ordered once, when lowered: variables of enclosing bodies count as bound, because the literal
/// holding a closure (a comprehension, an `every`) is itself only scheduled once the variables it shares with
/// its own body are bound.
struct Safety {
    let lowering: Lowering
    let scope: Scope

    init(lowering: Lowering, scope: Scope) {
        self.lowering = lowering
        self.scope = scope
    }

    private func slot(_ s: Int) -> Slot { lowering.slots[s] }

    /// Whether the variable belongs to this body (rather than an enclosing one).
    private func isOwn(_ s: Int) -> Bool { lowering.slots[s].scope == scope.id }

    /// Orders `literals`, reporting what stays unsafe. Returns the literals and the variables bound after them.
    func reorder(_ literals: [Literal], safe initial: Set<Int>) -> (literals: [Literal], safe: Set<Int>) {
        let (ordered, safe, unplaced) = tryReorder(literals, safe: initial)
        for literal in unplaced {
            report(literal, safe: safe)
        }
        return (ordered + unplaced, safe)
    }

    private func tryReorder(_ literals: [Literal], safe initial: Set<Int>) -> ([Literal], Set<Int>, [Literal]) {
        var safe = initial
        var placed = [Bool](repeating: false, count: literals.count)
        var ordered: [Literal] = []
        ordered.reserveCapacity(literals.count)
        var progress = true
        while progress {
            progress = false
            for (i, literal) in literals.enumerated() where !placed[i] {
                if let (scheduled, outputs) = schedule(literal, safe: safe) {
                    placed[i] = true
                    ordered.append(scheduled)
                    safe.formUnion(outputs)
                    progress = true
                }
            }
        }
        let unplaced = literals.indices.filter { !placed[$0] }.map { literals[$0] }
        return (ordered, safe, unplaced)
    }

    /// The literal (with its inner bodies ordered) and what it binds, if it can run once `safe` is bound.
    private func schedule(_ literal: Literal, safe: Set<Int>) -> (Literal, Set<Int>)? {
        switch literal.step {
        case .with(let bindings, let inner):
            var needed = Set<Int>()
            for b in bindings {
                if case .value(let op) = b.replacement { collectAll(op, into: &needed) }
            }
            guard isSubset(needed, of: safe) else { return nil }
            let (ordered, innerSafe, unplaced) = tryReorder(inner, safe: safe)
            guard unplaced.isEmpty else { return nil }
            return (Literal(step: .with(bindings, ordered), location: literal.location), innerSafe.subtracting(safe))
        case .not(let inner):
            var needed = Set<Int>()
            for l in inner { required(l, into: &needed) }
            needed = needed.filter { lowering.slots[$0].kind != .temporary }
            guard isSubset(needed, of: safe) else { return nil }
            let (ordered, _, unplaced) = tryReorder(inner, safe: safe)
            guard unplaced.isEmpty else { return nil }
            return (Literal(step: .not(ordered), location: literal.location), [])
        default:
            var needed = Set<Int>()
            required(literal, into: &needed)
            let outputs = self.outputs(literal, safe: safe)
            guard isSubset(needed, of: safe.union(outputs)) else { return nil }
            return (literal, outputs)
        }
    }

    private func isSubset(_ vars: Set<Int>, of safe: Set<Int>) -> Bool {
        vars.allSatisfy { safe.contains($0) || !isOwn($0) }
    }

    private func report(_ literal: Literal, safe: Set<Int>) {
        var needed = Set<Int>()
        required(literal, into: &needed)
        var stillUnsafe = needed.filter { !safe.contains($0) && isOwn($0) }
        if case .not = literal.step {
        } else if case .with = literal.step {
        } else {
            stillUnsafe.subtract(outputs(literal, safe: safe))
        }
        var names = Set<String>()
        for s in stillUnsafe where slot(s).kind != .temporary {
            names.insert(slot(s).kind == .wildcard ? "_" : slot(s).name)
        }
        if names.isEmpty, !stillUnsafe.isEmpty {
            // Only compiler temporaries: the unsafe inputs are inside a nested literal.
            if case .with(_, let inner) = literal.step {
                for l in inner { report(l, safe: safe) }
                return
            }
            if case .not(let inner) = literal.step {
                for l in inner { report(l, safe: safe) }
                return
            }
        }
        for name in names.sorted() {
            if case .print = literal.step {
                lowering.error(RegoError.Code.compile, "var \(name) is undeclared", literal.location)
            } else {
                lowering.error(RegoError.Code.unsafeVariable, "var \(name) is unsafe", literal.location)
            }
        }
    }

    // MARK: - Variables of literals

    /// The variables a literal reads or binds: those outside closures, and this body's variables used inside its
    /// closures.
    func required(_ literal: Literal, into out: inout Set<Int>) {
        switch literal.step {
        case .test(let op):
            collectAll(op, into: &out)
        case .unify(let a, let b):
            collectAll(a, into: &out)
            collectAll(b, into: &out)
        case .call(let c):
            for a in c.arguments { collectAll(a, into: &out) }
            if let output = c.output { collectAll(output, into: &out) }
        case .member(let key, let value, let domain):
            collectAll(domain, into: &out)
            if let key { collectAll(key, into: &out) }
            collectAll(value, into: &out)
        case .not(let inner):
            for l in inner { required(l, into: &out) }
        case .every(let key, let value, let domain, let body):
            collectAll(domain, into: &out)
            var inner = Set<Int>()
            if let key { collectAll(key, into: &inner) }
            collectAll(value, into: &inner)
            for l in body { required(l, into: &inner) }
            out.formUnion(inner.filter { isOwn($0) })
        case .with(let bindings, let inner):
            for b in bindings {
                if case .value(let op) = b.replacement { collectAll(op, into: &out) }
            }
            for l in inner { required(l, into: &out) }
        case .print(let args):
            for a in args { collectAll(a, into: &out) }
        }
    }

    /// Variables of an operand: those outside closures, and this body's variables inside them.
    private func collectAll(_ op: Operand, into out: inout Set<Int>) {
        switch op {
        case .local(let s): out.insert(s)
        case .ref(let r):
            collectAll(r.base, into: &out)
            for p in r.path { collectAll(p, into: &out) }
        case .array(let items), .set(let items):
            for i in items { collectAll(i, into: &out) }
        case .object(let keys, let values):
            for k in keys { collectAll(k, into: &out) }
            for v in values { collectAll(v, into: &out) }
        case .comprehension(let c):
            var inner = Set<Int>()
            collectAll(c.head, into: &inner)
            if let v = c.value { collectAll(v, into: &inner) }
            for l in c.body { required(l, into: &inner) }
            out.formUnion(inner.filter { isOwn($0) })
        case .constant, .input, .data, .node:
            break
        }
    }

    /// Variables outside closures only.
    private func direct(_ op: Operand, into out: inout Set<Int>) {
        switch op {
        case .local(let s): out.insert(s)
        case .ref(let r):
            direct(r.base, into: &out)
            for p in r.path { direct(p, into: &out) }
        case .array(let items), .set(let items):
            for i in items { direct(i, into: &out) }
        case .object(let keys, let values):
            for k in keys { direct(k, into: &out) }
            for v in values { direct(v, into: &out) }
        case .comprehension, .constant, .input, .data, .node:
            break
        }
    }

    private func isSafe(_ op: Operand, _ safe: Set<Int>) -> Bool {
        var vars = Set<Int>()
        collectAll(op, into: &vars)
        return isSubset(vars, of: safe)
    }

    // MARK: - What a literal binds

    func outputs(_ literal: Literal, safe: Set<Int>) -> Set<Int> {
        switch literal.step {
        case .test(let op):
            var out = Set<Int>()
            referenceOutputs(op, safe: safe, into: &out)
            return out
        case .unify(let a, let b):
            var out = Set<Int>()
            referenceOutputs(a, safe: safe, into: &out)
            referenceOutputs(b, safe: safe, into: &out)
            var bound = safe.union(out)
            unify(a, b, &bound)
            return bound.subtracting(safe)
        case .call(let c):
            let args = c.arguments, output = c.output
            var out = Set<Int>()
            for a in args { referenceOutputs(a, safe: safe, into: &out) }
            let bound = safe.union(out)
            if let output, args.allSatisfy({ isSafe($0, bound) }) {
                var patternVars = Set<Int>()
                direct(output, into: &patternVars)
                out.formUnion(patternVars)
                referenceOutputs(output, safe: bound, into: &out)
            }
            return out
        case .member(let key, let value, let domain):
            var out = Set<Int>()
            referenceOutputs(domain, safe: safe, into: &out)
            if isSafe(domain, safe.union(out)) {
                if let key { direct(key, into: &out) }
                direct(value, into: &out)
            }
            return out
        case .not, .every, .print, .with:
            return []
        }
    }

    /// Variables in the brackets of references whose head is bound: iterating binds them.
    private func referenceOutputs(_ op: Operand, safe: Set<Int>, into out: inout Set<Int>) {
        switch op {
        case .ref(let r):
            if isSafe(r.base, safe) {
                for p in r.path { direct(p, into: &out) }
            } else {
                referenceOutputs(r.base, safe: safe, into: &out)
                for p in r.path { referenceOutputs(p, safe: safe, into: &out) }
            }
        case .array(let items), .set(let items):
            for i in items { referenceOutputs(i, safe: safe, into: &out) }
        case .object(let keys, let values):
            for k in keys { referenceOutputs(k, safe: safe, into: &out) }
            for v in values { referenceOutputs(v, safe: safe, into: &out) }
        default:
            break
        }
    }

    /// Marks the variables unification binds, until nothing changes (OPA's `Unify`).
    private func unify(_ a: Operand, _ b: Operand, _ bound: inout Set<Int>) {
        var changed = true
        while changed {
            let before = bound.count
            unifyOnce(a, b, &bound)
            changed = bound.count != before
        }
    }

    private func unifyOnce(_ a: Operand, _ b: Operand, _ bound: inout Set<Int>) {
        switch (a, b) {
        case (.local(let x), _):
            if !bound.contains(x), isSafe(b, bound) {
                bound.insert(x)
            } else if bound.contains(x) || !isOwn(x) {
                markPattern(b, &bound)
            }
        case (_, .local):
            unifyOnce(b, a, &bound)
        case (.array(let xs), .array(let ys)):
            // Patterns of different lengths never match: their variables stay unbound.
            if xs.count == ys.count {
                for (x, y) in zip(xs, ys) { unifyOnce(x, y, &bound) }
            }
        case (.array(let xs), .constant(.array(let values))), (.constant(.array(let values)), .array(let xs)):
            if xs.count == values.count {
                for (x, v) in zip(xs, values) { unifyOnce(x, .constant(v), &bound) }
            }
        case (.object(let ka, let va), .object(let kb, let vb)):
            if ka.count == kb.count {
                for (i, k) in ka.enumerated() {
                    guard case .constant(let key) = k else { continue }
                    if let j = kb.firstIndex(where: { $0.constantValue == key }) { unifyOnce(va[i], vb[j], &bound) }
                }
            }
        case (.object(let keys, let values), .constant(.object(let members))),
            (.constant(.object(let members)), .object(let keys, let values)):
            if keys.count == members.count {
                for (k, v) in zip(keys, values) {
                    if let key = k.constantValue, let member = members[key] { unifyOnce(v, .constant(member), &bound) }
                }
            }
        case (.array, .constant), (.object, .constant), (.constant, .array), (.constant, .object):
            break
        case (.array, _), (.object, _):
            if isSafe(b, bound) { markPattern(a, &bound) }
        case (_, .array), (_, .object):
            if isSafe(a, bound) { markPattern(b, &bound) }
        default:
            break
        }
    }

    /// A pattern unified with a bound value binds all of its variables.
    private func markPattern(_ op: Operand, _ bound: inout Set<Int>) {
        switch op {
        case .local(let s): bound.insert(s)
        case .array(let items):
            for i in items { markPattern(i, &bound) }
        case .object(_, let values):
            for v in values { markPattern(v, &bound) }
        default:
            break
        }
    }
}
