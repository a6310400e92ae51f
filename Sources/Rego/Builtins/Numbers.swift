import PolicyCore

/// `numbers.range numbers.range_step to_number format_int`.
extension Builtins {
    /// Ranges longer than this are refused rather than exhausting memory.
    static let maximumRangeLength = 10_000_000

    static let numbers: [Builtin] = [
        Builtin("numbers.range", arity: 2, signature: .parse("(a: number, b: number) -> range: array[number]")) {
            operands, _ throws(BuiltinError) in
            let a = try bigInteger(operands, 0)
            let b = try bigInteger(operands, 1)
            return .array(try range(from: a, to: b, step: BigInteger(1), name: "numbers.range"))
        },
        Builtin(
            "numbers.range_step", arity: 3,
            signature: .parse("(a: number, b: number, step: number) -> range: array[number]")
        ) { operands, _ throws(BuiltinError) in
            let a = try bigInteger(operands, 0)
            let b = try bigInteger(operands, 1)
            let step = try bigInteger(operands, 2)
            guard step.signum > 0 else {
                throw BuiltinError(.builtinError, "numbers.range_step: step must be a positive integer")
            }
            return .array(try range(from: a, to: b, step: step, name: "numbers.range_step"))
        },
        Builtin(
            "to_number", arity: 1, signature: .parse("(value: any<null, boolean, number, string>) -> num: number")
        ) { operands, _ throws(BuiltinError) in
            switch operands[0] {
            case .null: return .int(0)
            case .bool(let b): return .int(b ? 1 : 0)
            case .number: return operands[0]
            case .string(let s): return .number(try GoFloatText.number(from: s))
            default: throw oneOf(0, ["null", "boolean", "number", "string"], got: operands[0])
            }
        },
        Builtin("format_int", arity: 2, signature: .parse("(number: number, base: number) -> output: string")) {
            operands, _ throws(BuiltinError) in
            let n = try number(operands, 0)
            let base = try number(operands, 1)
            // The base is matched by its text, so `16.0` is refused as OPA refuses it.
            guard let radix = ["2": 2, "8": 8, "10": 10, "16": 16][base.text] else {
                throw BuiltinError(.typeError, "operand 2 must be one of {2, 8, 10, 16}")
            }
            // Plain integers are exact; other numbers are read as 64-bit floats and truncated toward zero.
            let whole = n.isIntegerLiteral
                ? (try RegoArithmetic.exactInteger(n) ?? BigInteger())
                : try RegoArithmetic.float(n).truncated
            return .string(whole.text(radix: radix))
        },
    ]

    /// The integers from `a` to `b` (inclusive, counting down when `a > b`) by `step`.
    private static func range(from a: BigInteger, to b: BigInteger, step: BigInteger, name: String)
        throws(BuiltinError) -> [Value]
    {
        let span = (a > b ? a - b : b - a).quotientAndRemainder(dividingBy: step).quotient
        guard let count = span.int64Value, count < maximumRangeLength else {
            throw BuiltinError(.builtinError, "\(name): range too large")
        }
        var out: [Value] = []
        out.reserveCapacity(Int(count) + 1)
        if let x = a.int64Value, let s = step.int64Value, b.int64Value != nil {
            let direction: Int64 = a > b ? -1 : 1
            for i in 0...count { out.append(.number(Number(x + direction * s * i))) }
            return out
        }
        var current = a
        for _ in 0...count {
            out.append(.number(Number(current)))
            current = a > b ? current - step : current + step
        }
        return out
    }
}

/// Number text as Go's `strconv.ParseFloat` reads it, which OPA's `to_number` uses: decimal and hexadecimal
/// floats, underscores between digits, `Inf` and `NaN` spellings.
enum GoFloatText {
    /// The number a string denotes, or OPA's error for it.
    static func number(from text: String) throws(BuiltinError) -> Number {
        switch classify(text) {
        case .invalid:
            throw BuiltinError(.builtinError, "strconv.ParseFloat: parsing \(GoQuote.quote(text)): invalid syntax")
        case .special:
            throw BuiltinError(.typeError, "operand 1 must be valid number string but got string")
        case .decimal(let cleaned):
            guard let d = Double(cleaned), d.isFinite else {
                throw BuiltinError(.builtinError, "strconv.ParseFloat: parsing \(GoQuote.quote(text)): value out of range")
            }
            // OPA keeps the string as the number's text; text that is not JSON is written as JSON instead.
            if let n = Number(literal: Substring(text)), isJSONNumber(text) { return n }
            return Number(literal: Substring(cleaned)) ?? Number(d)
        case .hexadecimal(let value):
            guard value.isFinite else {
                throw BuiltinError(.builtinError, "strconv.ParseFloat: parsing \(GoQuote.quote(text)): value out of range")
            }
            return Number(value)
        }
    }

    enum Kind {
        case invalid
        case special
        /// Valid decimal syntax, rewritten as JSON number text.
        case decimal(String)
        case hexadecimal(Double)
    }

    static func classify(_ text: String) -> Kind {
        // OPA refuses the infinities and NaN by name, after dropping every leading sign.
        let unsigned = String(text.drop { $0 == "+" || $0 == "-" }).lowercased()
        if unsigned == "inf" || unsigned == "infinity" || unsigned == "nan" { return .special }
        var bytes = Array(text.utf8)
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            negative = first == UInt8(ascii: "-")
            bytes.removeFirst()
        }
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "0"), bytes[1] | 0x20 == UInt8(ascii: "x") {
            return hexadecimal(Array(bytes[2...]), negative: negative)
        }
        guard underscoresAllowed(bytes, prefixed: false) else { return .invalid }
        let plain = bytes.filter { $0 != UInt8(ascii: "_") }
        // digits [. digits] with at least one digit, then an optional exponent.
        var i = 0
        var integerDigits: [UInt8] = []
        var fractionDigits: [UInt8] = []
        while i < plain.count, isDigit(plain[i]) { integerDigits.append(plain[i]); i += 1 }
        var sawPoint = false
        if i < plain.count, plain[i] == UInt8(ascii: ".") {
            sawPoint = true
            i += 1
            while i < plain.count, isDigit(plain[i]) { fractionDigits.append(plain[i]); i += 1 }
        }
        guard !integerDigits.isEmpty || !fractionDigits.isEmpty else { return .invalid }
        var exponent: [UInt8] = []
        if i < plain.count, plain[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < plain.count, plain[i] == UInt8(ascii: "+") || plain[i] == UInt8(ascii: "-") {
                exponent.append(plain[i])
                i += 1
            }
            let start = exponent.count
            while i < plain.count, isDigit(plain[i]) { exponent.append(plain[i]); i += 1 }
            guard exponent.count > start else { return .invalid }
        }
        guard i == plain.count else { return .invalid }
        // JSON form: no `+`, no leading zeros, a digit on both sides of the point.
        var integer = Array(integerDigits.drop { $0 == UInt8(ascii: "0") })
        if integer.isEmpty { integer = [UInt8(ascii: "0")] }
        var out = negative ? "-" : ""
        out += String(decoding: integer, as: UTF8.self)
        if sawPoint, !fractionDigits.isEmpty { out += "." + String(decoding: fractionDigits, as: UTF8.self) }
        if !exponent.isEmpty { out += "e" + String(decoding: exponent, as: UTF8.self) }
        return .decimal(out)
    }

    /// `0x` mantissa (hex digits, optional point) and a mandatory `p` binary exponent.
    private static func hexadecimal(_ bytes: [UInt8], negative: Bool) -> Kind {
        guard underscoresAllowed(bytes, prefixed: true) else { return .invalid }
        let plain = bytes.filter { $0 != UInt8(ascii: "_") }
        var mantissa: Double = 0
        var scale = 0
        var digits = 0
        var sawPoint = false
        var i = 0
        while i < plain.count {
            let b = plain[i]
            if b == UInt8(ascii: "."), !sawPoint {
                sawPoint = true
            } else if let d = hexDigit(b) {
                mantissa = mantissa * 16 + Double(d)
                if sawPoint { scale -= 4 }
                digits += 1
            } else {
                break
            }
            i += 1
        }
        guard digits > 0, i < plain.count, plain[i] | 0x20 == UInt8(ascii: "p") else { return .invalid }
        i += 1
        var exponentNegative = false
        if i < plain.count, plain[i] == UInt8(ascii: "+") || plain[i] == UInt8(ascii: "-") {
            exponentNegative = plain[i] == UInt8(ascii: "-")
            i += 1
        }
        var exponent = 0
        var exponentDigits = 0
        while i < plain.count, isDigit(plain[i]) {
            exponent = min(exponent * 10 + Int(plain[i] - UInt8(ascii: "0")), 100_000)
            exponentDigits += 1
            i += 1
        }
        guard exponentDigits > 0, i == plain.count else { return .invalid }
        let value = mantissa * pow2(scale + (exponentNegative ? -exponent : exponent))
        return .hexadecimal(negative ? -value : value)
    }

    private static func pow2(_ e: Int) -> Double {
        Double(sign: .plus, exponent: max(-2000, min(2000, e)), significand: 1)
    }

    /// Underscores only between digits (or right after a base prefix).
    private static func underscoresAllowed(_ bytes: [UInt8], prefixed: Bool) -> Bool {
        var last: Character = prefixed ? "0" : "^"
        for b in bytes {
            if isDigit(b) || (prefixed && hexDigit(b) != nil) {
                last = "0"
            } else if b == UInt8(ascii: "_") {
                if last != "0" { return false }
                last = "_"
            } else {
                if last == "_" { return false }
                last = "!"
            }
        }
        return last != "_"
    }

    /// Whether the text is a JSON number exactly (OPA then keeps it as written).
    static func isJSONNumber(_ text: String) -> Bool {
        let b = Array(text.utf8)
        var i = 0
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count, isDigit(b[i]) else { return false }
        if b[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard i < b.count, isDigit(b[i]) else { return false }
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        if i < b.count, b[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count, isDigit(b[i]) else { return false }
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        return i == b.count
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    private static func hexDigit(_ b: UInt8) -> Int? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(b - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
