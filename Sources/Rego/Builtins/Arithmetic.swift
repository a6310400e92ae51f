import PolicyCore

/// `+ - * / %` (OPA's `plus minus mul div rem`), unary minus (the compiler turns `-x` into `minus(0, x)` as
/// OPA does), `abs round ceil floor`, and set difference, which shares `minus` with numbers.
extension Builtins {
    static let arithmetic: [Builtin] = [
        Builtin("plus", arity: 2, signature: .parse("(x: number, y: number) -> z: number")) { operands, _ throws(BuiltinError) in
            .number(try RegoArithmetic.add(try number(operands, 0), try number(operands, 1)))
        },
        Builtin(
            "minus", arity: 2,
            signature: .parse("(x: any<number, set[any]>, y: any<number, set[any]>) -> z: any<number, set[any]>")
        ) { operands, _ throws(BuiltinError) in
            switch (operands[0], operands[1]) {
            case (.number(let a), .number(let b)):
                return .number(try RegoArithmetic.subtract(a, b))
            case (.set(let a), .set(let b)):
                return .set(a.subtracting(b))
            case (.number, _):
                throw .operand(2, mustBe: "number", got: operands[1])
            case (.set, _):
                throw .operand(2, mustBe: "set", got: operands[1])
            default:
                throw oneOf(0, ["number", "set"], got: operands[0])
            }
        },
        Builtin("mul", arity: 2, signature: .parse("(x: number, y: number) -> z: number")) { operands, _ throws(BuiltinError) in
            .number(try RegoArithmetic.multiply(try number(operands, 0), try number(operands, 1)))
        },
        Builtin("div", arity: 2, signature: .parse("(x: number, y: number) -> z: number")) { operands, _ throws(BuiltinError) in
            .number(try RegoArithmetic.divide(try number(operands, 0), try number(operands, 1)))
        },
        Builtin("rem", arity: 2, signature: .parse("(x: number, y: number) -> z: number")) { operands, _ throws(BuiltinError) in
            .number(try RegoArithmetic.remainder(try number(operands, 0), try number(operands, 1)))
        },
        Builtin("abs", arity: 1, signature: .parse("(x: number) -> y: number")) { operands, _ throws(BuiltinError) in
            .number(try RegoArithmetic.absolute(try number(operands, 0)))
        },
        Builtin("round", arity: 1, signature: .parse("(x: number) -> y: number")) { operands, _ throws(BuiltinError) in
            .number(try RegoArithmetic.round(try number(operands, 0)))
        },
        Builtin("ceil", arity: 1, signature: .parse("(x: number) -> y: number")) { operands, _ throws(BuiltinError) in
            .number(try RegoArithmetic.ceil(try number(operands, 0)))
        },
        Builtin("floor", arity: 1, signature: .parse("(x: number) -> y: number")) { operands, _ throws(BuiltinError) in
            .number(try RegoArithmetic.floor(try number(operands, 0)))
        },
    ]
}
