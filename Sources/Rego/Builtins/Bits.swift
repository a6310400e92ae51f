import PolicyCore

/// `bits.or bits.and bits.xor bits.negate bits.lsh bits.rsh` on integers of any size, in two's complement.
extension Builtins {
    static let bits: [Builtin] = [
        bitwise("bits.or", |),
        bitwise("bits.and", &),
        bitwise("bits.xor", ^),
        Builtin("bits.negate", arity: 1, signature: .parse("(x: number) -> z: number")) {
            operands, _ throws(BuiltinError) in
            .number(Number(-(try bigInteger(operands, 0)) - BigInteger(1)))
        },
        Builtin("bits.lsh", arity: 2, signature: .parse("(x: number, s: number) -> z: number")) {
            operands, _ throws(BuiltinError) in
            let x = try bigInteger(operands, 0)
            let s = try shiftAmount(operands, 1)
            return .number(try RegoArithmetic.integerResult(x << s))
        },
        Builtin("bits.rsh", arity: 2, signature: .parse("(x: number, s: number) -> z: number")) {
            operands, _ throws(BuiltinError) in
            let x = try bigInteger(operands, 0)
            let s = try shiftAmount(operands, 1)
            // Arithmetic shift: negative values round toward negative infinity.
            if x.isNegative { return .number(Number(-((-x - BigInteger(1)) >> s) - BigInteger(1))) }
            return .number(Number(x >> s))
        },
    ]

    private static func bitwise(_ name: String, _ op: @escaping @Sendable (UInt64, UInt64) -> UInt64) -> Builtin {
        Builtin(name, arity: 2, signature: .parse("(x: number, y: number) -> z: number")) {
            operands, _ throws(BuiltinError) in
            let x = try bigInteger(operands, 0)
            let y = try bigInteger(operands, 1)
            let width = max(x.limbs.count, y.limbs.count) + 1
            let a = twosComplement(x, width), b = twosComplement(y, width)
            return .number(Number(fromTwosComplement(zip(a, b).map { op($0, $1) })))
        }
    }

    private static func shiftAmount(_ operands: [Value], _ index: Int) throws(BuiltinError) -> Int {
        let s = try bigInteger(operands, index)
        guard !s.isNegative else {
            throw BuiltinError(.typeError, "operand 2 must be an unsigned integer number but got a negative integer")
        }
        guard let shift = s.int64Value, shift <= Int64(RegoArithmetic.maximumIntegerDigits * 4) else {
            throw RegoArithmetic.tooLarge
        }
        return Int(shift)
    }

    /// `width` limbs of the two's complement form.
    private static func twosComplement(_ x: BigInteger, _ width: Int) -> [UInt64] {
        var limbs = x.limbs + [UInt64](repeating: 0, count: width - x.limbs.count)
        guard x.isNegative else { return limbs }
        // -m is ~(m - 1).
        limbs = (x.magnitude - BigInteger(1)).limbs
        limbs += [UInt64](repeating: 0, count: width - limbs.count)
        return limbs.map { ~$0 }
    }

    private static func fromTwosComplement(_ limbs: [UInt64]) -> BigInteger {
        guard let top = limbs.last, top >> 63 == 1 else { return BigInteger(negative: false, limbs: limbs) }
        let magnitude = BigInteger(negative: false, limbs: limbs.map { ~$0 }) + BigInteger(1)
        return -magnitude
    }
}
