import PolicyCore

/// `count sum product max min sort`.
extension Builtins {
    static let aggregates: [Builtin] = [
        Builtin(
            "count", arity: 1,
            signature: .parse("(collection: any<string, array[any], object[any: any], set[any]>) -> n: number")
        ) { operands, _ throws(BuiltinError) in
            switch operands[0] {
            case .array(let a): return .int(a.count)
            case .object(let o): return .int(o.count)
            case .set(let s): return .int(s.count)
            // Characters are Unicode code points, as OPA counts runes.
            case .string(let s): return .int(s.unicodeScalars.count)
            default: throw oneOf(0, ["array", "object", "set", "string"], got: operands[0])
            }
        },
        Builtin("sum", arity: 1, signature: .parse("(collection: any<array[number], set[number]>) -> n: number")) {
            operands, _ throws(BuiltinError) in
            let (numbers, _) = try numbersOf(operands, 0)
            if let exact = try exactFold(numbers, BigInteger(0), +) { return .number(exact) }
            // The float accumulator takes the precision of the numbers it adds: 64 bits.
            var total = BinaryFloat(integer: BigInteger(0))
            for n in numbers { total = total.adding(try RegoArithmetic.float(n), precision: BinaryFloat.textPrecision) }
            return .number(try RegoArithmetic.floatResult(total))
        },
        Builtin("product", arity: 1, signature: .parse("(collection: any<array[number], set[number]>) -> n: number")) {
            operands, _ throws(BuiltinError) in
            let (numbers, _) = try numbersOf(operands, 0)
            if let exact = try exactFold(numbers, BigInteger(1), *) { return .number(exact) }
            // OPA's float product starts from a double constant 1, so it keeps a double's 53 bits throughout.
            var total = BinaryFloat(1.0)
            for n in numbers { total = total.multiplied(by: try RegoArithmetic.float(n), precision: 53) }
            return .number(try RegoArithmetic.floatResult(total))
        },
        Builtin("max", arity: 1, signature: .parse("(collection: any<array[any], set[any]>) -> n: any")) {
            operands, _ throws(BuiltinError) in
            let elements = try orderedElements(operands, 0)
            guard var best = elements.first else { return nil }
            // Of equal maxima (`1` and `1.0`), the last one wins, as in OPA.
            for e in elements.dropFirst() where Value.compare(best, e) <= 0 { best = e }
            return best
        },
        Builtin("min", arity: 1, signature: .parse("(collection: any<array[any], set[any]>) -> n: any")) {
            operands, _ throws(BuiltinError) in
            let elements = try orderedElements(operands, 0)
            guard var best = elements.first else { return nil }
            for e in elements.dropFirst() where Value.compare(best, e) >= 0 { best = e }
            return best
        },
        Builtin("sort", arity: 1, signature: .parse("(collection: any<array[any], set[any]>) -> n: array[any]")) {
            operands, _ throws(BuiltinError) in
            switch operands[0] {
            case .array(let a): return .array(stableSorted(a))
            case .set(let s): return .array(s.sorted())
            default: throw oneOf(0, ["set", "array"], got: operands[0])
            }
        },
    ]

    /// The elements of an array (in order) or a set (sorted), or OPA's `one of {set, array}` error.
    static func orderedElements(_ operands: [Value], _ index: Int) throws(BuiltinError) -> [Value] {
        switch operands[index] {
        case .array(let a): return a
        case .set(let s): return s.sorted()
        default: throw oneOf(index, ["set", "array"], got: operands[index])
        }
    }

    /// The numbers of an array or set operand; the second value is the operand for error messages.
    private static func numbersOf(_ operands: [Value], _ index: Int) throws(BuiltinError) -> ([Number], Value) {
        let elements = try orderedElements(operands, index)
        var numbers: [Number] = []
        numbers.reserveCapacity(elements.count)
        for e in elements {
            guard case .number(let n) = e else {
                throw Builtins.element(index, of: operands[index], mustBe: "number", got: e)
            }
            numbers.append(n)
        }
        return (numbers, operands[index])
    }

    /// Folds exactly when every number is an integer, with a 64-bit fast path.
    private static func exactFold(
        _ numbers: [Number], _ start: BigInteger, _ combine: (BigInteger, BigInteger) -> BigInteger
    ) throws(BuiltinError) -> Number? {
        var total = start
        for n in numbers {
            guard let i = try RegoArithmetic.exactInteger(n) else { return nil }
            total = combine(total, i)
            guard total.bitWidth <= RegoArithmetic.maximumIntegerDigits * 4 else { throw RegoArithmetic.tooLarge }
        }
        return try RegoArithmetic.integerResult(total)
    }

    /// Sorted in OPA's order, keeping equal elements (`1`, `1.0`) in their original order.
    static func stableSorted(_ values: [Value]) -> [Value] {
        values.enumerated().sorted { a, b in
            let c = Value.compare(a.element, b.element)
            return c != 0 ? c < 0 : a.offset < b.offset
        }.map(\.element)
    }
}
