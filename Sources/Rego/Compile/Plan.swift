import PolicyCore

/// A compiled term. Variables are slots in the frame of the rule (or query) being evaluated; references to
/// `data` start at the deepest rule-tree node the compiler could resolve statically.
indirect enum Operand: Sendable {
    case constant(Value)
    case local(Int)
    /// The `input` document.
    case input
    /// The whole `data` document.
    case data
    /// The virtual document at a rule-tree node (`data.a.b`).
    case node(Int)
    /// `base[p0][p1]...`.
    case ref(Reference)
    case array([Operand])
    case set([Operand])
    case object([Operand], [Operand])
    case comprehension(Comprehension)

    var constantValue: Value? {
        if case .constant(let v) = self { return v }
        return nil
    }

    var localSlot: Int? {
        if case .local(let s) = self { return s }
        return nil
    }

    static func ref(_ base: Operand, _ path: [Operand]) -> Operand { .ref(Reference(base: base, path: path)) }
}

/// `base[p0][p1]...`: a class, so evaluation shares it instead of copying its parts.
final class Reference: Sendable {
    let base: Operand
    let path: [Operand]
    /// The path when every part is a constant (most references into `input`).
    let constantPath: [Value]?

    init(base: Operand, path: [Operand]) {
        self.base = base
        self.path = path
        var constants: [Value] = []
        for part in path {
            guard case .constant(let v) = part else { break }
            constants.append(v)
        }
        constantPath = constants.count == path.count ? constants : nil
    }
}

final class Comprehension: Sendable {
    enum Kind: Sendable { case array, set, object }

    let kind: Kind
    /// The element (array, set) or the key (object).
    let head: Operand
    /// The value of an object comprehension.
    let value: Operand?
    let body: [Literal]
    let location: Location
    /// Whether the head (and value) have one value once the body is solved (see `Planner`).
    let headIsDirect: Bool

    init(kind: Kind, head: Operand, value: Operand?, body: [Literal], location: Location, headIsDirect: Bool = false) {
        self.kind = kind
        self.head = head
        self.value = value
        self.body = body
        self.location = location
        self.headIsDirect = headIsDirect
    }
}

/// One step of a compiled body.
final class Literal: Sendable {
    let step: Step
    let location: Location
    /// How the literal runs when it has at most one solution; nil when it iterates (see `Planner`).
    let direct: DirectStep?

    init(step: Step, location: Location, direct: DirectStep? = nil) {
        self.step = step
        self.location = location
        self.direct = direct
    }
}

/// A call: what it invokes, its operands, where its result goes (a statement when nil), and the name errors
/// use.
final class Call: Sendable {
    let target: CallTarget
    let arguments: [Operand]
    let output: Operand?
    let name: String

    init(target: CallTarget, arguments: [Operand], output: Operand?, name: String) {
        self.target = target
        self.arguments = arguments
        self.output = output
        self.name = name
    }
}

indirect enum Step: Sendable {
    /// The term must be defined and not `false`.
    case test(Operand)
    /// Unification (`=`, and `:=` once declarations are checked).
    case unify(Operand, Operand)
    /// A call; without an output its result must be defined and not `false`.
    case call(Call)
    /// `some v in domain`, `some k, v in domain`: binds each member in turn.
    case member(key: Operand?, value: Operand, domain: Operand)
    case not([Literal])
    case every(key: Operand?, value: Operand, domain: Operand, body: [Literal])
    /// Literals evaluated with `with` replacements in force.
    case with([WithBinding], [Literal])
    case print([Operand])

    static func call(_ target: CallTarget, _ arguments: [Operand], output: Operand?, name: String) -> Step {
        .call(Call(target: target, arguments: arguments, output: output, name: name))
    }
}

/// What a call invokes.
enum CallTarget: Sendable {
    case builtin(Builtin)
    /// A user function: its rule-tree node.
    case function(Int)
    /// `==`, `!=`, `<`, `<=`, `>`, `>=` evaluated natively (they are OPA's `equal neq lt lte gt gte`).
    case compare(Comparison)
    /// `x in xs` (`internal.member_2`) and `k, v in xs` (`internal.member_3`).
    case member
    case memberWithKey
}

enum Comparison: Sendable {
    case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual

    init?(builtinName: String) {
        switch builtinName {
        case "equal": self = .equal
        case "neq": self = .notEqual
        case "lt": self = .less
        case "lte": self = .lessOrEqual
        case "gt": self = .greater
        case "gte": self = .greaterOrEqual
        default: return nil
        }
    }

    func holds(_ a: Value, _ b: Value) -> Bool {
        switch self {
        case .equal: return a == b
        case .notEqual: return a != b
        case .less: return Value.compare(a, b) < 0
        case .lessOrEqual: return Value.compare(a, b) <= 0
        case .greater: return Value.compare(a, b) > 0
        case .greaterOrEqual: return Value.compare(a, b) >= 0
        }
    }
}

/// A function a `with` can replace.
enum FunctionKey: Sendable, Hashable {
    case builtin(String)
    case node(Int)
}

/// `with target as value`.
struct WithBinding: Sendable {
    enum Target: Sendable {
        /// `input` or a path inside it.
        case input([Value])
        /// A path inside `data`.
        case data([Value])
        case function(FunctionKey)
    }

    enum Replacement: Sendable {
        case value(Operand)
        case function(CallTarget)
    }

    var target: Target
    var replacement: Replacement
}

// MARK: - Rules

/// One definition of a rule or function with its `else` chain; its variables live in one frame.
final class CompiledRule: Sendable {
    /// The main body and the `else` clauses, in order: the first clause with a solution gives the value.
    final class Clause: Sendable {
        let body: [Literal]
        /// The value (complete rules, functions, object members) or the member added (`contains`).
        let value: Operand
        let location: Location
        /// Whether the value has one value once the body is solved (see `Planner`).
        let valueIsDirect: Bool
        /// Whether the body has at most one solution, all its literals being direct, and the value is direct:
        /// the clause then runs as a straight line of steps.
        let isStraight: Bool

        init(body: [Literal], value: Operand, location: Location, valueIsDirect: Bool = false) {
            self.body = body
            self.value = value
            self.location = location
            self.valueIsDirect = valueIsDirect
            isStraight = valueIsDirect && body.allSatisfy { $0.direct?.hasOneSolution ?? false }
        }
    }

    let location: Location
    let frameSize: Int
    /// A function's parameters, unified with the operands of each call.
    let parameters: [Operand]
    /// The keys below the rule's node where it puts its value (`p[k] := v`, `a.b[x].c := v`); empty for
    /// complete rules and functions.
    let keys: [Operand]
    /// Whether the value is added to a set (`contains`) rather than stored.
    let addsToSet: Bool
    let clauses: [Clause]
    /// The only clause, when the rule has one and it is straight (see `Clause.isStraight`) and no keys.
    let straightClause: Clause?

    init(
        location: Location, frameSize: Int, parameters: [Operand], keys: [Operand], addsToSet: Bool,
        clauses: [Clause]
    ) {
        self.location = location
        self.frameSize = frameSize
        self.parameters = parameters
        self.keys = keys
        self.addsToSet = addsToSet
        self.clauses = clauses
        straightClause = clauses.count == 1 && clauses[0].isStraight && keys.isEmpty ? clauses[0] : nil
    }
}

/// The definitions at one rule-tree node.
final class RuleGroup: Sendable {
    enum Kind: Sendable {
        /// One value: complete rules (`p := v`, `p if ...`).
        case complete
        /// Values contributed by many solutions: `contains` rules, and rules with variables in their reference.
        case multiValue
        case function(arity: Int)
    }

    let kind: Kind
    let rules: [CompiledRule]
    /// The `default` definition: its value is used when no rule gives one.
    let defaultRule: CompiledRule?
    /// Whether every rule gives the same constant value, so evaluation can stop at the first solution.
    let stopsAtFirstValue: Bool
    /// Selects the rules worth evaluating for an input; nil evaluates every rule.
    let index: RuleIndex?
    /// The value of a complete rule that is a constant (`services := {...}`), known at compile time.
    let constantValue: Value?

    init(kind: Kind, rules: [CompiledRule], defaultRule: CompiledRule?, stopsAtFirstValue: Bool, index: RuleIndex?) {
        self.kind = kind
        self.rules = rules
        self.defaultRule = defaultRule
        self.stopsAtFirstValue = stopsAtFirstValue
        self.index = index
        if case .complete = kind, rules.count == 1, let rule = rules.first, rule.parameters.isEmpty, rule.keys.isEmpty,
            rule.clauses.count == 1, rule.clauses[0].body.isEmpty, case .constant(let v) = rule.clauses[0].value
        {
            constantValue = v
        } else {
            constantValue = nil
        }
    }

    var isFunction: Bool {
        if case .function = kind { return true }
        return false
    }
}

/// A node of the document tree: a package, or a path rules define.
final class RuleNode: Sendable {
    let id: Int
    /// The path from the root of `data`.
    let path: [Value]
    let children: [Value: Int]
    /// The children's keys in Rego's sort order, for iteration.
    let childKeys: [Value]
    /// The base document found at this path, if any.
    let baseData: Value?
    let group: RuleGroup?

    init(id: Int, path: [Value], children: [Value: Int], baseData: Value?, group: RuleGroup?) {
        self.id = id
        self.path = path
        self.children = children
        self.childKeys = children.keys.sorted()
        self.baseData = baseData
        self.group = group
    }

    /// `data.a.b`, as OPA names rules in messages.
    var name: String { RuleNode.name(of: path) }

    static func name(of path: [Value]) -> String {
        var out = "data"
        for key in path {
            if case .string(let s) = key, s.isRegoIdentifier {
                out += "." + s
            } else {
                out += "[" + key.regoText + "]"
            }
        }
        return out
    }
}

extension String {
    /// Whether the string can be written after a dot in a reference.
    var isRegoIdentifier: Bool {
        guard let first = utf8.first, first == UInt8(ascii: "_") || (first | 0x20 >= UInt8(ascii: "a") && first | 0x20 <= UInt8(ascii: "z")) else {
            return false
        }
        return utf8.allSatisfy { b in
            b == UInt8(ascii: "_") || (b | 0x20 >= UInt8(ascii: "a") && b | 0x20 <= UInt8(ascii: "z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
        } && !keywords.contains(self)
    }
}
