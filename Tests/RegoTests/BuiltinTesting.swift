import PolicyCore
import Rego
import Testing

/// What a builtin call gave: a value, undefined, or an error of a kind with a message.
enum Outcome: Equatable, Sendable, CustomStringConvertible {
    case value(Value)
    case undefined
    case error(BuiltinError.Kind, String)

    var description: String {
        switch self {
        case .value(let v): "value \(v)"
        case .undefined: "undefined"
        case .error(let kind, let message): "\(kind.rawValue): \(message)"
        }
    }
}

/// A fixed query time for builtins that read the clock: 2024-02-29T12:00:00Z.
let testContext = BuiltinContext(nowNanoseconds: 1_709_208_000_000_000_000)

/// Calls the builtin `name` the way the evaluator does.
func call(_ name: String, _ operands: Value...) -> Outcome {
    callWith(name, operands)
}

func callWith(_ name: String, _ operands: [Value]) -> Outcome {
    guard let builtin = Builtins.all[name] else { return .error(.builtinError, "no builtin named \(name)") }
    precondition(builtin.arity == operands.count, "\(name) takes \(builtin.arity) operands")
    do {
        guard let value = try builtin.implementation(operands, testContext) else { return .undefined }
        return .value(value)
    } catch {
        return .error(error.kind, error.message)
    }
}

/// One row of a table-driven builtin test.
struct BuiltinCase: CustomTestStringConvertible, Sendable {
    var name: String
    var operands: [Value]
    var want: Outcome

    init(_ name: String, _ operands: [Value], _ want: Outcome) {
        self.name = name
        self.operands = operands
        self.want = want
    }

    var testDescription: String { "\(name)(\(operands.map(\.description).joined(separator: ", ")))" }
}


/// A number parsed from its JSON text, to write exact expectations.
func num(_ text: String) -> Value {
    .number(Number(literal: Substring(text))!)
}

func typeError(_ message: String) -> Outcome { .error(.typeError, message) }
func builtinError(_ message: String) -> Outcome { .error(.builtinError, message) }
