import PolicyCore

/// `==`, `!=`, `<`, `<=`, `>`, `>=` and unification's `eq`: defined for every pair of values, in OPA's total
/// order (`null < boolean < number < string < array < object < set`); numbers compare by value, so `1 == 1.0`.
extension Builtins {
    static let comparison: [Builtin] = [
        Builtin("eq", arity: 2, signature: .parse("(any, any)")) { operands, _ throws(BuiltinError) in
            .bool(operands[0] == operands[1])
        },
        Builtin("equal", arity: 2, signature: .parse("(x: any, y: any) -> result: boolean")) { operands, _ throws(BuiltinError) in
            .bool(operands[0] == operands[1])
        },
        Builtin("neq", arity: 2, signature: .parse("(x: any, y: any) -> result: boolean")) { operands, _ throws(BuiltinError) in
            .bool(operands[0] != operands[1])
        },
        Builtin("lt", arity: 2, signature: .parse("(x: any, y: any) -> result: boolean")) { operands, _ throws(BuiltinError) in
            .bool(Value.compare(operands[0], operands[1]) < 0)
        },
        Builtin("lte", arity: 2, signature: .parse("(x: any, y: any) -> result: boolean")) { operands, _ throws(BuiltinError) in
            .bool(Value.compare(operands[0], operands[1]) <= 0)
        },
        Builtin("gt", arity: 2, signature: .parse("(x: any, y: any) -> result: boolean")) { operands, _ throws(BuiltinError) in
            .bool(Value.compare(operands[0], operands[1]) > 0)
        },
        Builtin("gte", arity: 2, signature: .parse("(x: any, y: any) -> result: boolean")) { operands, _ throws(BuiltinError) in
            .bool(Value.compare(operands[0], operands[1]) >= 0)
        },
    ]
}
