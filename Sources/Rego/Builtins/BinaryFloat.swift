import PolicyCore

/// A binary floating-point number of a chosen precision, rounded to nearest-even: the arithmetic OPA performs
/// on numbers that are not integers. OPA reads a number's text into a 64-bit mantissa (more than a double's 53,
/// so `0.1 + 0.2` is `0.3`), computes with correctly rounded operations, and prints the shortest decimal that
/// reads back as the same value. Reproducing the same steps gives the same digits.
///
/// The value is `±mantissa × 2^exponent`; `precision` is the number of mantissa bits results are rounded to.
/// Zero keeps its sign, since OPA can print `-0`.
struct BinaryFloat {
    var negative: Bool
    var mantissa: BigInteger
    var exponent: Int
    var precision: Int

    /// The precision OPA reads number text with.
    static let textPrecision = 64

    var isZero: Bool { mantissa.isZero }

    /// Whether the value is an integer.
    var isInteger: Bool {
        isZero || exponent >= 0 || mantissa.trailingZeroBitCount >= -exponent
    }

    /// An exact integer, with the precision it needs (at least 64 bits).
    init(integer: BigInteger) {
        negative = integer.isNegative
        mantissa = integer.magnitude
        exponent = 0
        precision = max(Self.textPrecision, integer.bitWidth)
    }

    /// A double, exactly (53 bits of precision, as for a double constant).
    init(_ value: Double) {
        precision = 53
        negative = value.sign == .minus
        if value == 0 {
            mantissa = BigInteger()
            exponent = 0
            return
        }
        mantissa = BigInteger(value.significandBitPattern | (1 << 52))
        exponent = Int(value.exponent) - 52
    }

    private init(negative: Bool, mantissa: BigInteger, exponent: Int, precision: Int) {
        self.negative = negative
        self.mantissa = mantissa
        self.exponent = exponent
        self.precision = precision
    }

    /// `±mantissa × 2^exponent` rounded to `precision` bits, nearest-even; `sticky` says the true value lies
    /// strictly above `mantissa × 2^exponent` in magnitude (below its next representable neighbour).
    static func rounded(
        negative: Bool, mantissa: BigInteger, exponent: Int, sticky: Bool = false, precision: Int
    ) -> BinaryFloat {
        let width = mantissa.bitWidth
        guard width > precision else {
            // Exact already; a sticky bit cannot matter because the caller always supplies extra bits.
            return BinaryFloat(negative: negative, mantissa: mantissa, exponent: exponent, precision: precision)
        }
        let drop = width - precision
        var kept = mantissa >> drop
        let half = mantissa.bit(drop - 1)
        let below = sticky || mantissa.hasBits(below: drop - 1)
        var newExponent = exponent + drop
        if half && (below || !kept.isEven) {
            kept = kept + BigInteger(1)
            if kept.bitWidth > precision {
                kept = kept >> 1
                newExponent += 1
            }
        }
        return BinaryFloat(negative: negative, mantissa: kept, exponent: newExponent, precision: precision)
    }

    func rounded(to precision: Int) -> BinaryFloat {
        Self.rounded(negative: negative, mantissa: mantissa, exponent: exponent, precision: precision)
    }

    // MARK: Reading decimal text

    /// Reads decimal number text the way OPA does (64 bits unless told otherwise): the digits are taken as an
    /// exact integer, scaled by the power of two of the decimal exponent, then multiplied or divided by the
    /// power of five, itself computed with 64 extra bits. Nil for text that is not a number.
    static func parse(_ text: Substring, precision: Int = textPrecision) -> BinaryFloat? {
        var bytes = text.utf8[...]
        var negative = false
        if bytes.first == UInt8(ascii: "-") {
            negative = true
            bytes = bytes.dropFirst()
        } else if bytes.first == UInt8(ascii: "+") {
            bytes = bytes.dropFirst()
        }
        var digits: [UInt8] = []
        var fractionDigits = 0
        var inFraction = false
        var exponent = 0
        var sawDigit = false
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let b = bytes[index]
            if b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") {
                if !(digits.isEmpty && b == UInt8(ascii: "0")) { digits.append(b) }
                if inFraction { fractionDigits += 1 }
                sawDigit = true
            } else if b == UInt8(ascii: "."), !inFraction {
                inFraction = true
            } else {
                break
            }
            index = bytes.index(after: index)
        }
        guard sawDigit else { return nil }
        if index < bytes.endIndex {
            guard bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") else { return nil }
            guard let e = Int(Substring(bytes[bytes.index(after: index)...])) else { return nil }
            exponent = e
        }
        if digits.isEmpty {
            return BinaryFloat(negative: negative, mantissa: BigInteger(), exponent: 0, precision: precision)
        }
        let coefficient = BigInteger(String(decoding: digits, as: UTF8.self))!
        let (exp5, overflow) = exponent.subtractingReportingOverflow(fractionDigits)
        guard !overflow else { return nil }
        // The value is coefficient × 2^exp5 × 5^exp5.
        if exp5 == 0 {
            return rounded(negative: negative, mantissa: coefficient, exponent: 0, precision: precision)
        }
        let scaled = BinaryFloat(negative: negative, mantissa: coefficient, exponent: exp5, precision: precision)
        let power = powerOfFive(exp5.magnitude, precision: precision + 64)
        return exp5 < 0
            ? scaled.divided(by: power, precision: precision)
            : scaled.multiplied(by: power, precision: precision)
    }

    /// 5^n at the given precision: exact up to 5^27, then by repeated squaring of 5 (at 64 bits more than the
    /// result), multiplying in the squares the exponent's bits select.
    static func powerOfFive(_ n: UInt, precision: Int) -> BinaryFloat {
        let exactLimit: UInt = 27
        var power: UInt64 = 1
        for _ in 0..<min(n, exactLimit) { power *= 5 }
        var result = BinaryFloat(negative: false, mantissa: BigInteger(power), exponent: 0, precision: precision)
        guard n > exactLimit else { return result }
        var remaining = n - exactLimit
        var square = BinaryFloat(negative: false, mantissa: BigInteger(5), exponent: 0, precision: precision + 64)
        while remaining > 0 {
            if remaining & 1 != 0 { result = result.multiplied(by: square, precision: precision) }
            square = square.multiplied(by: square, precision: precision + 64)
            remaining >>= 1
        }
        return result
    }

    // MARK: Arithmetic

    /// The precision of an operation's result: the larger of the operands'.
    private func resultPrecision(_ other: BinaryFloat, _ precision: Int?) -> Int {
        precision ?? max(self.precision, other.precision)
    }

    func adding(_ other: BinaryFloat, precision: Int? = nil) -> BinaryFloat {
        let p = resultPrecision(other, precision)
        if isZero && other.isZero {
            return BinaryFloat(negative: negative && other.negative, mantissa: BigInteger(), exponent: 0, precision: p)
        }
        if isZero { return other.rounded(to: p) }
        if other.isZero { return rounded(to: p) }
        // An operand far below the other's last bit only decides rounding direction: stand in a tiny value for
        // it so the exact sum stays small.
        var a = self, b = other
        if a.topBit < b.topBit { swap(&a, &b) }
        if a.mantissa.bitWidth <= p, b.topBit < a.topBit - p - 2 {
            b = BinaryFloat(negative: b.negative, mantissa: BigInteger(1), exponent: a.topBit - p - 4, precision: b.precision)
        }
        let low = min(a.exponent, b.exponent)
        let x = BigInteger(negative: a.negative, limbs: (a.mantissa << (a.exponent - low)).limbs)
        let y = BigInteger(negative: b.negative, limbs: (b.mantissa << (b.exponent - low)).limbs)
        let sum = x + y
        if sum.isZero { return BinaryFloat(negative: false, mantissa: BigInteger(), exponent: 0, precision: p) }
        return Self.rounded(negative: sum.isNegative, mantissa: sum.magnitude, exponent: low, precision: p)
    }

    func subtracting(_ other: BinaryFloat, precision: Int? = nil) -> BinaryFloat {
        var negated = other
        negated.negative.toggle()
        return adding(negated, precision: precision)
    }

    func multiplied(by other: BinaryFloat, precision: Int? = nil) -> BinaryFloat {
        let p = resultPrecision(other, precision)
        let sign = negative != other.negative
        if isZero || other.isZero { return BinaryFloat(negative: sign, mantissa: BigInteger(), exponent: 0, precision: p) }
        return Self.rounded(
            negative: sign, mantissa: mantissa * other.mantissa, exponent: exponent + other.exponent, precision: p)
    }

    /// The quotient, correctly rounded; the divisor must not be zero.
    func divided(by other: BinaryFloat, precision: Int? = nil) -> BinaryFloat {
        let p = resultPrecision(other, precision)
        let sign = negative != other.negative
        if isZero { return BinaryFloat(negative: sign, mantissa: BigInteger(), exponent: 0, precision: p) }
        // Scale the dividend so the quotient has at least two bits beyond the precision; the remainder is the
        // sticky bit.
        let shift = max(0, p + 2 + other.mantissa.bitWidth - mantissa.bitWidth + 1)
        let (q, r) = (mantissa << shift).quotientAndRemainder(dividingBy: other.mantissa)
        return Self.rounded(
            negative: sign, mantissa: q, exponent: exponent - other.exponent - shift, sticky: !r.isZero, precision: p)
    }

    var absolute: BinaryFloat {
        var copy = self
        copy.negative = false
        return copy
    }

    /// The integer part, truncated toward zero.
    var truncated: BigInteger {
        if isZero { return BigInteger() }
        let magnitude = exponent >= 0 ? mantissa << exponent : mantissa >> -exponent
        return negative ? -magnitude : magnitude
    }

    /// The position of the highest set bit's weight (`2^topBit <= |value| < 2^(topBit+1)`).
    private var topBit: Int { exponent + mantissa.bitWidth - 1 }

    // MARK: Writing decimal text

    /// The exact decimal digits of the value (no leading or trailing zeros) and the point position: the value is
    /// `0.DIGITS × 10^point`. Empty digits for zero.
    func exactDecimal() -> (digits: [UInt8], point: Int) {
        Self.exactDecimal(mantissa: mantissa, exponent: exponent)
    }

    static func exactDecimal(mantissa: BigInteger, exponent: Int) -> (digits: [UInt8], point: Int) {
        if mantissa.isZero { return ([], 0) }
        var text: String
        var point: Int
        if exponent >= 0 {
            text = (mantissa << exponent).description
            point = text.utf8.count
        } else {
            // m / 2^k = m × 5^k / 10^k, after dropping the trailing zero bits k does not need.
            let drop = min(mantissa.trailingZeroBitCount, -exponent)
            let m = mantissa >> drop
            let k = -exponent - drop
            text = (m * BigInteger.power(BigInteger(5), k)).description
            point = text.utf8.count - k
        }
        var digits = Array(text.utf8)
        while let last = digits.last, last == UInt8(ascii: "0") { digits.removeLast() }
        return (digits, point)
    }

    /// The shortest digits that read back as this value at its precision, found by walking the digits of the
    /// value and of the bounds half an ulp below and above it, position by position.
    func shortestDecimal() -> (digits: [UInt8], point: Int) {
        var (digits, point) = exactDecimal()
        if digits.isEmpty { return (digits, point) }
        // A mantissa of precision + 1 bits whose last bit is half an ulp.
        var m = mantissa
        var e = exponent
        let s = m.bitWidth - (precision + 1)
        if s < 0 { m = m << -s } else if s > 0 { m = m >> s }
        e += s
        let lower = Self.exactDecimal(mantissa: m - BigInteger(1), exponent: e).digits
        let upper = Self.exactDecimal(mantissa: m + BigInteger(1), exponent: e).digits
        // The bounds round back to this value only when its mantissa is even.
        let inclusive = !m.bit(1)
        func at(_ ds: [UInt8], _ i: Int) -> UInt8 { i < ds.count ? ds[i] : UInt8(ascii: "0") }
        for i in 0..<digits.count {
            let d = digits[i]
            let l = at(lower, i), u = at(upper, i)
            let okDown = l != d || (inclusive && i + 1 == lower.count)
            let okUp = d != u && (inclusive || d + 1 < u || i + 1 < upper.count)
            if okDown && okUp {
                Self.roundHalfEven(&digits, &point, to: i + 1)
                return (digits, point)
            } else if okDown {
                Self.roundDown(&digits, &point, to: i + 1)
                return (digits, point)
            } else if okUp {
                Self.roundUp(&digits, &point, to: i + 1)
                return (digits, point)
            }
        }
        return (digits, point)
    }

    private static func roundHalfEven(_ digits: inout [UInt8], _ point: inout Int, to n: Int) {
        guard n < digits.count else { return }
        let up: Bool
        if digits[n] == UInt8(ascii: "5") && n + 1 == digits.count {
            up = n > 0 && (digits[n - 1] - UInt8(ascii: "0")) & 1 != 0
        } else {
            up = digits[n] >= UInt8(ascii: "5")
        }
        if up { roundUp(&digits, &point, to: n) } else { roundDown(&digits, &point, to: n) }
    }

    private static func roundDown(_ digits: inout [UInt8], _ point: inout Int, to n: Int) {
        guard n < digits.count else { return }
        digits.removeSubrange(n...)
        while let last = digits.last, last == UInt8(ascii: "0") { digits.removeLast() }
        if digits.isEmpty { point = 0 }
    }

    private static func roundUp(_ digits: inout [UInt8], _ point: inout Int, to n: Int) {
        guard n < digits.count else { return }
        var i = n
        while i > 0 && digits[i - 1] >= UInt8(ascii: "9") { i -= 1 }
        if i == 0 {
            digits = [UInt8(ascii: "1")]
            point += 1
            return
        }
        digits[i - 1] += 1
        digits.removeSubrange(i...)
    }

    /// The text OPA gives a computed number: plain digits for integers, `%g` with the shortest digits
    /// otherwise (exponent notation below 1e-4 or from 1e6 up).
    var numberText: String {
        let (digits, point) = shortestDecimal()
        if isInteger {
            return NumberText.plain(negative: negative, digits: digits, pointPosition: point)
        }
        return NumberText.general(negative: negative, digits: digits, pointPosition: point, exponentThreshold: 6)
    }
}
