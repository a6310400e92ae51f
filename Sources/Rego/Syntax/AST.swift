import PolicyCore

/// A Rego term: a scalar, a variable, a reference, a composite, a comprehension or a call, with where it was
/// written.
public struct Term: Sendable {
    public indirect enum Kind: Sendable {
        case null
        case bool(Bool)
        case number(Number)
        case string(String)
        case variable(String)
        /// `head.a[b]`: the head (a variable, or any term such as a call or a literal) and the path after it.
        /// Dotted names are string terms in the path.
        case ref(head: Term, path: [Term])
        case array([Term])
        case object([(key: Term, value: Term)])
        case set([Term])
        case arrayComprehension(head: Term, body: Body)
        case setComprehension(head: Term, body: Body)
        case objectComprehension(key: Term, value: Term, body: Body)
        /// `f(a, b)`: the function named by a variable or a reference, and the operands.
        case call(function: Term, arguments: [Term])
    }

    public var kind: Kind
    public var location: Location

    public init(_ kind: Kind, _ location: Location) {
        self.kind = kind
        self.location = location
    }

    public var variableName: String? {
        if case .variable(let name) = kind { return name }
        return nil
    }

    /// Whether the term is a scalar or a composite made only of ground terms (no variables, references,
    /// comprehensions or calls).
    public var isGround: Bool {
        switch kind {
        case .null, .bool, .number, .string: return true
        case .variable, .ref, .arrayComprehension, .setComprehension, .objectComprehension, .call: return false
        case .array(let items), .set(let items): return items.allSatisfy(\.isGround)
        case .object(let members): return members.allSatisfy { $0.key.isGround && $0.value.isGround }
        }
    }

    /// The value of a ground term.
    public var groundValue: Value? {
        switch kind {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .number(let n): return .number(n)
        case .string(let s): return .string(s)
        case .array(let items):
            var out: [Value] = []
            out.reserveCapacity(items.count)
            for item in items {
                guard let v = item.groundValue else { return nil }
                out.append(v)
            }
            return .array(out)
        case .set(let items):
            var out = Set<Value>()
            for item in items {
                guard let v = item.groundValue else { return nil }
                out.insert(v)
            }
            return .set(out)
        case .object(let members):
            var out: [Value: Value] = [:]
            for member in members {
                guard let k = member.key.groundValue, let v = member.value.groundValue else { return nil }
                out[k] = v
            }
            return .object(out)
        default:
            return nil
        }
    }

    /// The dotted name of a call's function or a plain reference of names (`json.marshal`, `data.a.f`), if the
    /// term is one.
    public var dottedName: String? {
        switch kind {
        case .variable(let name): return name
        case .ref(let head, let path):
            guard var name = head.variableName else { return nil }
            for part in path {
                guard case .string(let s) = part.kind else { return nil }
                name += "." + s
            }
            return name
        default: return nil
        }
    }
}

/// A query or rule body: expressions that must all hold.
public typealias Body = [Expr]

/// One expression of a body, possibly negated and with `with` modifiers.
public struct Expr: Sendable {
    public enum Kind: Sendable {
        /// A term that must be defined and not false.
        case term(Term)
        /// An operator or function call: `x = y` is `eq`, `x := y` is `assign`, `x == y` is `equal`,
        /// `x in xs` is `internal.member_2`, `f(x)` names `f`.
        case call(function: Term, arguments: [Term])
        /// `some x, y`.
        case someDeclaration([Term])
        /// `some x in xs` and `some k, v in xs`.
        case someIn(key: Term?, value: Term, domain: Term)
        /// `every x in xs { ... }` and `every k, v in xs { ... }`.
        case every(key: Term?, value: Term, domain: Term, body: Body)
    }

    public var kind: Kind
    public var negated: Bool
    public var withModifiers: [WithModifier]
    public var location: Location

    public init(_ kind: Kind, negated: Bool = false, with: [WithModifier] = [], location: Location) {
        self.kind = kind
        self.negated = negated
        self.withModifiers = with
        self.location = location
    }
}

/// `with target as value`.
public struct WithModifier: Sendable {
    public var target: Term
    public var value: Term
    public var location: Location
}

/// One rule (or function) definition, with its `else` chain.
public struct Rule: Sendable {
    public var isDefault: Bool
    public var head: RuleHead
    /// The body; a rule written without one has the body `true`.
    public var body: Body
    public var elseClauses: [ElseClause]
    public var location: Location
    /// Whether the body was written (`p := 1` has none).
    public var hasBody: Bool
}

public struct RuleHead: Sendable {
    /// The rule's name and path inside the package: `p`, `a.b[x]`.
    public var reference: [Term]
    /// A function's parameters.
    public var arguments: [Term]?
    /// The member a `contains` rule adds.
    public var key: Term?
    /// The value; nil means `true` (or no value for `contains` rules).
    public var value: Term?
    /// Whether the value was written with `:=`.
    public var assigns: Bool
    public var location: Location

    public var isFunction: Bool { arguments != nil }
    public var isContains: Bool { key != nil }

    /// The rule's name: the first part of its reference.
    public var name: String { reference.first?.variableName ?? "" }
}

/// `else := value if { body }`.
public struct ElseClause: Sendable {
    public var value: Term?
    public var body: Body
    public var location: Location
}

/// `import data.x.y as z`, `import input.a`, `import rego.v1`, `import future.keywords.in`.
public struct Import: Sendable {
    public var path: Term
    public var alias: String?
    public var location: Location

    /// The name the import binds in the module: the alias, or the last part of the path.
    public var boundName: String? {
        if let alias { return alias }
        switch path.kind {
        case .variable(let name): return name
        case .ref(_, let parts):
            if case .string(let s)? = parts.last?.kind { return s }
            return nil
        default: return nil
        }
    }
}

/// One parsed `.rego` file.
public struct Module: Sendable {
    public var file: String
    public var text: String
    /// The package path without `data` (`package envoy.authz` is `["envoy", "authz"]`).
    public var package: [String]
    public var packageLocation: Location
    public var imports: [Import]
    public var rules: [Rule]
}
