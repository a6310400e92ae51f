import PolicyCore

/// `is_string is_number is_boolean is_array is_object is_set is_null type_name`. The `is_*` builtins answer
/// `false` for other types, which makes a bare call like `is_string(x)` undefined, as in OPA.
extension Builtins {
    static let types: [Builtin] = [
        typeTest("is_string") { if case .string = $0 { true } else { false } },
        typeTest("is_number") { if case .number = $0 { true } else { false } },
        typeTest("is_boolean") { if case .bool = $0 { true } else { false } },
        typeTest("is_array") { if case .array = $0 { true } else { false } },
        typeTest("is_object") { if case .object = $0 { true } else { false } },
        typeTest("is_set") { if case .set = $0 { true } else { false } },
        typeTest("is_null") { $0.isNull },
        Builtin("type_name", arity: 1, signature: .parse("(x: any) -> type: string")) { operands, _ in
            .string(operands[0].typeName)
        },
    ]

    private static func typeTest(_ name: String, _ test: @escaping @Sendable (Value) -> Bool) -> Builtin {
        Builtin(name, arity: 1, signature: .parse("(x: any) -> result: boolean")) { operands, _ in
            .bool(test(operands[0]))
        }
    }
}
