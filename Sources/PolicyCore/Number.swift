/// A number as Rego and JSON see it: an exact decimal value together with the text it is written as.
///
/// OPA keeps a number as the text it was read from (`1.0`, `1e3` and `1.50` print back unchanged) and compares
/// numbers by their exact value, so `1 == 1.0` and `0.1 != 0.10000000000000001`. Integers that fit in 64 bits
/// (the common case) are stored inline and never allocate; every other number keeps its exact value (a decimal
/// coefficient of any length and a power of ten) and its text in a shared box.
///
/// Equality, order and hashing are by exact value; `description` is the text.
public struct Number: Sendable {
    @usableFromInline
    enum Storage: Sendable {
        /// An integer whose text is its canonical decimal form.
        case int(Int64)
        case exact(ExactDecimal)
    }

    @usableFromInline
    var storage: Storage

    @inlinable
    public init(_ value: Int) { storage = .int(Int64(value)) }

    @inlinable
    public init(_ value: Int64) { storage = .int(value) }

    /// An integer of any size.
    public init(_ value: BigInteger) {
        if let i = value.int64Value {
            storage = .int(i)
        } else {
            storage = .exact(ExactDecimal(integer: value))
        }
    }

    /// A double, written as the shortest text that reads back as the same double (`0.1`, `1e+06`, `1.5e-07`),
    /// in the style of Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which OPA uses for numbers it computes as
    /// doubles. Integral doubles within 64 bits become integers.
    public init(_ value: Double) {
        if value.rounded(.towardZero) == value, let i = Int64(exactly: value), value != 0 || value.sign == .plus {
            storage = .int(i)
            return
        }
        guard value.isFinite else {
            // Not JSON; kept only so that no input can trap. Prints as Go prints it.
            let text = value.isNaN ? "NaN" : (value < 0 ? "-Inf" : "+Inf")
            storage = .exact(ExactDecimal(nonFinite: value, text: text))
            return
        }
        let (digits, pointPosition) = NumberText.shortestDigits(of: value)
        let text = NumberText.general(negative: value.sign == .minus, digits: digits, pointPosition: pointPosition)
        storage = Number(literal: Substring(text))!.storage
    }

    /// Parses a JSON number literal (`-12`, `1.50`, `6.02e23`), keeping the text for printing. Nil when the text
    /// is not a number or its exponent is absurdly large.
    public init?(literal: Substring) {
        guard let parsed = NumberText.parse(literal) else { return nil }
        if parsed.isCanonicalInteger, let i = parsed.int64 {
            storage = .int(i)
        } else {
            storage = .exact(ExactDecimal(parsed, text: String(literal)))
        }
    }

    public init?(literal: String) { self.init(literal: Substring(literal)) }

    // MARK: Reading the value

    /// The number as an exact integer, when its value is one and fits in 64 bits (`1.0` and `1e3` count).
    @inlinable
    public var int64Value: Int64? {
        switch storage {
        case .int(let i): return i
        case .exact(let e): return e.int64
        }
    }

    public var intValue: Int? { int64Value.map { Int($0) } }

    /// The nearest double (infinite beyond the double range).
    public var doubleValue: Double {
        switch storage {
        case .int(let i): Double(i)
        case .exact(let e): e.double
        }
    }

    /// Whether the value is an integer (whatever its text: `2.0` and `1e3` are integers).
    public var isInteger: Bool {
        switch storage {
        case .int: return true
        case .exact(let e): return e.isFinite && (e.coefficient.isZero || e.exponent >= 0)
        }
    }

    /// Whether the number is written as a plain integer, without a fraction or exponent.
    public var isIntegerLiteral: Bool {
        switch storage {
        case .int: return true
        case .exact(let e): return e.textIsInteger
        }
    }

    /// Whether the value is zero (`0`, `-0`, `0.0`, `0e5`).
    public var isZero: Bool {
        switch storage {
        case .int(let i): return i == 0
        case .exact(let e): return e.isFinite && e.coefficient.isZero
        }
    }

    /// -1, 0 or 1.
    public var signum: Int {
        switch storage {
        case .int(let i): return i == 0 ? 0 : (i < 0 ? -1 : 1)
        case .exact(let e): return e.isFinite ? (e.coefficient.isZero ? 0 : (e.negative ? -1 : 1)) : (e.double < 0 ? -1 : 1)
        }
    }

    /// The exact value as `±coefficient × 10^exponent`, with no trailing zeros in the coefficient (zero is
    /// `0 × 10^0`, never negative).
    public var decimal: (negative: Bool, coefficient: BigInteger, exponent: Int) {
        switch storage {
        case .int(let i):
            var c = i.magnitude
            var e = 0
            while c != 0, c % 10 == 0 {
                c /= 10
                e += 1
            }
            return (i < 0, BigInteger(c), e)
        case .exact(let x):
            return (x.negative, x.coefficient, x.exponent)
        }
    }

    /// The number of decimal digits the integer part of the value has (an upper bound of the work an exact
    /// integer computation with it takes); 0 for values below 1.
    public var integerDigitCount: Int {
        switch storage {
        case .int(let i): return i == 0 ? 0 : String(i.magnitude).count
        case .exact(let e): return e.coefficient.isZero ? 0 : max(0, e.coefficientDigits + e.exponent)
        }
    }

    /// The exact integer, when the value is an integer; nil otherwise. Building it from a literal like
    /// `1e100000` costs that many digits: check `integerDigitCount` first where input is untrusted.
    public var integerValue: BigInteger? {
        switch storage {
        case .int(let i): return BigInteger(i)
        case .exact(let e):
            guard e.isFinite else { return nil }
            if e.coefficient.isZero { return BigInteger() }
            guard e.exponent >= 0 else { return nil }
            let magnitude = e.exponent == 0 ? e.coefficient : e.coefficient * BigInteger.powerOfTen(e.exponent)
            return e.negative ? -magnitude : magnitude
        }
    }

    /// The JSON text of the number, as OPA prints it.
    public var text: String {
        switch storage {
        case .int(let i): String(i)
        case .exact(let e): e.text
        }
    }

    // MARK: Order

    /// -1, 0 or 1 by exact value.
    public static func compare(_ a: Number, _ b: Number) -> Int {
        switch (a.storage, b.storage) {
        case (.int(let x), .int(let y)):
            return x == y ? 0 : (x < y ? -1 : 1)
        default:
            // Converting to the nearest double is monotonic, so different doubles decide; equal ones may still
            // hide different exact values.
            let x = a.doubleValue, y = b.doubleValue
            if x < y { return -1 }
            if x > y { return 1 }
            return compareExactly(a, b)
        }
    }

    private static func compareExactly(_ a: Number, _ b: Number) -> Int {
        if case .exact(let x) = a.storage, !x.isFinite { return x.double == b.doubleValue ? 0 : (x.double < b.doubleValue ? -1 : 1) }
        if case .exact(let y) = b.storage, !y.isFinite { return a.doubleValue == y.double ? 0 : (a.doubleValue < y.double ? -1 : 1) }
        let x = a.decimal, y = b.decimal
        let sx = x.coefficient.isZero ? 0 : (x.negative ? -1 : 1)
        let sy = y.coefficient.isZero ? 0 : (y.negative ? -1 : 1)
        if sx != sy { return sx < sy ? -1 : 1 }
        if sx == 0 { return 0 }
        let magnitude = compareMagnitudes(
            x.coefficient, x.exponent, a.coefficientDigits, y.coefficient, y.exponent, b.coefficientDigits
        )
        return sx < 0 ? -magnitude : magnitude
    }

    /// The number of decimal digits of the coefficient in `decimal`.
    private var coefficientDigits: Int {
        switch storage {
        case .int(let i):
            var c = i.magnitude
            while c != 0, c % 10 == 0 { c /= 10 }
            return max(1, String(c).count)
        case .exact(let e):
            return e.coefficientDigits
        }
    }

    /// Compares `c1 × 10^e1` with `c2 × 10^e2` (coefficients of `d1` and `d2` digits) for positive coefficients.
    private static func compareMagnitudes(
        _ c1: BigInteger, _ e1: Int, _ d1: Int, _ c2: BigInteger, _ e2: Int, _ d2: Int
    ) -> Int {
        // The position of the leading digit decides unless it is the same.
        let lead1 = e1 + d1, lead2 = e2 + d2
        if lead1 != lead2 { return lead1 < lead2 ? -1 : 1 }
        if e1 == e2 { return BigInteger.compare(c1, c2) }
        if e1 > e2 { return BigInteger.compare(c1 * BigInteger.powerOfTen(e1 - e2), c2) }
        return BigInteger.compare(c1, c2 * BigInteger.powerOfTen(e2 - e1))
    }
}

extension Number: Hashable {
    public static func == (a: Number, b: Number) -> Bool {
        if case .int(let x) = a.storage, case .int(let y) = b.storage { return x == y }
        return compare(a, b) == 0
    }

    /// Equal values hash alike whatever their text: integers within 64 bits by their value, the rest by their
    /// normalized decimal form.
    public func hash(into hasher: inout Hasher) {
        switch storage {
        case .int(let i):
            hasher.combine(i)
        case .exact(let e):
            if let i = e.int64 {
                hasher.combine(i)
            } else if !e.isFinite {
                hasher.combine(e.double)
            } else {
                hasher.combine(e.negative)
                hasher.combine(e.exponent)
                hasher.combine(e.coefficient)
            }
        }
    }
}

extension Number: Comparable {
    public static func < (a: Number, b: Number) -> Bool { compare(a, b) < 0 }
}

extension Number: CustomStringConvertible {
    /// The number as JSON text, as OPA prints it.
    public var description: String { text }
}

/// The exact value and text of a number that is not a canonical 64-bit integer.
@usableFromInline
final class ExactDecimal: Sendable {
    /// The sign of the value (never set for zero).
    let negative: Bool
    /// The coefficient, without trailing zeros.
    let coefficient: BigInteger
    /// The power of ten the coefficient is scaled by.
    let exponent: Int
    /// The number of decimal digits of the coefficient.
    let coefficientDigits: Int
    /// The value rounded to the nearest double.
    let double: Double
    /// The value, when it is an integer within 64 bits.
    @usableFromInline
    let int64: Int64?
    let text: String
    /// Whether the text is a plain integer.
    let textIsInteger: Bool
    /// False only for the infinities and NaN a `Double` can bring in.
    let isFinite: Bool

    init(_ parsed: NumberText.Parsed, text: String) {
        negative = parsed.negative && !parsed.coefficient.isZero
        coefficient = parsed.coefficient
        exponent = parsed.exponent
        coefficientDigits = parsed.coefficientDigits
        double = Double(text) ?? (parsed.negative ? -Double.infinity : Double.infinity)
        int64 = parsed.int64
        self.text = text
        textIsInteger = parsed.isPlainInteger
        isFinite = true
    }

    init(integer: BigInteger) {
        let text = integer.description
        let parsed = NumberText.parse(Substring(text))!
        negative = parsed.negative
        coefficient = parsed.coefficient
        exponent = parsed.exponent
        coefficientDigits = parsed.coefficientDigits
        double = integer.doubleValue
        int64 = integer.int64Value
        self.text = text
        textIsInteger = true
        isFinite = true
    }

    init(nonFinite value: Double, text: String) {
        negative = value < 0
        coefficient = BigInteger()
        exponent = 0
        coefficientDigits = 1
        double = value
        int64 = nil
        self.text = text
        textIsInteger = false
        isFinite = false
    }
}

/// Reading and writing number text.
public enum NumberText {
    /// A parsed number literal.
    struct Parsed {
        var negative: Bool
        /// Without trailing zeros.
        var coefficient: BigInteger
        var coefficientDigits: Int
        var exponent: Int
        /// The value, when it is an integer within 64 bits.
        var int64: Int64?
        /// Digits only (with an optional `-`), no fraction or exponent.
        var isPlainInteger: Bool
        /// A plain integer written the way `String(Int64)` writes it (no leading zeros, no `-0`).
        var isCanonicalInteger: Bool
    }

    /// The largest decimal exponent a literal may have; beyond it the text is refused rather than risking work
    /// proportional to the exponent.
    static let maximumExponent = 1 << 40

    static func parse(_ text: Substring) -> Parsed? {
        let bytes = text.utf8
        var i = bytes.startIndex
        var negative = false
        if i < bytes.endIndex, bytes[i] == UInt8(ascii: "-") {
            negative = true
            i = bytes.index(after: i)
        }
        // Integer and fraction digits, without the point; leading zeros skipped.
        var digits: [UInt8] = []
        var sawDigit = false
        var fractionDigits = 0
        var isPlainInteger = true
        var leadingZero = false
        var integerDigitCount = 0
        while i < bytes.endIndex, isDigit(bytes[i]) {
            if integerDigitCount == 0, bytes[i] == UInt8(ascii: "0") { leadingZero = true }
            integerDigitCount += 1
            if !(digits.isEmpty && bytes[i] == UInt8(ascii: "0")) { digits.append(bytes[i]) }
            sawDigit = true
            i = bytes.index(after: i)
        }
        guard sawDigit else { return nil }
        if i < bytes.endIndex, bytes[i] == UInt8(ascii: ".") {
            isPlainInteger = false
            i = bytes.index(after: i)
            var any = false
            while i < bytes.endIndex, isDigit(bytes[i]) {
                if !(digits.isEmpty && bytes[i] == UInt8(ascii: "0")) { digits.append(bytes[i]) }
                fractionDigits += 1
                any = true
                i = bytes.index(after: i)
            }
            guard any else { return nil }
        }
        var exponent = 0
        if i < bytes.endIndex, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            isPlainInteger = false
            i = bytes.index(after: i)
            var exponentNegative = false
            if i < bytes.endIndex, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
                exponentNegative = bytes[i] == UInt8(ascii: "-")
                i = bytes.index(after: i)
            }
            var any = false
            while i < bytes.endIndex, isDigit(bytes[i]) {
                exponent = exponent * 10 + Int(bytes[i] - UInt8(ascii: "0"))
                guard exponent <= maximumExponent else { return nil }
                any = true
                i = bytes.index(after: i)
            }
            guard any else { return nil }
            if exponentNegative { exponent = -exponent }
        }
        guard i == bytes.endIndex else { return nil }
        // Strip trailing zeros into the exponent.
        exponent -= fractionDigits
        var trailing = 0
        while let last = digits.last, last == UInt8(ascii: "0") {
            digits.removeLast()
            trailing += 1
        }
        exponent += trailing
        let coefficient: BigInteger
        if digits.isEmpty {
            coefficient = BigInteger()
            exponent = 0
        } else {
            coefficient = BigInteger(negative: false, limbs: BigInteger.parseDigits(Substring(decoding: digits, as: UTF8.self).utf8[...])!)
        }
        let isZero = coefficient.isZero
        var int64: Int64?
        if isZero {
            int64 = 0
        } else if exponent >= 0, exponent <= 19, digits.count + exponent <= 19 {
            let scaled = coefficient * BigInteger.powerOfTen(exponent)
            int64 = (negative ? -scaled : scaled).int64Value
        }
        let canonical = isPlainInteger && !(leadingZero && integerDigitCount > 1) && !(negative && isZero)
        return Parsed(
            negative: negative && !isZero,
            coefficient: coefficient,
            coefficientDigits: max(digits.count, 1),
            exponent: exponent,
            int64: int64,
            isPlainInteger: isPlainInteger,
            isCanonicalInteger: canonical
        )
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    /// The shortest decimal digits that read back as `value` (non-zero, finite), and the position of the decimal
    /// point relative to them: the value is `0.DIGITS × 10^pointPosition`.
    public static func shortestDigits(of value: Double) -> (digits: [UInt8], pointPosition: Int) {
        // Swift's description is the shortest round-tripping text; take its digits and exponent apart.
        let text = value.magnitude.description
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...])!
        }
        var digits: [UInt8] = []
        var pointPosition = 0
        var seenPoint = false
        for b in mantissa.utf8 {
            if b == UInt8(ascii: ".") {
                seenPoint = true
                continue
            }
            if digits.isEmpty && b == UInt8(ascii: "0") {
                if seenPoint { pointPosition -= 1 }
                continue
            }
            digits.append(b)
            if !seenPoint { pointPosition += 1 }
        }
        while let last = digits.last, last == UInt8(ascii: "0") { digits.removeLast() }
        return (digits, pointPosition + exponent)
    }

    /// Go's `%g` with the shortest digits: exponent notation (`1e+06`, `1.5e-07`, at least two exponent digits)
    /// when the decimal exponent is below -4 or at least `exponentThreshold`, plain notation otherwise.
    public static func general(
        negative: Bool, digits: [UInt8], pointPosition: Int, exponentThreshold: Int = 6
    ) -> String {
        let exponent = pointPosition - 1
        if exponent < -4 || exponent >= exponentThreshold {
            return scientific(negative: negative, digits: digits, pointPosition: pointPosition)
        }
        return plain(negative: negative, digits: digits, pointPosition: pointPosition)
    }

    /// `d.ddde±XX`: Go's `%e` with the given digits.
    public static func scientific(negative: Bool, digits: [UInt8], pointPosition: Int) -> String {
        var out = negative ? "-" : ""
        let ds = digits.isEmpty ? [UInt8(ascii: "0")] : digits
        out.unicodeScalars.append(Unicode.Scalar(ds[0]))
        if ds.count > 1 {
            out += "."
            for d in ds.dropFirst() { out.unicodeScalars.append(Unicode.Scalar(d)) }
        }
        let exponent = digits.isEmpty ? 0 : pointPosition - 1
        out += exponent < 0 ? "e-" : "e+"
        let magnitude = String(exponent.magnitude)
        if magnitude.count < 2 { out += "0" }
        out += magnitude
        return out
    }

    /// Plain notation: `123.45`, `0.00012`, `1200`.
    public static func plain(negative: Bool, digits: [UInt8], pointPosition: Int) -> String {
        var out = negative ? "-" : ""
        if digits.isEmpty { return out + "0" }
        if pointPosition <= 0 {
            out += "0."
            out += String(repeating: "0", count: -pointPosition)
            for d in digits { out.unicodeScalars.append(Unicode.Scalar(d)) }
            return out
        }
        for (i, d) in digits.enumerated() {
            if i == pointPosition { out += "." }
            out.unicodeScalars.append(Unicode.Scalar(d))
        }
        if digits.count < pointPosition { out += String(repeating: "0", count: pointPosition - digits.count) }
        return out
    }
}
