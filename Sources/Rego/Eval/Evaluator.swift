#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PolicyCore

/// Why evaluation stopped early: a search that found what it needed, or an error that ends the query.
enum EvalSignal: Error {
    /// The innermost search that asked for it has its answer (used by `not`, `every`, rules that give one
    /// constant value). Every catcher calls its own continuation outside the scope it catches in, so a stop
    /// always reaches the search that threw it.
    case stop
    case failure(Diagnostic)
}

typealias Continuation = () throws(EvalSignal) -> Void
typealias ValueContinuation = (Value) throws(EvalSignal) -> Void

/// One evaluation of a query: the frames of the rules being evaluated, the values of rules computed so far,
/// and the `with` replacements in force. Evaluation is depth first with continuations; every rule a query
/// refers to is computed in full once and kept, so generators never cross rule boundaries.
final class Evaluator {
    let policy: RegoPolicySet
    let nodes: [RuleNode]
    let options: RegoEvaluationOptions
    let builtinContext: BuiltinContext

    var input: Value?
    /// Variables of all active frames; a frame starts at `base`.
    var stack: ContiguousArray<Value?> = []
    var base = 0
    var cache: ContiguousArray<CacheEntry>
    /// `with data.x as v` replacements in force, by path.
    var dataOverrides: [[Value]: Value] = [:]
    /// `with f as g` replacements in force.
    var functionOverrides: [FunctionKey: FunctionReplacement] = [:]
    /// The first builtin error seen; with strict builtin errors it becomes the query's error.
    var builtinError: Diagnostic?
    /// How many rule and function evaluations are nested.
    var depth = 0
    static let maximumDepth = 200

    enum CacheEntry {
        case empty
        case undefined
        case value(Value)
    }

    enum FunctionReplacement {
        case value(Value)
        case target(CallTarget)
    }

    init(policy: RegoPolicySet, input: Value?, options: RegoEvaluationOptions) {
        self.policy = policy
        self.nodes = policy.nodes
        self.options = options
        self.input = input
        self.cache = ContiguousArray(repeating: .empty, count: policy.nodes.count)
        self.builtinContext = BuiltinContext(nowNanoseconds: options.now ?? Evaluator.currentTime())
        stack.reserveCapacity(64)
    }

    static func currentTime() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    // MARK: - Frames

    @inline(__always)
    func pushFrame(_ size: Int) -> Int {
        let saved = base
        base = stack.count
        for _ in 0..<size { stack.append(nil) }
        return saved
    }

    @inline(__always)
    func popFrame(_ size: Int, _ saved: Int) {
        stack.removeLast(size)
        base = saved
    }

    @inline(__always)
    func local(_ slot: Int) -> Value? { stack[base + slot] }

    /// Binds an unbound slot for the duration of `k`.
    @inline(__always)
    func bind(_ slot: Int, _ value: Value, _ k: Continuation) throws(EvalSignal) {
        let index = base + slot
        stack[index] = value
        defer { stack[index] = nil }
        try k()
    }

    func failure(_ code: String, _ message: String, _ location: Location?) -> EvalSignal {
        .failure(RegoError.diagnostic(code, message, location))
    }

    // MARK: - Bodies

    func evalBody(_ literals: [Literal], _ i: Int, _ k: Continuation) throws(EvalSignal) {
        if i == literals.count {
            try k()
            return
        }
        try evalLiteral(literals[i]) { () throws(EvalSignal) in
            try self.evalBody(literals, i + 1, k)
        }
    }

    func evalLiteral(_ literal: Literal, _ k: Continuation) throws(EvalSignal) {
        switch literal.step {
        case .test(let op):
            try eval(op) { (v) throws(EvalSignal) in
                if case .bool(false) = v { return }
                try k()
            }
        case .unify(let a, let b):
            try unify(a, b, k)
        case .call(let target, let args, let output, let name):
            try call(target, args, output, name, literal.location, k)
        case .member(let key, let value, let domain):
            try eval(domain) { (collection) throws(EvalSignal) in
                try self.iterate(collection) { (index, element) throws(EvalSignal) in
                    if let key {
                        try self.match(key, index) { () throws(EvalSignal) in try self.match(value, element, k) }
                    } else {
                        try self.match(value, element, k)
                    }
                }
            }
        case .not(let inner):
            if try !succeeds(inner) { try k() }
        case .every(let key, let value, let domain, let body):
            try eval(domain) { (collection) throws(EvalSignal) in
                switch collection {
                case .array, .object, .set: break
                default: return
                }
                var holds = true
                try self.iterate(collection) { (index, element) throws(EvalSignal) in
                    guard holds else { return }
                    var found = false
                    do throws(EvalSignal) {
                        let run: Continuation = { () throws(EvalSignal) in
                            try self.evalBody(body, 0) { () throws(EvalSignal) in throw EvalSignal.stop }
                        }
                        if let key {
                            try self.match(key, index) { () throws(EvalSignal) in try self.match(value, element, run) }
                        } else {
                            try self.match(value, element, run)
                        }
                    } catch {
                        guard case .stop = error else { throw error }
                        found = true
                    }
                    if !found { holds = false }
                }
                if holds { try k() }
            }
        case .with(let bindings, let inner):
            try evalWith(bindings, inner, k)
        case .print(let args):
            try print(args, literal.location)
            try k()
        }
    }

    /// Whether a body has at least one solution (for `not`).
    func succeeds(_ literals: [Literal]) throws(EvalSignal) -> Bool {
        do {
            try evalBody(literals, 0) { () throws(EvalSignal) in throw EvalSignal.stop }
        } catch {
            guard case .stop = error else { throw error }
            return true
        }
        return false
    }

    // MARK: - Operands

    /// Calls `k` with each value of the operand (none when it is undefined; several when its references
    /// iterate over unbound variables, which are bound meanwhile).
    func eval(_ op: Operand, _ k: ValueContinuation) throws(EvalSignal) {
        switch op {
        case .constant(let v):
            try k(v)
        case .local(let slot):
            guard let v = local(slot) else {
                throw failure(RegoError.Code.internal, "variable read before it was bound", nil)
            }
            try k(v)
        case .input:
            if let input { try k(input) }
        case .data:
            if let v = try nodeValue(0) { try k(v) }
        case .node(let id):
            if let v = try nodeValue(id) { try k(v) }
        case .ref(let base, let path):
            switch base {
            case .node(let id):
                try walkNode(id, path, 0, k)
            case .input:
                if let input { try walk(input, path, 0, k) }
            default:
                try eval(base) { (v) throws(EvalSignal) in try self.walk(v, path, 0, k) }
            }
        case .array(let items):
            var values: [Value] = []
            values.reserveCapacity(items.count)
            try evalAll(items, 0, &values) { (values) throws(EvalSignal) in try k(.array(values)) }
        case .set(let items):
            var values: [Value] = []
            values.reserveCapacity(items.count)
            try evalAll(items, 0, &values) { (values) throws(EvalSignal) in try k(.set(Set(values))) }
        case .object(let keys, let valueOps):
            var values: [Value] = []
            values.reserveCapacity(keys.count * 2)
            try evalAll(keys + valueOps, 0, &values) { (values) throws(EvalSignal) in
                var object: [Value: Value] = [:]
                object.reserveCapacity(keys.count)
                for i in 0..<keys.count { object[values[i]] = values[keys.count + i] }
                try k(.object(object))
            }
        case .comprehension(let c):
            try k(try comprehension(c))
        }
    }

    /// The operands' values, each combination in turn.
    func evalAll(_ ops: [Operand], _ i: Int, _ values: inout [Value], _ k: ([Value]) throws(EvalSignal) -> Void)
        throws(EvalSignal)
    {
        if i == ops.count {
            try k(values)
            return
        }
        // Constants and bound variables need no continuation.
        switch ops[i] {
        case .constant(let v):
            values.append(v)
            defer { values.removeLast() }
            try evalAll(ops, i + 1, &values, k)
            return
        case .local(let slot):
            if let v = local(slot) {
                values.append(v)
                defer { values.removeLast() }
                try evalAll(ops, i + 1, &values, k)
                return
            }
        default:
            break
        }
        try eval(ops[i]) { (v) throws(EvalSignal) in
            values.append(v)
            defer { values.removeLast() }
            try self.evalAll(ops, i + 1, &values, k)
        }
    }

    /// The single value of an operand that does not iterate, or nil when it is undefined; `enumerates` when
    /// it would bind variables.
    @inline(__always)
    func directValue(_ op: Operand) throws(EvalSignal) -> Value?? {
        switch op {
        case .constant(let v): return .some(v)
        case .local(let slot):
            if let v = local(slot) { return .some(v) }
            return nil
        case .input: return .some(input)
        default:
            return nil
        }
    }

    // MARK: - References

    /// Indexes into `value` along `path` from `i`, iterating where the path has unbound variables.
    func walk(_ value: Value, _ path: [Operand], _ i: Int, _ k: ValueContinuation) throws(EvalSignal) {
        var current = value
        var i = i
        while i < path.count {
            switch path[i] {
            case .constant(let key):
                guard let child = Evaluator.lookup(current, key) else { return }
                current = child
                i += 1
                continue
            case .local(let slot):
                if let key = local(slot) {
                    guard let child = Evaluator.lookup(current, key) else { return }
                    current = child
                    i += 1
                    continue
                }
                let next = i + 1
                try iterate(current) { (key, child) throws(EvalSignal) in
                    try self.bind(slot, key) { () throws(EvalSignal) in try self.walk(child, path, next, k) }
                }
                return
            default:
                let element = path[i]
                let next = i + 1
                let container = current
                if isPattern(element) {
                    try iterate(container) { (key, child) throws(EvalSignal) in
                        try self.match(element, key) { () throws(EvalSignal) in try self.walk(child, path, next, k) }
                    }
                } else {
                    try eval(element) { (key) throws(EvalSignal) in
                        guard let child = Evaluator.lookup(container, key) else { return }
                        try self.walk(child, path, next, k)
                    }
                }
                return
            }
        }
        try k(current)
    }

    /// `container[key]` as Rego reads it: object members, array elements at integer positions, set members.
    @inline(__always)
    static func lookup(_ container: Value, _ key: Value) -> Value? {
        switch container {
        case .object(let o):
            return o[key]
        case .array(let a):
            guard case .number(let n) = key, let i = n.int64Value, i >= 0, i < a.count else { return nil }
            return a[Int(i)]
        case .set(let s):
            return s.contains(key) ? key : Optional<Value>.none
        default:
            return nil
        }
    }

    /// Each key and member of a collection, in Rego's order (object keys and set members sorted).
    func iterate(_ collection: Value, _ body: (Value, Value) throws(EvalSignal) -> Void) throws(EvalSignal) {
        switch collection {
        case .array(let a):
            for (i, element) in a.enumerated() { try body(.int(i), element) }
        case .object(let o):
            if o.count == 1, let (key, value) = o.first {
                try body(key, value)
                return
            }
            for key in o.keys.sorted() { try body(key, o[key]!) }
        case .set(let s):
            if s.count == 1, let only = s.first {
                try body(only, only)
                return
            }
            for member in s.sorted() { try body(member, member) }
        default:
            return
        }
    }

    /// A path below a rule-tree node: rules are evaluated only where the path reaches them.
    func walkNode(_ id: Int, _ path: [Operand], _ i: Int, _ k: ValueContinuation) throws(EvalSignal) {
        let node = nodes[id]
        if i == path.count || node.group != nil {
            guard let v = try nodeValue(id) else { return }
            try walk(v, path, i, k)
            return
        }
        let overridden = !dataOverrides.isEmpty
        if overridden, let replacement = overriddenValue(at: node.path) {
            guard let v = replacement else { return }
            try walk(v, path, i, k)
            return
        }
        let element = path[i]
        let key: Value?
        switch element {
        case .constant(let v): key = v
        case .local(let slot): key = local(slot)
        default: key = nil
        }
        if let key {
            if let child = node.children[key] {
                try walkNode(child, path, i + 1, k)
                return
            }
            var child = node.baseData.flatMap { Evaluator.lookup($0, key) }
            if overridden { child = patchOverrides(below: node.path + [key], child) }
            if let child { try walk(child, path, i + 1, k) }
            return
        }
        if overridden {
            // Replacements may add members anywhere: iterate over the whole document.
            guard let v = try nodeValue(id) else { return }
            try walk(v, path, i, k)
            return
        }
        // Iteration over a package: its base documents first, then the documents its rules define.
        let next = i + 1
        if let base = node.baseData {
            try iterate(base) { (key, child) throws(EvalSignal) in
                guard node.children[key] == nil else { return }
                try self.match(element, key) { () throws(EvalSignal) in try self.walk(child, path, next, k) }
            }
        }
        for key in node.childKeys {
            let child = node.children[key]!
            if let group = nodes[child].group, group.isFunction { continue }
            guard try nodeValue(child) != nil else { continue }
            try match(element, key) { () throws(EvalSignal) in try self.walkNode(child, path, next, k) }
        }
    }

    // MARK: - Unification

    /// Whether an operand has unbound variables outside references (so it is matched, not evaluated).
    func isPattern(_ op: Operand) -> Bool {
        switch op {
        case .local(let slot): return local(slot) == nil
        case .array(let items): return items.contains { isPattern($0) }
        case .object(_, let values): return values.contains { isPattern($0) }
        default: return false
        }
    }

    func unify(_ a: Operand, _ b: Operand, _ k: Continuation) throws(EvalSignal) {
        let aIsPattern = isPattern(a)
        if aIsPattern, isPattern(b) {
            // Both sides have unbound variables: match them element by element.
            switch (a, b) {
            case (.array(let xs), .array(let ys)) where xs.count == ys.count:
                try unifyPairs(xs, ys, 0, k)
            case (.object(let ka, let va), .object(let kb, let vb)) where ka.count == kb.count:
                var keysA: [Value] = []
                var keysB: [Value] = []
                for key in ka {
                    guard case .some(.some(let v)) = try directValue(key) else { return }
                    keysA.append(v)
                }
                for key in kb {
                    guard case .some(.some(let v)) = try directValue(key) else { return }
                    keysB.append(v)
                }
                var xs: [Operand] = []
                var ys: [Operand] = []
                for (i, key) in keysA.enumerated() {
                    guard let j = keysB.firstIndex(of: key) else { return }
                    xs.append(va[i])
                    ys.append(vb[j])
                }
                try unifyPairs(xs, ys, 0, k)
            default:
                return
            }
            return
        }
        if aIsPattern {
            try eval(b) { (v) throws(EvalSignal) in try self.match(a, v, k) }
        } else {
            try eval(a) { (v) throws(EvalSignal) in try self.match(b, v, k) }
        }
    }

    private func unifyPairs(_ xs: [Operand], _ ys: [Operand], _ i: Int, _ k: Continuation) throws(EvalSignal) {
        if i == xs.count {
            try k()
            return
        }
        try unify(xs[i], ys[i]) { () throws(EvalSignal) in try self.unifyPairs(xs, ys, i + 1, k) }
    }

    /// Matches a pattern (or any operand) against a value, binding the pattern's unbound variables.
    func match(_ pattern: Operand, _ value: Value, _ k: Continuation) throws(EvalSignal) {
        switch pattern {
        case .local(let slot):
            if let current = local(slot) {
                if current == value { try k() }
            } else {
                try bind(slot, value, k)
            }
        case .constant(let c):
            if c == value { try k() }
        case .array(let items):
            guard case .array(let values) = value, values.count == items.count else { return }
            try matchAll(items, values, 0, k)
        case .object(let keys, let valueOps):
            guard case .object(let object) = value, object.count == keys.count else { return }
            var keyValues: [Value] = []
            keyValues.reserveCapacity(keys.count)
            try evalAll(keys, 0, &keyValues) { (keyValues) throws(EvalSignal) in
                var members: [Value] = []
                members.reserveCapacity(keys.count)
                for key in keyValues {
                    guard let member = object[key] else { return }
                    members.append(member)
                }
                try self.matchAll(valueOps, members, 0, k)
            }
        default:
            try eval(pattern) { (v) throws(EvalSignal) in
                if v == value { try k() }
            }
        }
    }

    private func matchAll(_ patterns: [Operand], _ values: [Value], _ i: Int, _ k: Continuation) throws(EvalSignal) {
        if i == patterns.count {
            try k()
            return
        }
        try match(patterns[i], values[i]) { () throws(EvalSignal) in try self.matchAll(patterns, values, i + 1, k) }
    }

    // MARK: - Comprehensions

    func comprehension(_ c: Comprehension) throws(EvalSignal) -> Value {
        switch c.kind {
        case .array:
            var out: [Value] = []
            try evalBody(c.body, 0) { () throws(EvalSignal) in
                try self.eval(c.head) { (v) throws(EvalSignal) in out.append(v) }
            }
            return .array(out)
        case .set:
            var out = Set<Value>()
            try evalBody(c.body, 0) { () throws(EvalSignal) in
                try self.eval(c.head) { (v) throws(EvalSignal) in out.insert(v) }
            }
            return .set(out)
        case .object:
            var out: [Value: Value] = [:]
            let valueOp = c.value ?? .constant(.bool(true))
            try evalBody(c.body, 0) { () throws(EvalSignal) in
                try self.eval(c.head) { (key) throws(EvalSignal) in
                    try self.eval(valueOp) { (v) throws(EvalSignal) in
                        if let existing = out[key], existing != v {
                            throw self.failure(RegoError.Code.conflict, "object keys must be unique", c.location)
                        }
                        out[key] = v
                    }
                }
            }
            return .object(out)
        }
    }

    // MARK: - print

    func print(_ args: [Operand], _ location: Location) throws(EvalSignal) {
        var parts: [String] = []
        for arg in args {
            var values: [Value] = []
            try eval(arg) { (v) throws(EvalSignal) in values.append(v) }
            if values.isEmpty {
                parts.append("<undefined>")
            } else if values.count == 1 {
                if case .string(let s) = values[0] { parts.append(s) } else { parts.append(values[0].regoText) }
            } else {
                parts.append(Value.set(Set(values)).regoText)
            }
        }
        options.printHandler?(RegoPrint(message: parts.joined(separator: " "), location: location))
    }
}
