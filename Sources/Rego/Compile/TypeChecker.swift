import PolicyCore

/// OPA's compile-time checks of calls: the number of operands, and operand types that can never match the
/// builtin's declaration (`plus: invalid argument(s)` with `have:` and `want:` lines). Types flow from constants,
/// builtin results and assignments through each body; anything unknown is `any` and never an error, so the
/// checker only reports what OPA's would.
struct TypeChecker {
    let tree: TreeIndex
    /// The parameter types of user functions, by node.
    let functionParameters: [Int: [RegoType]]

    init(tree: TreeIndex, functionParameters: [Int: [RegoType]] = [:]) {
        self.tree = tree
        self.functionParameters = functionParameters
    }

    func check(_ rule: CompiledRule, lowering: Lowering) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        for arity in lowering.arityErrors {
            problems.append(arityError(arity.name, arity.arguments, hasOutput: arity.hasOutput, arity.location, lowering))
        }
        for clause in rule.clauses {
            var environment: [Int: RegoType] = [:]
            check(clause.body, &environment, &problems)
            // Comprehensions in the head (`value := {k: v | ...}`) are checked in the body's environment.
            for op in rule.keys + [clause.value] {
                forEachComprehension(in: op) { c in
                    var scoped = environment
                    check(c.body, &scoped, &problems)
                }
            }
        }
        return problems
    }

    func checkQuery(_ body: [Literal], lowering: Lowering) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        for arity in lowering.arityErrors {
            problems.append(arityError(arity.name, arity.arguments, hasOutput: arity.hasOutput, arity.location, lowering))
        }
        var environment: [Int: RegoType] = [:]
        check(body, &environment, &problems)
        return problems
    }

    private func arityError(
        _ name: String, _ arguments: [Term], hasOutput: Bool, _ location: Location, _ lowering: Lowering
    ) -> Diagnostic {
        var have = arguments.map { term -> String in
            if let v = term.groundValue { return TypeChecker.type(of: v).description }
            return term.variableName != nil ? "???" : "any"
        }
        if hasOutput { have.append("???") }
        var message = "\(name): arity mismatch\n\thave: (\(have.joined(separator: ", ")))"
        if let signature = Builtins.all[name]?.signature {
            message += "\n\twant: \(signature.argumentsDescription)"
        }
        return RegoError.diagnostic(RegoError.Code.type, message, location)
    }

    private func check(_ literals: [Literal], _ env: inout [Int: RegoType], _ problems: inout [Diagnostic]) {
        for literal in literals {
            switch literal.step {
            case .call(let c):
                let target = c.target, args = c.arguments, output = c.output, name = c.name
                var signature: BuiltinSignature?
                switch target {
                case .builtin(let b): signature = b.signature
                case .compare: signature = Builtins.all[name]?.signature
                case .function(let id):
                    if let parameters = functionParameters[id] {
                        signature = BuiltinSignature(
                            arguments: parameters.map { .init(name: nil, type: $0) },
                            result: .init(name: nil, type: .anyValue))
                    }
                default: break
                }
                if case .compare(.equal) = target, output == nil, args.count == 2 {
                    // OPA rewrites `x == y` standing alone into the unification `x = y` before checking types.
                    checkUnification(args[0], args[1], env, literal.location, &problems)
                }
                let types = args.map { type(of: $0, env) }
                if let signature, signature.arguments.count == args.count {
                    let mismatch = zip(types, signature.arguments).contains { have, want in
                        !TypeChecker.compatible(have, want.type)
                    }
                    if mismatch {
                        var have = types.map(\.description)
                        if let output { have.append(outputDescription(output, env)) }
                        problems.append(
                            RegoError.diagnostic(
                                RegoError.Code.type,
                                "\(name): invalid argument(s)\n\thave: (\(have.joined(separator: ", ")))\n\twant: \(signature.fullDescription)",
                                literal.location))
                    }
                }
                if case .local(let slot)? = output, env[slot] == nil {
                    if let result = signature?.result?.type {
                        env[slot] = result
                    } else if case .compare = target {
                        env[slot] = .boolean
                    }
                }
            case .unify(let a, let b):
                checkUnification(a, b, env, literal.location, &problems)
                if case .local(let s) = a, env[s] == nil, let t = known(b, env) { env[s] = t }
                if case .local(let s) = b, env[s] == nil, let t = known(a, env) { env[s] = t }
            case .not(let inner):
                var scoped = env
                check(inner, &scoped, &problems)
            case .with(_, let inner):
                check(inner, &env, &problems)
            case .every(_, _, _, let body):
                var scoped = env
                check(body, &scoped, &problems)
            case .member(let key, let value, let domain):
                // `some k, v in xs` is `v = xs[k]` to OPA's checker: the members take the domain's element types.
                if let (keyType, valueType) = TypeChecker.members(of: type(of: domain, env)) {
                    if case .local(let s)? = key, env[s] == nil { env[s] = keyType }
                    if case .local(let s) = value, env[s] == nil { env[s] = valueType }
                }
            case .test, .print:
                break
            }
            forEachComprehension(literal.step) { c in
                var scoped = env
                check(c.body, &scoped, &problems)
            }
        }
    }

    /// OPA's checker refuses a unification (`x = y`, and `x == y` standing alone) whose sides' known types no
    /// value could have both of.
    private func checkUnification(
        _ a: Operand, _ b: Operand, _ env: [Int: RegoType], _ location: Location, _ problems: inout [Diagnostic]
    ) {
        guard let left = known(a, env), let right = known(b, env), !TypeChecker.compatible(left, right) else { return }
        problems.append(
            RegoError.diagnostic(RegoError.Code.type, "match error\n\tleft  : \(left)\n\tright : \(right)", location))
    }

    private func outputDescription(_ op: Operand, _ env: [Int: RegoType]) -> String {
        if case .local(let s) = op, env[s] == nil { return "???" }
        return type(of: op, env).description
    }

    /// Calls `body` with each comprehension in `op`, outermost first (not those nested in their bodies).
    private func forEachComprehension(in op: Operand, _ body: (Comprehension) -> Void) {
        switch op {
        case .comprehension(let c): body(c)
        case .ref(let r):
            forEachComprehension(in: r.base, body)
            r.path.forEach { forEachComprehension(in: $0, body) }
        case .array(let items), .set(let items): items.forEach { forEachComprehension(in: $0, body) }
        case .object(let keys, let values):
            keys.forEach { forEachComprehension(in: $0, body) }
            values.forEach { forEachComprehension(in: $0, body) }
        default: break
        }
    }

    private func forEachComprehension(_ step: Step, _ body: (Comprehension) -> Void) {
        func visit(_ op: Operand) { forEachComprehension(in: op, body) }
        switch step {
        case .test(let op): visit(op)
        case .unify(let a, let b):
            visit(a)
            visit(b)
        case .call(let c):
            c.arguments.forEach(visit)
            if let output = c.output { visit(output) }
        case .member(let k, let v, let d):
            if let k { visit(k) }
            visit(v)
            visit(d)
        case .every(_, _, let d, _): visit(d)
        case .print(let args): args.forEach(visit)
        case .not, .with: break
        }
    }

    /// The type of an operand when it is known; nil when it is not.
    private func known(_ op: Operand, _ env: [Int: RegoType]) -> RegoType? {
        switch op {
        case .constant(let v): return TypeChecker.type(of: v)
        case .local(let s): return env[s]
        case .comprehension(let c):
            switch c.kind {
            case .array: return .array(of: .anyValue)
            case .set: return .set(.anyValue)
            case .object: return .object(.anyValue, .anyValue)
            }
        case .array(let items):
            return .array(positions: items.map { type(of: $0, env) }, rest: nil)
        case .set: return .set(.anyValue)
        case .object: return .object(.anyValue, .anyValue)
        default: return nil
        }
    }

    private func type(of op: Operand, _ env: [Int: RegoType]) -> RegoType {
        known(op, env) ?? .anyValue
    }

    /// OPA's type of a constant.
    static func type(of value: Value) -> RegoType {
        switch value {
        case .null: return .null
        case .bool: return .boolean
        case .number: return .number
        case .string: return .string
        case .array(let items): return .array(positions: items.map { type(of: $0) }, rest: nil)
        case .set(let items):
            let types = Set(items.map { type(of: $0) })
            if types.isEmpty { return .set(.anyValue) }
            if types.count == 1 { return .set(types.first!) }
            return .set(.any(types.sorted { $0.description < $1.description }))
        case .object(let members):
            if members.keys.allSatisfy({ $0.stringValue != nil }) {
                let fields = members.keys.sorted().map { RegoType.Field(key: $0.stringValue!, type: type(of: members[$0]!)) }
                return .object(fields: fields, rest: nil)
            }
            return .object(.anyValue, .anyValue)
        }
    }

    /// The key and value types of a collection's members; nil when `type` is not a collection (or not known).
    static func members(of type: RegoType) -> (key: RegoType, value: RegoType)? {
        switch type {
        case .array(let positions, let rest):
            let elements = positions + (rest.map { [$0] } ?? [])
            return elements.isEmpty ? nil : (.number, union(elements))
        case .set(let element):
            return (element, element)
        case .object(let fields, let rest):
            var keys: [RegoType] = fields.isEmpty ? [] : [.string]
            var values = fields.map(\.type)
            if let rest {
                keys.append(rest.key)
                values.append(rest.value)
            }
            return values.isEmpty ? nil : (union(keys), union(values))
        default:
            return nil
        }
    }

    /// The type a function parameter's pattern accepts.
    static func patternType(_ term: Term) -> RegoType {
        if let value = term.groundValue { return type(of: value) }
        switch term.kind {
        case .array(let items):
            return .array(positions: items.map(patternType), rest: nil)
        case .object(let members):
            var fields: [RegoType.Field] = []
            for member in members {
                guard case .string(let key) = member.key.kind else { return .object(.anyValue, .anyValue) }
                fields.append(RegoType.Field(key: key, type: patternType(member.value)))
            }
            return .object(fields: fields.sorted { $0.key < $1.key }, rest: nil)
        default:
            return .anyValue
        }
    }

    /// One type covering all of `types`.
    static func union(_ types: [RegoType]) -> RegoType {
        var members: [RegoType] = []
        for t in types {
            if case .any(let inner) = t {
                if inner.isEmpty { return .anyValue }
                for m in inner where !members.contains(m) { members.append(m) }
            } else if !members.contains(t) {
                members.append(t)
            }
        }
        if members.count == 1 { return members[0] }
        return members.isEmpty ? .anyValue : .any(members.sorted { $0.description < $1.description })
    }

    /// Whether some value could have both types.
    static func compatible(_ a: RegoType, _ b: RegoType) -> Bool {
        switch (a, b) {
        case (.any(let members), _):
            return members.isEmpty || members.contains { compatible($0, b) }
        case (_, .any(let members)):
            return members.isEmpty || members.contains { compatible(a, $0) }
        case (.null, .null), (.boolean, .boolean), (.number, .number), (.string, .string):
            return true
        case (.array(let pa, nil), .array(let pb, nil)):
            return pa.count == pb.count && zip(pa, pb).allSatisfy { compatible($0, $1) }
        case (.object(let fa, nil), .object(let fb, nil)):
            return fa.map(\.key) == fb.map(\.key) && zip(fa, fb).allSatisfy { compatible($0.type, $1.type) }
        case (.array(let pa, let ra), .array(let pb, let rb)):
            let elementA = pa + (ra.map { [$0] } ?? [])
            let elementB = pb + (rb.map { [$0] } ?? [])
            if elementA.isEmpty || elementB.isEmpty { return true }
            return elementA.allSatisfy { x in elementB.contains { compatible(x, $0) } }
        case (.object, .object):
            return true
        case (.set(let x), .set(let y)):
            return compatible(x, y)
        default:
            return false
        }
    }
}
