import PolicyCore

/// `array.concat array.slice array.reverse`.
extension Builtins {
    static let arrays: [Builtin] = [
        Builtin("array.concat", arity: 2, signature: .parse("(x: array[any], y: array[any]) -> z: array[any]")) {
            operands, _ throws(BuiltinError) in
            let a = try array(operands, 0)
            let b = try array(operands, 1)
            return .array(a + b)
        },
        Builtin(
            "array.slice", arity: 3,
            signature: .parse("(arr: array[any], start: number, stop: number) -> slice: array[any]")
        ) { operands, _ throws(BuiltinError) in
            let a = try array(operands, 0)
            // Out-of-range bounds are clamped; a start past the stop gives an empty array.
            let start = max(0, try integer(operands, 1))
            let stop = min(a.count, try integer(operands, 2))
            guard start < stop else { return .array([]) }
            return .array(Array(a[start..<stop]))
        },
        Builtin("array.reverse", arity: 1, signature: .parse("(arr: array[any]) -> rev: array[any]")) {
            operands, _ throws(BuiltinError) in
            .array(try array(operands, 0).reversed())
        },
    ]
}
