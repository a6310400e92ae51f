import PolicyCore

/// `units.parse` (SI and binary SI quantities, exact, with ten decimals when not integral) and `units.parse_bytes`
/// (byte sizes, truncated to an integer after a 64-bit float product), with OPA's splitting of amount and unit.
extension Builtins {
    static let units: [Builtin] = [
        Builtin("units.parse", arity: 1, signature: .parse("(x: string) -> y: number")) {
            operands, _ throws(BuiltinError) in
            func failure(_ message: String) -> BuiltinError { BuiltinError(.builtinError, "units.parse: " + message) }
            let text = String(try string(operands, 0).unicodeScalars.filter { $0 != "\"" })
            if text.utf8.contains(UInt8(ascii: " ")) { throw failure("spaces not allowed in resource strings") }
            guard let (amount, rawUnit) = UnitText.split(Array(text.utf8)) else { throw failure("exponent too large") }
            if amount.isEmpty { throw failure("no amount provided") }
            let unit = UnitText.keepFirstLowerRest(rawUnit)
            let scale: UnitText.Rational
            switch unit {
            case "m": scale = UnitText.milli
            case "": scale = .init(1)
            case "k", "K": scale = .init(1_000)
            case "ki", "Ki": scale = .init(1 << 10)
            case "M": scale = .init(1_000_000)
            case "mi", "Mi": scale = .init(1 << 20)
            case "g", "G": scale = .init(1_000_000_000)
            case "gi", "Gi": scale = .init(1 << 30)
            case "t", "T": scale = .init(1_000_000_000_000)
            case "ti", "Ti": scale = .init(1 << 40)
            case "p", "P": scale = .init(1_000_000_000_000_000)
            case "pi", "Pi": scale = .init(1 << 50)
            case "e", "E": scale = .init(1_000_000_000_000_000_000)
            case "ei", "Ei": scale = .init(1 << 60)
            default: throw failure("unit \(unit) not recognized")
            }
            guard let value = UnitText.Rational(decimal: amount) else {
                throw failure("could not parse amount to a number")
            }
            let product = value.multiplied(by: scale)
            return .number(Number(literal: product.text(fractionDigits: 10))!)
        },
        Builtin("units.parse_bytes", arity: 1, signature: .parse("(x: string) -> y: number")) {
            operands, _ throws(BuiltinError) in
            func failure(_ message: String) -> BuiltinError {
                BuiltinError(.builtinError, "units.parse_bytes: " + message)
            }
            let text = String(GoCase.lower(try string(operands, 0)).unicodeScalars.filter { $0 != "\"" })
            if text.utf8.contains(UInt8(ascii: " ")) { throw failure("spaces not allowed in resource strings") }
            guard let (amount, unit) = UnitText.split(Array(text.utf8)) else { throw failure("exponent too large") }
            if amount.isEmpty { throw failure("no byte amount provided") }
            let scale: UInt64
            switch unit {
            case "": scale = 1
            case "kb", "k": scale = 1_000
            case "kib", "ki": scale = 1 << 10
            case "mb", "m": scale = 1_000_000
            case "mib", "mi": scale = 1 << 20
            case "gb", "g": scale = 1_000_000_000
            case "gib", "gi": scale = 1 << 30
            case "tb", "t": scale = 1_000_000_000_000
            case "tib", "ti": scale = 1 << 40
            case "pb", "p": scale = 1_000_000_000_000_000
            case "pib", "pi": scale = 1 << 50
            case "eb", "e": scale = 1_000_000_000_000_000_000
            case "eib", "ei": scale = 1 << 60
            default: throw failure("byte unit \(unit) not recognized")
            }
            guard let value = BinaryFloat.parse(Substring(amount)) else {
                throw failure("could not parse byte amount to a number")
            }
            let product = value.multiplied(by: BinaryFloat(integer: BigInteger(scale)))
            return .number(try RegoArithmetic.integerResult(product.truncated))
        },
    ]
}

enum UnitText {
    /// Splits `10.5Gi` into amount and unit: the amount runs over ASCII digits, points, signs and exponents
    /// (`e` followed by a digit or sign), the unit is the rest. Nil when an exponent has more than six digits.
    static func split(_ s: [UInt8]) -> (amount: String, unit: String)? {
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        var boundary: Int?
        var i = 0
        scan: while i < s.count {
            let b = s[i]
            let isExponent = b == UInt8(ascii: "e") || b == UInt8(ascii: "E")
            if !(isDigit(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") || isExponent) {
                boundary = i
                break scan
            }
            if isExponent {
                guard i + 1 < s.count, isDigit(s[i + 1]) || s[i + 1] == UInt8(ascii: "+") || s[i + 1] == UInt8(ascii: "-")
                else {
                    boundary = i
                    break scan
                }
                if s[i + 1] == UInt8(ascii: "+") || s[i + 1] == UInt8(ascii: "-") { i += 1 }
                var end = i + 1
                while end < s.count, isDigit(s[end]) { end += 1 }
                if end - (i + 1) > 6 { return nil }
            }
            i += 1
        }
        guard let boundary else { return (String(decoding: s, as: UTF8.self), "") }
        return (String(decoding: s[..<boundary], as: UTF8.self), String(decoding: s[boundary...], as: UTF8.self))
    }

    /// The unit with everything after its first byte lowercased, so `MI` is `Mi` but `m` and `M` differ. A
    /// non-ASCII first character is split mid-way, as byte slicing splits it, and prints as replacement characters.
    static func keepFirstLowerRest(_ unit: String) -> String {
        guard unit.utf8.count > 1, let first = unit.unicodeScalars.first else { return unit }
        let rest = GoCase.lower(String(unit.unicodeScalars.dropFirst()))
        if first.isASCII { return String(first) + rest }
        return String(repeating: "\u{FFFD}", count: String(first).utf8.count) + rest
    }

    /// 0.001 as the double nearest to it, exactly: 1152921504606847 / 2^60.
    static let milli = Rational(numerator: BigInteger(Int64(1_152_921_504_606_847)), denominator: BigInteger(1) << 60)

    /// An exact fraction (denominator positive, not necessarily reduced).
    struct Rational {
        var numerator: BigInteger
        var denominator: BigInteger

        init(numerator: BigInteger, denominator: BigInteger) {
            self.numerator = numerator
            self.denominator = denominator
        }

        init(_ integer: UInt64) { self.init(numerator: BigInteger(integer), denominator: BigInteger(1)) }

        /// Decimal text: an optional sign, digits with at most one point (at least one digit), and an optional
        /// exponent of at most a million.
        init?(decimal text: String) {
            var bytes = Array(text.utf8)[...]
            var negative = false
            if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
                negative = first == UInt8(ascii: "-")
                bytes = bytes.dropFirst()
            }
            var digits = ""
            var fractionDigits = 0
            var inFraction = false
            while let b = bytes.first {
                if b >= 0x30 && b <= 0x39 {
                    digits.unicodeScalars.append(Unicode.Scalar(b))
                    if inFraction { fractionDigits += 1 }
                } else if b == UInt8(ascii: "."), !inFraction {
                    inFraction = true
                } else {
                    break
                }
                bytes = bytes.dropFirst()
            }
            guard !digits.isEmpty, let coefficient = BigInteger(digits) else { return nil }
            var exponent = 0
            if let b = bytes.first {
                guard b == UInt8(ascii: "e") || b == UInt8(ascii: "E"),
                    let e = Int(String(decoding: bytes.dropFirst(), as: UTF8.self)), e.magnitude <= 1_000_000
                else { return nil }
                exponent = e
            }
            exponent -= fractionDigits
            let signed = negative ? -coefficient : coefficient
            if exponent >= 0 {
                self.init(numerator: signed * BigInteger.powerOfTen(exponent), denominator: BigInteger(1))
            } else {
                self.init(numerator: signed, denominator: BigInteger.powerOfTen(-exponent))
            }
        }

        func multiplied(by other: Rational) -> Rational {
            Rational(numerator: numerator * other.numerator, denominator: denominator * other.denominator)
        }

        /// The integer when the value is one; otherwise the value rounded to `fractionDigits` decimals, halves
        /// away from zero, with every decimal written out (`0.0010000000`).
        func text(fractionDigits: Int) -> String {
            let (q, r) = numerator.magnitude.quotientAndRemainder(dividingBy: denominator)
            if r.isZero { return (numerator.signum < 0 ? "-" : "") + q.description }
            let scale = BigInteger.powerOfTen(fractionDigits)
            var (fraction, rest) = (r * scale).quotientAndRemainder(dividingBy: denominator)
            var whole = q
            if BigInteger.compare(denominator, rest + rest) <= 0 {
                fraction = fraction + BigInteger(1)
                if BigInteger.compare(fraction, scale) >= 0 {
                    whole = whole + BigInteger(1)
                    fraction = fraction - scale
                }
            }
            let digits = fraction.description
            return (numerator.signum < 0 ? "-" : "") + whole.description + "."
                + String(repeating: "0", count: fractionDigits - digits.count) + digits
        }
    }
}
