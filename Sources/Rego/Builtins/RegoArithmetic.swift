import PolicyCore

/// Number arithmetic with OPA's results. OPA runs each operation in the narrowest form that holds the operands:
/// integers written as plain digits within 32 bits are computed directly; integral values of any size (`1.0`,
/// `1e400`, 30-digit integers) exactly, where the operation allows it (`+ - * %`); everything else in binary
/// floating point with 64-bit mantissas, printed as the shortest decimal that reads back the same. The result's
/// text is what the next operation reads, as in OPA, where numbers are text between operations.
enum RegoArithmetic {
    /// Integers beyond this many digits, and floating-point values beyond this many bits of binary exponent,
    /// are refused: the work grows with them and no policy needs them.
    static let maximumIntegerDigits = 100_000
    static let maximumBinaryExponent = 100_000

    static let tooLarge = BuiltinError(.builtinError, "number too large")

    // MARK: Binary operations

    static func add(_ a: Number, _ b: Number) throws(BuiltinError) -> Number {
        if let x = small(a), let y = small(b) { return Number(x + y) }
        if let x = try exactInteger(a), let y = try exactInteger(b) { return try integerResult(x + y) }
        return try floatResult(try float(a).adding(try float(b)))
    }

    static func subtract(_ a: Number, _ b: Number) throws(BuiltinError) -> Number {
        if let x = small(a), let y = small(b) { return Number(x - y) }
        if let x = try exactInteger(a), let y = try exactInteger(b) { return try integerResult(x - y) }
        return try floatResult(try float(a).subtracting(try float(b)))
    }

    static func multiply(_ a: Number, _ b: Number) throws(BuiltinError) -> Number {
        if let x = small(a), let y = small(b) { return Number(x * y) }
        if let x = try exactInteger(a), let y = try exactInteger(b) { return try integerResult(x * y) }
        return try floatResult(try float(a).multiplied(by: try float(b)))
    }

    /// Division is exact only for small integers that divide evenly (and a non-zero dividend: `0 / -5` is the
    /// floating-point `-0`); every other quotient is floating point.
    static func divide(_ a: Number, _ b: Number) throws(BuiltinError) -> Number {
        if let x = small(a), let y = small(b) {
            guard y != 0 else { throw divideByZero }
            if x != 0 && x % y == 0 { return Number(x / y) }
        }
        let divisor = try float(b)
        guard !divisor.isZero else { throw divideByZero }
        return try floatResult(try float(a).divided(by: divisor))
    }

    /// The remainder has the dividend's sign; it exists only for integers.
    static func remainder(_ a: Number, _ b: Number) throws(BuiltinError) -> Number {
        if let x = small(a), let y = small(b) {
            guard y != 0 else { throw moduloByZero }
            return Number(x % y)
        }
        guard let x = try exactInteger(a), let y = try exactInteger(b) else {
            throw BuiltinError(.builtinError, "modulo on floating-point number")
        }
        guard !y.isZero else { throw moduloByZero }
        return try integerResult(x.quotientAndRemainder(dividingBy: y).remainder)
    }

    static let divideByZero = BuiltinError(.builtinError, "divide by zero")
    static let moduloByZero = BuiltinError(.builtinError, "modulo by zero")

    // MARK: Unary operations: small integers directly, everything else in floating point

    static func absolute(_ a: Number) throws(BuiltinError) -> Number {
        if let x = small(a) { return Number(Swift.abs(x)) }
        return try floatResult(try float(a).absolute)
    }

    /// Half away from zero: add or subtract one half, then truncate.
    static func round(_ a: Number) throws(BuiltinError) -> Number {
        if let x = small(a) { return Number(x) }
        let f = try float(a)
        let half = BinaryFloat(0.5)
        let shifted = f.negative ? f.subtracting(half) : f.adding(half)
        return try integerResult(shifted.truncated)
    }

    /// OPA truncates toward zero and adds one unless the value was already whole or the truncated value's sign
    /// bit is set; a truncated zero has no sign bit, so `ceil(-0.5)` is `1`, as OPA answers.
    static func ceil(_ a: Number) throws(BuiltinError) -> Number {
        if let x = small(a) { return Number(x) }
        let f = try float(a)
        let whole = f.truncated
        let wholeFloat = BinaryFloat(integer: whole)
        if whole.isNegative || compare(f, wholeFloat) == 0 { return try integerResult(whole) }
        return try floatResult(wholeFloat.adding(BinaryFloat(1.0)))
    }

    /// The mirror of `ceil`: `floor(-0.5)` is `0` in OPA.
    static func floor(_ a: Number) throws(BuiltinError) -> Number {
        if let x = small(a) { return Number(x) }
        let f = try float(a)
        let whole = f.truncated
        let wholeFloat = BinaryFloat(integer: whole)
        if !whole.isNegative || compare(f, wholeFloat) == 0 { return try integerResult(whole) }
        return try floatResult(wholeFloat.subtracting(BinaryFloat(1.0)))
    }

    // MARK: Representations

    /// The value as a plain-digits integer within the 32-bit window, where OPA computes directly.
    @inline(__always)
    static func small(_ n: Number) -> Int64? {
        guard let i = n.int64Value, i >= -(1 << 31), i < (1 << 31), n.isIntegerLiteral else { return nil }
        return i
    }

    /// The exact integer, when the value is integral.
    static func exactInteger(_ n: Number) throws(BuiltinError) -> BigInteger? {
        guard n.isInteger else { return nil }
        guard n.integerDigitCount <= maximumIntegerDigits else { throw tooLarge }
        return n.integerValue
    }

    /// The value read as OPA reads number text into a float.
    static func float(_ n: Number) throws(BuiltinError) -> BinaryFloat {
        // Plain 64-bit integers convert exactly; `-0` goes through the text, which keeps its sign.
        if let i = n.int64Value, n.isIntegerLiteral, i != 0 || !n.text.hasPrefix("-") {
            return BinaryFloat(integer: BigInteger(i)).rounded(to: BinaryFloat.textPrecision)
        }
        let d = n.decimal
        if !d.coefficient.isZero {
            // Bound the binary exponent before computing: about 3.32 bits per decimal digit.
            let magnitude = d.exponent + n.text.utf8.count
            guard abs(magnitude) * 10 / 3 <= maximumBinaryExponent else { throw tooLarge }
        }
        guard let f = BinaryFloat.parse(Substring(n.text)) else { throw tooLarge }
        return f
    }

    static func integerResult(_ i: BigInteger) throws(BuiltinError) -> Number {
        guard i.bitWidth <= maximumIntegerDigits * 10 / 3 else { throw tooLarge }
        return Number(i)
    }

    static func floatResult(_ f: BinaryFloat) throws(BuiltinError) -> Number {
        if !f.isZero {
            let top = f.exponent + f.mantissa.bitWidth
            guard abs(top) <= maximumBinaryExponent, abs(f.exponent) <= maximumBinaryExponent + f.precision else {
                throw tooLarge
            }
        }
        return Number(literal: Substring(f.numberText))!
    }

    /// Compares two floats by value.
    static func compare(_ a: BinaryFloat, _ b: BinaryFloat) -> Int {
        let d = a.subtracting(b, precision: Int.max / 4)
        return d.isZero ? 0 : (d.negative ? -1 : 1)
    }
}
