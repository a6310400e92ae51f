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
/// and the `with` replacements in force. Evaluation is depth first: a body runs in a loop over its planned
/// literals (see `Planner`), with continuations only where a literal iterates by itself; every rule a query
/// refers to is computed in full once and kept, so generators never cross rule boundaries.
///
/// An evaluator is used by one thread for one query, so its state is declared `@exclusivity(unchecked)`: the
/// dynamic exclusivity checks Swift would make on every access to a class's stored properties cost more than
/// the work on this path.
final class Evaluator {
    let policy: RegoPolicySet
    let nodes: [RuleNode]
    let options: RegoEvaluationOptions
    let builtinContext: BuiltinContext

    @exclusivity(unchecked) var input: Value?
    /// Variables of all active frames; a frame starts at `base`, and the frames end at `top`.
    @exclusivity(unchecked) var stack: ContiguousArray<Value?> = []
    @exclusivity(unchecked) var base = 0
    @exclusivity(unchecked) var top = 0
    /// The values of rule-tree nodes computed in the current scope (those of `generation`).
    @exclusivity(unchecked) var cache: ContiguousArray<CacheEntry>
    @exclusivity(unchecked) var generation = 0
    /// The generation the next `with` scope gets.
    @exclusivity(unchecked) var nextGeneration = 1
    /// `with data.x as v` replacements in force, by path.
    @exclusivity(unchecked) var dataOverrides: [[Value]: Value] = [:]
    /// `with f as g` replacements in force.
    @exclusivity(unchecked) var functionOverrides: [FunctionKey: FunctionReplacement] = [:]
    /// The first builtin error seen; with strict builtin errors it becomes the query's error.
    @exclusivity(unchecked) var builtinError: Diagnostic?
    /// Stack positions bound by direct literals (and function parameters), unbound again when the body (or
    /// frame) that bound them is left.
    @exclusivity(unchecked) var trail: [Int] = []
    /// How many bodies, rules and comprehensions are being evaluated inside one another: each holds machine
    /// stack, so evaluation stops with an error at `maximumDepth` instead of running out of stack.
    @exclusivity(unchecked) var depth = 0
    /// The lowest machine-stack address evaluation may use (`stackBudget` below where it started). Terms nest
    /// too (collections, references, patterns, and long operand lists recurse once per element), so every
    /// recursive step checks it: a rule chain at `maximumDepth` whose rules hold the deepest terms the parser
    /// lets through stops with an error instead of exhausting the stack.
    let stackLimit: UInt
    /// Operand arrays for builtin calls, reused so a call allocates none.
    @exclusivity(unchecked) var argumentPool: [[Value]] = []
    /// Rule caches of finished `with` scopes, reused by the next scope.
    @exclusivity(unchecked) var cachePool: [ContiguousArray<CacheEntry>] = []
    /// The loops (`some x in xs`) of the bodies being evaluated, innermost last.
    @exclusivity(unchecked) var loops: [Loop] = []

    /// `some x in xs` in progress: the collection and the next member, in Rego's order (arrays by index, object
    /// keys and set members sorted).
    struct Loop {
        /// The loop's position in its body.
        let literal: Int
        /// The trail before the loop bound its member.
        let mark: Int
        private let collection: Value
        private let keys: [Value]
        private var position = 0

        init(literal: Int, mark: Int, collection: Value) {
            self.literal = literal
            self.mark = mark
            self.collection = collection
            switch collection {
            case .object(let o): keys = o.count == 1 ? Array(o.keys) : o.keys.sorted()
            case .set(let s): keys = s.count == 1 ? Array(s) : s.sorted()
            default: keys = []
            }
        }

        mutating func next() -> (key: Value, member: Value)? {
            let i = position
            switch collection {
            case .array(let a):
                guard i < a.count else { return nil }
                position += 1
                return (.int(i), a[i])
            case .object(let o):
                guard i < keys.count else { return nil }
                position += 1
                return (keys[i], o[keys[i]]!)
            case .set:
                guard i < keys.count else { return nil }
                position += 1
                return (keys[i], keys[i])
            default:
                return nil
            }
        }
    }

    /// A rule-tree node's value in the cache of one scope; an entry of another generation (an earlier scope
    /// that used the same storage) is not there.
    struct CacheEntry {
        var generation = -1
        /// Nil when the node is undefined.
        var value: Value?
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
        self.cache = ContiguousArray(repeating: CacheEntry(), count: policy.nodes.count)
        self.builtinContext = BuiltinContext(nowNanoseconds: options.now ?? Evaluator.currentTime())
        let start = Evaluator.stackAddress()
        self.stackLimit = start > Evaluator.stackBudget ? start - Evaluator.stackBudget : 0
        stack.reserveCapacity(64)
        trail.reserveCapacity(32)
        loops.reserveCapacity(8)
    }

    static func currentTime() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    // MARK: - Frames

    /// A new frame of `size` unbound slots above the current one; returns what `popFrame` restores. Slots above
    /// `top` are always unbound, so the storage only grows.
    @inline(__always)
    func pushFrame(_ size: Int) -> Int {
        let saved = base
        base = top
        top += size
        if stack.count < top { stack.append(contentsOf: repeatElement(nil, count: top - stack.count)) }
        return saved
    }

    @inline(__always)
    func popFrame(_ size: Int, _ saved: Int) {
        var i = base
        while i < top {
            stack[i] = nil
            i += 1
        }
        top = base
        base = saved
    }

    /// Unbinds what direct literals bound since `mark`.
    @inline(__always)
    func undo(to mark: Int) {
        while trail.count > mark { stack[trail.removeLast()] = nil }
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

    /// Evaluates `literals[start...]`, calling `k` for each solution. Direct literals (at most one solution,
    /// see `Planner`) run in this loop, and so do loops over known collections: after a solution, or when a
    /// literal fails, the innermost loop moves to its next member and the body goes on after it. Any other
    /// literal that iterates runs with the rest of the body as its continuation.
    func evalBody(_ literals: [Literal], _ start: Int, _ k: Continuation) throws(EvalSignal) {
        try enter(literals.indices.contains(start) ? literals[start].location : nil)
        let mark = trail.count
        let outer = loops.count
        defer {
            if loops.count > outer { loops.removeLast(loops.count - outer) }
            undo(to: mark)
            depth -= 1
        }
        var i = start
        while true {
            var solved = true
            while i < literals.count {
                let literal = literals[i]
                guard let direct = literal.direct else {
                    let next = i + 1
                    try evalLiteral(literal) { () throws(EvalSignal) in try self.evalBody(literals, next, k) }
                    solved = false
                    break
                }
                if case .each(_, _, let domain) = direct {
                    guard let collection = try value(domain) else {
                        solved = false
                        break
                    }
                    loops.append(Loop(literal: i, mark: trail.count, collection: collection))
                    // An empty collection fails here, and the loop before it moves on.
                    guard try advanceLoop(literals, outer) else { return }
                    i = loops[loops.count - 1].literal + 1
                    continue
                }
                guard try run(direct, literal) else {
                    solved = false
                    break
                }
                i += 1
            }
            if solved { try k() }
            // Backtrack into the innermost loop that has members left.
            guard try advanceLoop(literals, outer) else { return }
            i = loops[loops.count - 1].literal + 1
        }
    }

    /// Binds the next member of the innermost loop that matches its patterns, after undoing what the previous
    /// member bound. When a loop has no member left it is removed and the next loop out advances, down to
    /// `outer`; false when none has a member left.
    private func advanceLoop(_ literals: [Literal], _ outer: Int) throws(EvalSignal) -> Bool {
        while loops.count > outer {
            let top = loops.count - 1
            undo(to: loops[top].mark)
            guard let (key, member) = loops[top].next() else {
                loops.removeLast()
                continue
            }
            guard case .each(let keyPattern, let valuePattern, _)? = literals[loops[top].literal].direct else {
                throw failure(RegoError.Code.internal, "loop without a loop literal", nil)
            }
            if let keyPattern {
                guard try matchDirect(keyPattern, key) else { continue }
            }
            guard try matchDirect(valuePattern, member) else { continue }
            return true
        }
        return false
    }

    /// One more level of nested evaluation, or an error when evaluation is nested too deeply to go on safely.
    @inline(__always)
    func enter(_ location: Location?) throws(EvalSignal) {
        guard depth < Evaluator.maximumDepth else { throw tooDeep(location) }
        try checkStack(location)
        depth += 1
    }

    /// Stops evaluation when it has used its stack budget.
    @inline(__always)
    func checkStack(_ location: Location? = nil) throws(EvalSignal) {
        guard Evaluator.stackAddress() > stackLimit else { throw stackExhausted(location) }
    }

    /// The address of the caller's stack frame (near enough: a local of this inlined function).
    @inline(__always)
    static func stackAddress() -> UInt {
        var marker: UInt8 = 0
        return withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
    }

    /// How much machine stack one evaluation may use: 5 MiB, or less when the process's stack limit (which is
    /// also the default size of the threads it starts) leaves less than 3 MiB for the caller and for the work
    /// on the result after evaluation (a debug build's frames are several times an optimized one's: a rule body
    /// takes about 22 KiB there, a nested term about 4 KiB).
    static let stackBudget: UInt = {
        var limit = rlimit()
        let fiveMiB: UInt = 5 << 20
        guard getrlimit(Int32(RLIMIT_STACK.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return fiveMiB }
        let size = UInt(limit.rlim_cur)
        return size > (3 << 20) + (512 << 10) ? min(fiveMiB, size - (3 << 20)) : 512 << 10
    }()

    func stackExhausted(_ location: Location?) -> EvalSignal {
        failure(
            RegoError.Code.cancelled,
            "evaluation nested too deeply: its rule bodies, comprehensions and terms inside one another need more than \(Evaluator.stackBudget >> 10) KiB of stack",
            location)
    }

    /// Bodies nest on the machine stack: a rule's body evaluating another rule, a comprehension, `not` and
    /// `every`, and the rest of a body after a literal that iterates by continuation. This many levels stay
    /// well inside an 8 MB thread stack even in a debug build.
    static let maximumDepth = 300

    func tooDeep(_ location: Location?) -> EvalSignal {
        failure(
            RegoError.Code.cancelled,
            "evaluation nested too deeply: more than \(Evaluator.maximumDepth) rule bodies, comprehensions and iterations inside one another",
            location)
    }

    /// Runs a direct literal: whether it holds (its variables are then bound, and recorded on the trail).
    func run(_ direct: DirectStep, _ literal: Literal) throws(EvalSignal) -> Bool {
        switch direct {
        case .check(let op):
            guard let v = try value(op) else { return false }
            if case .bool(false) = v { return false }
            return true
        case .equal(let a, let b):
            guard let x = try value(a), let y = try value(b) else { return false }
            return x == y
        case .bind(let pattern, let op):
            guard let v = try value(op) else { return false }
            return try matchDirect(pattern, v)
        case .call(let c):
            return try callDirect(c, literal)
        case .not(let inner):
            return try !succeeds(inner)
        case .every:
            var holds = false
            try evalLiteral(literal) { () throws(EvalSignal) in holds = true }
            return holds
        case .with(let bindings, let inner):
            return try withDirect(bindings, inner)
        case .print(let args):
            try print(args, literal.location)
            return true
        case .each:
            throw failure(RegoError.Code.internal, "a loop outside its body", literal.location)
        case .globMatch(let glob):
            guard functionOverrides.isEmpty, case .string(let text)? = try value(glob.text) else {
                // Replaced, undefined or not a string: the builtin says what happens.
                return try callDirect(glob.call, literal)
            }
            let holds = glob.pattern.matches(text)
            if let output = glob.call.output { return try matchDirect(output, .bool(holds)) }
            return holds
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
        case .call(let c):
            try call(c, literal, k)
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
        try checkStack()
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
        case .ref(let r):
            switch r.base {
            case .node(let id):
                try walkNode(id, r.path, 0, k)
            case .input:
                guard let input else { return }
                if let keys = r.constantPath {
                    // `input.a.b.c`: plain lookups, no continuation per step.
                    var current = input
                    for key in keys {
                        guard let child = Evaluator.lookup(current, key) else { return }
                        current = child
                    }
                    try k(current)
                } else {
                    try walk(input, r.path, 0, k)
                }
            default:
                try eval(r.base) { (v) throws(EvalSignal) in try self.walk(v, r.path, 0, k) }
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
        try checkStack()
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

    /// The value of an operand that does not iterate (every variable it reads is bound), or nil when it is
    /// undefined.
    func value(_ op: Operand) throws(EvalSignal) -> Value? {
        switch op {
        case .constant(let v):
            return v
        case .local(let slot):
            guard let v = stack[base + slot] else {
                throw failure(RegoError.Code.internal, "variable read before it was bound", nil)
            }
            return v
        case .input:
            return input
        case .data:
            return try nodeValue(0)
        case .node(let id):
            return try nodeValue(id)
        case .ref(let r):
            try checkStack()
            return try referenceValue(r)
        case .array(let items):
            try checkStack()
            var values: [Value] = []
            values.reserveCapacity(items.count)
            for item in items {
                guard let v = try value(item) else { return nil }
                values.append(v)
            }
            return .array(values)
        case .set(let items):
            try checkStack()
            var values = Set<Value>(minimumCapacity: items.count)
            for item in items {
                guard let v = try value(item) else { return nil }
                values.insert(v)
            }
            return .set(values)
        case .object(let keys, let valueOps):
            try checkStack()
            var object: [Value: Value] = [:]
            object.reserveCapacity(keys.count)
            for i in keys.indices {
                guard let key = try value(keys[i]), let v = try value(valueOps[i]) else { return nil }
                object[key] = v
            }
            return .object(object)
        case .comprehension(let c):
            return try comprehension(c)
        }
    }

    /// `base[p0][p1]...` when every part is known.
    private func referenceValue(_ r: Reference) throws(EvalSignal) -> Value? {
        if case .node(let id) = r.base { return try nodeValue(id, path: r.path) }
        guard var current = try value(r.base) else { return nil }
        if let keys = r.constantPath {
            for key in keys {
                guard let child = Evaluator.lookup(current, key) else { return nil }
                current = child
            }
            return current
        }
        return try lookup(current, r.path, 0)
    }

    /// `value[path[i]][path[i + 1]]...` when every part is known.
    @inline(__always)
    private func lookup(_ value: Value, _ path: [Operand], _ start: Int) throws(EvalSignal) -> Value? {
        var current = value
        var i = start
        while i < path.count {
            guard let key = try self.value(path[i]), let child = Evaluator.lookup(current, key) else { return nil }
            current = child
            i += 1
        }
        return current
    }

    /// A known path below a rule-tree node (`data.a.b[k]`): rules are evaluated only where the path reaches
    /// them (`walkNode` when the path iterates).
    func nodeValue(_ start: Int, path: [Operand]) throws(EvalSignal) -> Value? {
        var id = start
        var i = 0
        while true {
            let node = nodes[id]
            if i == path.count || node.group != nil {
                guard let v = try nodeValue(id) else { return nil }
                return try lookup(v, path, i)
            }
            if !dataOverrides.isEmpty, let replacement = overriddenValue(at: node.path) {
                guard let v = replacement else { return nil }
                return try lookup(v, path, i)
            }
            guard let key = try value(path[i]) else { return nil }
            if let child = node.children[key] {
                id = child
                i += 1
                continue
            }
            var child = node.baseData.flatMap { Evaluator.lookup($0, key) }
            if !dataOverrides.isEmpty { child = patchOverrides(below: node.path + [key], child) }
            guard let child else { return nil }
            return try lookup(child, path, i + 1)
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

    /// Matches a value against a pattern whose unbound variables it binds (recorded on the trail).
    func matchDirect(_ pattern: Operand, _ v: Value) throws(EvalSignal) -> Bool {
        switch pattern {
        case .local(let slot):
            let index = base + slot
            if let current = stack[index] { return current == v }
            stack[index] = v
            trail.append(index)
            return true
        case .constant(let c):
            return c == v
        case .array(let items):
            try checkStack()
            guard case .array(let values) = v, values.count == items.count else { return false }
            for i in items.indices {
                guard try matchDirect(items[i], values[i]) else { return false }
            }
            return true
        case .object(let keys, let valueOps):
            try checkStack()
            guard case .object(let object) = v, object.count == keys.count else { return false }
            var members: [Value] = []
            members.reserveCapacity(keys.count)
            for key in keys {
                guard let k = try value(key), let member = object[k] else { return false }
                members.append(member)
            }
            for i in valueOps.indices {
                guard try matchDirect(valueOps[i], members[i]) else { return false }
            }
            return true
        default:
            guard let x = try value(pattern) else { return false }
            return x == v
        }
    }

    // MARK: - References

    /// Indexes into `value` along `path` from `i`, iterating where the path has unbound variables.
    func walk(_ value: Value, _ path: [Operand], _ i: Int, _ k: ValueContinuation) throws(EvalSignal) {
        try checkStack()
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
        try checkStack()
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
        try checkStack()
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
        guard depth < Evaluator.maximumDepth else { throw tooDeep(c.location) }
        try checkStack(c.location)
        switch c.kind {
        case .array:
            var out: [Value] = []
            try evalBody(c.body, 0) { () throws(EvalSignal) in
                if c.headIsDirect {
                    if let v = try self.value(c.head) { out.append(v) }
                } else {
                    try self.eval(c.head) { (v) throws(EvalSignal) in out.append(v) }
                }
            }
            return .array(out)
        case .set:
            var out = Set<Value>()
            try evalBody(c.body, 0) { () throws(EvalSignal) in
                if c.headIsDirect {
                    if let v = try self.value(c.head) { out.insert(v) }
                } else {
                    try self.eval(c.head) { (v) throws(EvalSignal) in out.insert(v) }
                }
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
