import PolicyCore

/// A builtin function as the evaluator calls it: its Rego name, its number of operands, and its
/// implementation. Families of builtins are declared as tables, one file per family, and assembled in
/// `Builtins.all`.
public struct Builtin: Sendable {
    /// The name as written in Rego, dots included (`strings.replace_n`).
    public let name: String
    /// The number of operands (the output of a builtin called as `f(a, b, out)` is not counted).
    public let arity: Int
    /// Whether the result can change between calls with equal operands (`time.now_ns`, `rand.intn`): such
    /// calls are never folded at compile time.
    public let isNondeterministic: Bool
    /// The declared operand and result types, as OPA declares them, for the compiler's type checks and its
    /// `rego_type_error` messages (`plus: invalid argument(s)` with `have:` and `want:` lines).
    public let signature: BuiltinSignature?
    /// Returns the result, or nil when the call is undefined; throws for operand and runtime errors.
    public let implementation: @Sendable (_ operands: [Value], _ context: BuiltinContext) throws(BuiltinError) -> Value?

    public init(
        _ name: String,
        arity: Int,
        nondeterministic: Bool = false,
        signature: BuiltinSignature? = nil,
        _ implementation: @escaping @Sendable (_ operands: [Value], _ context: BuiltinContext) throws(BuiltinError) -> Value?
    ) {
        self.name = name
        self.arity = arity
        self.isNondeterministic = nondeterministic
        self.signature = signature
        self.implementation = implementation
    }
}

/// What a builtin may know about the evaluation calling it.
public struct BuiltinContext: Sendable {
    /// The time of the query, fixed for its whole evaluation (OPA's `time.now_ns` is constant within a query).
    public var nowNanoseconds: Int64

    public init(nowNanoseconds: Int64) {
        self.nowNanoseconds = nowNanoseconds
    }
}

/// A builtin that could not produce a value. `typeError` is OPA's `eval_type_error` (an operand of the wrong
/// type); `builtinError` is `eval_builtin_error` (a well-typed operand the builtin cannot use).
///
/// OPA treats both kinds alike at run time: the failing call is undefined and evaluation goes on. Outside strict
/// mode the error is then forgotten; with `--strict-builtin-errors` the first error raised (in evaluation order)
/// becomes the query's error once evaluation ends, even if the query had results. The evaluator prefixes the
/// message with the builtin's name and the call's location: `t.rego:2: eval_builtin_error: div: divide by zero`.
public struct BuiltinError: Error, Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case typeError = "eval_type_error"
        case builtinError = "eval_builtin_error"
    }

    public var kind: Kind
    /// The message without the builtin's name (the evaluator prefixes it, as OPA does).
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// `operand N must be T but got U`, OPA's wording for a wrong operand type.
    public static func operand(_ position: Int, mustBe expected: String, got value: Value) -> BuiltinError {
        BuiltinError(.typeError, "operand \(position) must be \(expected) but got \(value.typeName)")
    }
}
