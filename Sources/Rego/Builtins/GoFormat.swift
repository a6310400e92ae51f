import PolicyCore

/// Go's `fmt.Sprintf`, which OPA's `sprintf` is: verbs, flags, width and precision (`*` included), explicit
/// argument indexes, and Go's error texts (`%!d(string=x)`, `%!d(MISSING)`, `%!(EXTRA int64=2)`).
///
/// OPA hands Go four kinds of operand: 64-bit integers, big integers, doubles and strings (everything else is
/// passed as its Rego text), so those are the kinds formatted here.
enum GoFormat {
    enum Argument {
        case int(Int64)
        case big(BigInteger)
        case float(Double)
        case string(String)

        /// The Go type name, as `%T` and error texts print it.
        var typeName: String {
            switch self {
            case .int: "int64"
            case .big: "*big.Int"
            case .float: "float64"
            case .string: "string"
            }
        }
    }

    /// The operand OPA passes for a Rego value.
    static func argument(for value: Value) -> Argument {
        switch value {
        case .string(let s):
            return .string(s)
        case .number(let n):
            let text = n.text
            if let i = plainInteger(text) { return .int(i) }
            if let big = BigInteger(text) { return .big(big) }
            // Only text with a fraction is read as a double; exponent-only text (`1e3`) stays text.
            if text.contains("."), let d = Double(text), d.isFinite { return .float(d) }
            return .string(text)
        default:
            return .string(RegoText.write(value))
        }
    }

    /// An integer written as digits, optionally followed by a fraction of zeros (`10.0`), within 64 bits.
    private static func plainInteger(_ text: String) -> Int64? {
        if let i = Int64(text) { return i }
        guard let point = text.firstIndex(of: ".") else { return nil }
        let fraction = text[text.index(after: point)...]
        guard !fraction.isEmpty, fraction.allSatisfy({ $0 == "0" }) else { return nil }
        return Int64(text[..<point])
    }

    // MARK: The format loop

    static func sprintf(_ format: String, _ args: [Argument]) -> String {
        var p = Printer(args: args)
        p.run(Array(format.utf8))
        return p.out
    }

    struct Flags {
        var plus = false, minus = false, sharp = false, space = false, zero = false
        var plusV = false, sharpV = false
        var width: Int?
        var precision: Int?
    }

    struct Printer {
        let args: [Argument]
        var out = ""
        var flags = Flags()
        var argNum = 0
        var reordered = false
        var goodArgNum = true

        init(args: [Argument]) { self.args = args }

        mutating func run(_ f: [UInt8]) {
            let end = f.count
            var i = 0
            var afterIndex = false
            while i < end {
                goodArgNum = true
                let start = i
                while i < end, f[i] != UInt8(ascii: "%") { i += 1 }
                if i > start { out += String(decoding: f[start..<i], as: UTF8.self) }
                if i >= end { break }
                i += 1
                flags = Flags()
                flagLoop: while i < end {
                    switch f[i] {
                    case UInt8(ascii: "#"): flags.sharp = true
                    case UInt8(ascii: "0"): flags.zero = true
                    case UInt8(ascii: "+"): flags.plus = true
                    case UInt8(ascii: "-"): flags.minus = true
                    case UInt8(ascii: " "): flags.space = true
                    default: break flagLoop
                    }
                    i += 1
                }
                (i, afterIndex) = argumentIndex(f, i)
                // Width.
                if i < end, f[i] == UInt8(ascii: "*") {
                    i += 1
                    let (value, ok) = intFromArgument()
                    flags.width = ok ? value : nil
                    if !ok { out += "%!(BADWIDTH)" }
                    if let w = flags.width, w < 0 {
                        flags.width = -w
                        flags.minus = true
                        flags.zero = false
                    }
                    afterIndex = false
                } else {
                    let (value, present, next) = parseNumber(f, i, end)
                    i = next
                    flags.width = present ? value : nil
                    if afterIndex && present { goodArgNum = false }
                }
                // Precision.
                if i + 1 < end, f[i] == UInt8(ascii: ".") {
                    i += 1
                    if afterIndex { goodArgNum = false }
                    (i, afterIndex) = argumentIndex(f, i)
                    if i < end, f[i] == UInt8(ascii: "*") {
                        i += 1
                        let (value, ok) = intFromArgument()
                        // A negative precision is as bad as a missing one.
                        flags.precision = ok && value >= 0 ? value : nil
                        if flags.precision == nil { out += "%!(BADPREC)" }
                        afterIndex = false
                    } else {
                        let (value, present, next) = parseNumber(f, i, end)
                        i = next
                        flags.precision = present ? value : 0
                    }
                }
                if !afterIndex { (i, afterIndex) = argumentIndex(f, i) }
                guard i < end else {
                    out += "%!(NOVERB)"
                    break
                }
                let (verb, width) = decodeVerb(f, i)
                i += width
                if verb == "%" {
                    out += "%"
                } else if !goodArgNum {
                    out += "%!" + String(verb) + "(BADINDEX)"
                } else if argNum >= args.count {
                    out += "%!" + String(verb) + "(MISSING)"
                } else {
                    if verb == "v" {
                        flags.sharpV = flags.sharp
                        flags.sharp = false
                        flags.plusV = flags.plus
                        flags.plus = false
                    }
                    printArgument(args[argNum], verb)
                    argNum += 1
                }
            }
            if !reordered && argNum < args.count {
                flags = Flags()
                out += "%!(EXTRA "
                for (k, arg) in args[argNum...].enumerated() {
                    if k > 0 { out += ", " }
                    out += arg.typeName + "="
                    printArgument(arg, "v")
                }
                out += ")"
            }
        }

        private func decodeVerb(_ f: [UInt8], _ i: Int) -> (Unicode.Scalar, Int) {
            if f[i] < 0x80 { return (Unicode.Scalar(f[i]), 1) }
            if let (scalar, width) = GoUTF8.scalar(at: i, in: f) { return (scalar, width) }
            return ("\u{FFFD}", 1)
        }

        /// `[n]` selects argument n (1-based) for what follows.
        private mutating func argumentIndex(_ f: [UInt8], _ i: Int) -> (Int, Bool) {
            guard i < f.count, f[i] == UInt8(ascii: "[") else { return (i, false) }
            reordered = true
            guard f.count - i >= 3 else {
                goodArgNum = false
                return (i + 1, false)
            }
            var j = i + 1
            while j < f.count, f[j] != UInt8(ascii: "]") { j += 1 }
            guard j < f.count else {
                goodArgNum = false
                return (i + 1, false)
            }
            let (value, present, next) = parseNumber(f, i + 1, j)
            guard present, next == j else {
                goodArgNum = false
                return (j + 1, false)
            }
            let index = value - 1
            if index >= 0 && index < args.count {
                argNum = index
                return (j + 1, true)
            }
            goodArgNum = false
            return (j + 1, true)
        }

        private func parseNumber(_ f: [UInt8], _ start: Int, _ end: Int) -> (Int, Bool, Int) {
            guard start < end else { return (0, false, end) }
            var value = 0, present = false, i = start
            while i < end, f[i] >= UInt8(ascii: "0"), f[i] <= UInt8(ascii: "9") {
                if value > 1_000_000 { return (0, false, end) }
                value = value * 10 + Int(f[i] - UInt8(ascii: "0"))
                present = true
                i += 1
            }
            return (value, present, i)
        }

        /// A `*` width or precision: the next argument, which must be an integer within a million.
        private mutating func intFromArgument() -> (Int, Bool) {
            guard argNum < args.count else { return (0, false) }
            defer { argNum += 1 }
            guard case .int(let v) = args[argNum], abs(v) <= 1_000_000 else { return (0, false) }
            return (Int(v), true)
        }

        // MARK: One operand

        mutating func printArgument(_ arg: Argument, _ verb: Unicode.Scalar) {
            if verb == "T" {
                formatString(arg.typeName)
                return
            }
            if verb == "p" {
                badVerb(arg, verb)
                return
            }
            switch arg {
            case .int(let v): formatInteger(v, verb, arg)
            case .big(let v): formatBig(v, verb)
            case .float(let v): formatFloat(v, verb, arg)
            case .string(let s): formatStringVerb(s, verb, arg)
            }
        }

        private mutating func badVerb(_ arg: Argument, _ verb: Unicode.Scalar) {
            out += "%!" + String(verb) + "(" + arg.typeName + "="
            printArgument(arg, "v")
            out += ")"
        }

        // MARK: Padding

        private mutating func pad(_ s: String) {
            guard let width = flags.width, width > 0 else {
                out += s
                return
            }
            let fill = max(0, width - s.unicodeScalars.count)
            if flags.minus {
                out += s
                out += String(repeating: " ", count: fill)
            } else {
                out += String(repeating: flags.zero ? "0" : " ", count: fill)
                out += s
            }
        }

        /// Padding never zero-filled.
        private mutating func padWithSpaces(_ s: String) {
            let zero = flags.zero
            flags.zero = false
            pad(s)
            flags.zero = zero
        }

        // MARK: Strings

        private mutating func formatStringVerb(_ s: String, _ verb: Unicode.Scalar, _ arg: Argument) {
            switch verb {
            case "v": if flags.sharpV { formatQuoted(s) } else { formatString(s) }
            case "s": formatString(s)
            case "x": formatHexBytes(Array(s.utf8), upper: false)
            case "X": formatHexBytes(Array(s.utf8), upper: true)
            case "q": formatQuoted(s)
            default: badVerb(arg, verb)
            }
        }

        private func truncated(_ s: String) -> String {
            guard let precision = flags.precision else { return s }
            var out = String.UnicodeScalarView()
            out.append(contentsOf: s.unicodeScalars.prefix(precision))
            return String(out)
        }

        private mutating func formatString(_ s: String) { pad(truncated(s)) }

        private mutating func formatQuoted(_ s: String) {
            let t = truncated(s)
            if flags.sharp, canBackquote(t) {
                pad("`" + t + "`")
                return
            }
            pad(flags.plus ? GoQuote.quoteASCII(t) : GoQuote.quote(t))
        }

        private func canBackquote(_ s: String) -> Bool {
            for scalar in s.unicodeScalars {
                if scalar == "`" || scalar == "\u{FEFF}" || scalar == "\u{FFFD}" { return false }
                if scalar.value < 0x20 && scalar != "\t" { return false }
                if scalar.value == 0x7F { return false }
            }
            return true
        }

        private mutating func formatHexBytes(_ bytes: [UInt8], upper: Bool) {
            let digits = Array((upper ? "0123456789ABCDEFX" : "0123456789abcdefx").utf8)
            var length = bytes.count
            if let precision = flags.precision, precision < length { length = precision }
            var width = 2 * length
            guard width > 0 else {
                if let w = flags.width { out += String(repeating: flags.zero && !flags.minus ? "0" : " ", count: w) }
                return
            }
            if flags.space {
                if flags.sharp { width *= 2 }
                width += length - 1
            } else if flags.sharp {
                width += 2
            }
            let fill = max(0, (flags.width ?? 0) - width)
            let padByte = flags.zero && !flags.minus ? "0" : " "
            if !flags.minus { out += String(repeating: padByte, count: fill) }
            var text: [UInt8] = []
            if flags.sharp { text += [UInt8(ascii: "0"), digits[16]] }
            for i in 0..<length {
                if flags.space && i > 0 {
                    text.append(UInt8(ascii: " "))
                    if flags.sharp { text += [UInt8(ascii: "0"), digits[16]] }
                }
                text.append(digits[Int(bytes[i] >> 4)])
                text.append(digits[Int(bytes[i] & 0xF)])
            }
            out += String(decoding: text, as: UTF8.self)
            if flags.minus { out += String(repeating: " ", count: fill) }
        }

        // MARK: Integers

        private mutating func formatInteger(_ v: Int64, _ verb: Unicode.Scalar, _ arg: Argument) {
            switch verb {
            case "v", "d": integer(v, base: 10, verb: verb, upper: false)
            case "b": integer(v, base: 2, verb: verb, upper: false)
            case "o", "O": integer(v, base: 8, verb: verb, upper: false)
            case "x": integer(v, base: 16, verb: verb, upper: false)
            case "X": integer(v, base: 16, verb: verb, upper: true)
            case "c": pad(String(character(v)))
            case "q": pad(GoQuote.quoteRune(character(v), asciiOnly: flags.plus))
            case "U": unicodePoint(v)
            default: badVerb(arg, verb)
            }
        }

        private func character(_ v: Int64) -> Unicode.Scalar {
            // Go converts to a 32-bit rune; anything that is not a valid code point prints as U+FFFD.
            guard v >= 0, v <= 0x10FFFF, let scalar = Unicode.Scalar(UInt32(v)) else { return "\u{FFFD}" }
            return scalar
        }

        private mutating func integer(_ v: Int64, base: Int, verb: Unicode.Scalar, upper: Bool) {
            let negative = v < 0
            var digits = String(v.magnitude, radix: base)
            if upper { digits = digits.uppercased() }
            var precision = 0
            if let p = flags.precision {
                precision = p
                if p == 0 && v == 0 {
                    out += String(repeating: " ", count: flags.width ?? 0)
                    return
                }
            } else if flags.zero, !flags.minus, let w = flags.width {
                precision = w
                if negative || flags.plus || flags.space { precision -= 1 }
            }
            if digits.count < precision { digits = String(repeating: "0", count: precision - digits.count) + digits }
            if flags.sharp {
                switch base {
                case 2: digits = "0b" + digits
                case 8: if !digits.hasPrefix("0") { digits = "0" + digits }
                case 16: digits = (upper ? "0X" : "0x") + digits
                default: break
                }
            }
            if verb == "O" { digits = "0o" + digits }
            if negative {
                digits = "-" + digits
            } else if flags.plus {
                digits = "+" + digits
            } else if flags.space {
                digits = " " + digits
            }
            padWithSpaces(digits)
        }

        private mutating func unicodePoint(_ v: Int64) {
            var hex = String(UInt64(bitPattern: v), radix: 16).uppercased()
            let precision = max(4, flags.precision ?? 4)
            if hex.count < precision { hex = String(repeating: "0", count: precision - hex.count) + hex }
            var text = "U+" + hex
            if flags.sharp, v >= 0, v <= 0x10FFFF, let scalar = Unicode.Scalar(UInt32(v)), GoQuote.isPrintable(scalar) {
                text += " '" + String(scalar) + "'"
            }
            padWithSpaces(text)
        }

        // MARK: Big integers (Go's big.Int formatter)

        private mutating func formatBig(_ v: BigInteger, _ verb: Unicode.Scalar) {
            let base: Int
            switch verb {
            case "b": base = 2
            case "o", "O": base = 8
            case "d", "s", "v": base = 10
            case "x", "X": base = 16
            default:
                out += "%!" + String(verb) + "(big.Int=" + v.description + ")"
                return
            }
            let sign = v.isNegative ? "-" : (flags.plus || flags.plusV ? "+" : (flags.space ? " " : ""))
            var prefix = ""
            if flags.sharp || flags.sharpV {
                switch verb {
                case "b": prefix = "0b"
                case "o": prefix = "0"
                case "x": prefix = "0x"
                case "X": prefix = "0X"
                default: break
                }
            }
            if verb == "O" { prefix = "0o" }
            var digits = v.magnitude.text(radix: base)
            if verb == "X" { digits = digits.uppercased() }
            var zeros = 0, left = 0, right = 0
            if let p = flags.precision {
                if digits.count < p {
                    zeros = p - digits.count
                } else if digits == "0" && p == 0 {
                    return
                }
            }
            let length = sign.count + prefix.count + zeros + digits.count
            if let w = flags.width, length < w {
                let d = w - length
                if flags.minus {
                    right = d
                } else if flags.zero && flags.precision == nil {
                    zeros = d
                } else {
                    left = d
                }
            }
            out += String(repeating: " ", count: left) + sign + prefix + String(repeating: "0", count: zeros)
            out += digits + String(repeating: " ", count: right)
        }

        // MARK: Floats

        private mutating func formatFloat(_ v: Double, _ verb: Unicode.Scalar, _ arg: Argument) {
            switch verb {
            case "v": float(v, format: "g", precision: -1)
            case "b", "g", "G", "x", "X": float(v, format: verb, precision: -1)
            case "f", "F", "e", "E": float(v, format: verb == "F" ? "f" : verb, precision: 6)
            default: badVerb(arg, verb)
            }
        }

        private mutating func float(_ v: Double, format: Unicode.Scalar, precision defaultPrecision: Int) {
            let precision = flags.precision ?? defaultPrecision
            var num = Array(GoFloat.format(v, format: UInt8(ascii: format), precision: precision).utf8)
            if num.first == UInt8(ascii: "-") || num.first == UInt8(ascii: "+") {
                // Keep the sign.
            } else {
                num.insert(UInt8(ascii: "+"), at: 0)
            }
            if flags.space, num[0] == UInt8(ascii: "+"), !flags.plus { num[0] = UInt8(ascii: " ") }
            if num[1] == UInt8(ascii: "I") || num[1] == UInt8(ascii: "N") {
                if num[1] == UInt8(ascii: "N"), !flags.space, !flags.plus { num.removeFirst() }
                padWithSpaces(String(decoding: num, as: UTF8.self))
                return
            }
            if flags.sharp, format != "b" {
                var digits = 0
                if format == "g" || format == "G" || format == "x" {
                    digits = precision == -1 ? 6 : precision
                }
                var tail: [UInt8] = []
                var hasPoint = false
                var sawNonzero = false
                var i = 1
                scan: while i < num.count {
                    switch num[i] {
                    case UInt8(ascii: "."):
                        hasPoint = true
                    case UInt8(ascii: "p"), UInt8(ascii: "P"):
                        tail = Array(num[i...])
                        num.removeSubrange(i...)
                        break scan
                    case UInt8(ascii: "e"), UInt8(ascii: "E") where format != "x" && format != "X":
                        tail = Array(num[i...])
                        num.removeSubrange(i...)
                        break scan
                    default:
                        if num[i] != UInt8(ascii: "0") { sawNonzero = true }
                        if sawNonzero { digits -= 1 }
                    }
                    i += 1
                }
                if !hasPoint {
                    if num.count == 2 && num[1] == UInt8(ascii: "0") { digits -= 1 }
                    num.append(UInt8(ascii: "."))
                }
                while digits > 0 {
                    num.append(UInt8(ascii: "0"))
                    digits -= 1
                }
                num += tail
            }
            if flags.plus || num[0] != UInt8(ascii: "+") {
                if flags.zero, !flags.minus, let w = flags.width, w > num.count {
                    out.unicodeScalars.append(Unicode.Scalar(num[0]))
                    out += String(repeating: "0", count: w - num.count)
                    out += String(decoding: num[1...], as: UTF8.self)
                    return
                }
                pad(String(decoding: num, as: UTF8.self))
                return
            }
            pad(String(decoding: num[1...], as: UTF8.self))
        }
    }
}

/// Go's `strconv.FormatFloat` for doubles: `e E f g G b x X` with a precision, or the shortest digits that read
/// back the same (precision -1).
enum GoFloat {
    static func format(_ v: Double, format fmt: UInt8, precision prec: Int) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Inf" : "+Inf" }
        let negative = v.sign == .minus
        switch fmt {
        case UInt8(ascii: "b"): return binary(v, negative: negative)
        case UInt8(ascii: "x"), UInt8(ascii: "X"): return hexadecimal(v, negative: negative, precision: prec, upper: fmt == UInt8(ascii: "X"))
        default: break
        }
        var digits: [UInt8]
        var point: Int
        var precision = prec
        let shortest = prec < 0
        if v == 0 {
            digits = []
            point = 0
        } else if shortest {
            (digits, point) = NumberText.shortestDigits(of: v)
        } else {
            (digits, point) = BinaryFloat(v.magnitude).exactDecimal()
            switch fmt {
            case UInt8(ascii: "e"), UInt8(ascii: "E"): round(&digits, &point, to: precision + 1)
            case UInt8(ascii: "f"): round(&digits, &point, to: point + precision)
            default:
                if precision == 0 { precision = 1 }
                round(&digits, &point, to: precision)
            }
        }
        if shortest {
            switch fmt {
            case UInt8(ascii: "e"), UInt8(ascii: "E"): precision = digits.count - 1
            case UInt8(ascii: "f"): precision = max(digits.count - point, 0)
            default: precision = digits.count
            }
        }
        switch fmt {
        case UInt8(ascii: "e"), UInt8(ascii: "E"):
            return exponential(negative, digits, point, precision, fmt)
        case UInt8(ascii: "f"):
            return fixed(negative, digits, point, precision)
        default:
            var eprec = precision
            if eprec > digits.count && digits.count >= point { eprec = digits.count }
            if shortest { eprec = 6 }
            let exp = point - 1
            if exp < -4 || exp >= eprec {
                if precision > digits.count { precision = digits.count }
                return exponential(negative, digits, point, precision - 1, fmt + UInt8(ascii: "e") - UInt8(ascii: "g"))
            }
            if precision > point { precision = digits.count }
            return fixed(negative, digits, point, max(precision - point, 0))
        }
    }

    /// Rounds exact digits to `n` digits, ties to even (the digits are exact, so a tie is a final lone 5).
    static func round(_ digits: inout [UInt8], _ point: inout Int, to n: Int) {
        if n < 0 {
            digits = []
            return
        }
        guard n < digits.count else { return }
        let up: Bool
        if digits[n] == UInt8(ascii: "5") && n + 1 == digits.count {
            up = n > 0 && (digits[n - 1] - UInt8(ascii: "0")) & 1 == 1
        } else {
            up = digits[n] >= UInt8(ascii: "5")
        }
        if up {
            var i = n
            while i > 0 && digits[i - 1] == UInt8(ascii: "9") { i -= 1 }
            if i == 0 {
                digits = [UInt8(ascii: "1")]
                point += 1
                return
            }
            digits[i - 1] += 1
            digits.removeSubrange(i...)
        } else {
            digits.removeSubrange(n...)
        }
        while let last = digits.last, last == UInt8(ascii: "0") { digits.removeLast() }
        if digits.isEmpty { point = 0 }
    }

    private static func exponential(_ negative: Bool, _ d: [UInt8], _ point: Int, _ prec: Int, _ fmt: UInt8) -> String {
        var out: [UInt8] = negative ? [UInt8(ascii: "-")] : []
        out.append(d.first ?? UInt8(ascii: "0"))
        if prec > 0 {
            out.append(UInt8(ascii: "."))
            var i = 1
            let m = min(d.count, prec + 1)
            if i < m {
                out += d[i..<m]
                i = m
            }
            while i <= prec {
                out.append(UInt8(ascii: "0"))
                i += 1
            }
        }
        out.append(fmt)
        var exp = d.isEmpty ? 0 : point - 1
        if exp < 0 {
            out.append(UInt8(ascii: "-"))
            exp = -exp
        } else {
            out.append(UInt8(ascii: "+"))
        }
        if exp < 10 { out.append(UInt8(ascii: "0")) }
        out += String(exp).utf8
        return String(decoding: out, as: UTF8.self)
    }

    private static func fixed(_ negative: Bool, _ d: [UInt8], _ point: Int, _ prec: Int) -> String {
        var out: [UInt8] = negative ? [UInt8(ascii: "-")] : []
        if point > 0 {
            let m = min(d.count, point)
            out += d[0..<m]
            if m < point { out += [UInt8](repeating: UInt8(ascii: "0"), count: point - m) }
        } else {
            out.append(UInt8(ascii: "0"))
        }
        if prec > 0 {
            out.append(UInt8(ascii: "."))
            for i in 0..<prec {
                let j = point + i
                out.append(j >= 0 && j < d.count ? d[j] : UInt8(ascii: "0"))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `%b`: the 53-bit integer mantissa and the power of two.
    private static func binary(_ v: Double, negative: Bool) -> String {
        let bits = v.bitPattern
        var exponent = Int((bits >> 52) & 0x7FF)
        var mantissa = bits & ((1 << 52) - 1)
        if exponent == 0 {
            exponent += 1
        } else {
            mantissa |= 1 << 52
        }
        exponent += -1023 - 52
        return (negative ? "-" : "") + String(mantissa) + "p" + (exponent >= 0 ? "+" : "") + String(exponent)
    }

    /// `%x`: `0x1.8p+01`, with the fraction rounded to `precision` hex digits when one is given.
    private static func hexadecimal(_ v: Double, negative: Bool, precision: Int, upper: Bool) -> String {
        let bits = v.bitPattern
        var exponent = Int((bits >> 52) & 0x7FF)
        var mantissa = bits & ((1 << 52) - 1)
        if exponent == 0 {
            exponent += 1
        } else {
            mantissa |= 1 << 52
        }
        exponent -= 1023
        if mantissa == 0 { exponent = 0 }
        mantissa <<= 60 - 52
        while mantissa != 0 && mantissa & (1 << 60) == 0 {
            mantissa <<= 1
            exponent -= 1
        }
        if precision >= 0 && precision < 15 {
            let shift = UInt64(precision * 4)
            let extra = (mantissa << shift) & ((1 << 60) - 1)
            mantissa >>= 60 - shift
            if extra | (mantissa & 1) > 1 << 59 { mantissa += 1 }
            mantissa <<= 60 - shift
            if mantissa & (1 << 61) != 0 {
                mantissa >>= 1
                exponent += 1
            }
        }
        let hex = Array((upper ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
        var out: [UInt8] = negative ? [UInt8(ascii: "-")] : []
        out += [UInt8(ascii: "0"), upper ? UInt8(ascii: "X") : UInt8(ascii: "x"), UInt8(ascii: "0") + UInt8((mantissa >> 60) & 1)]
        mantissa <<= 4
        if precision < 0 && mantissa != 0 {
            out.append(UInt8(ascii: "."))
            while mantissa != 0 {
                out.append(hex[Int((mantissa >> 60) & 15)])
                mantissa <<= 4
            }
        } else if precision > 0 {
            out.append(UInt8(ascii: "."))
            for _ in 0..<precision {
                out.append(hex[Int((mantissa >> 60) & 15)])
                mantissa <<= 4
            }
        }
        out.append(upper ? UInt8(ascii: "P") : UInt8(ascii: "p"))
        if exponent < 0 {
            out.append(UInt8(ascii: "-"))
            exponent = -exponent
        } else {
            out.append(UInt8(ascii: "+"))
        }
        let e = String(exponent)
        if exponent < 10 { out.append(UInt8(ascii: "0")) }
        out += e.utf8
        return String(decoding: out, as: UTF8.self)
    }
}

/// Rego's text for a value, as OPA prints terms: strings quoted, `set()` for the empty set, members sorted.
enum RegoText {
    static func write(_ value: Value) -> String {
        var out = ""
        write(value, to: &out)
        return out
    }

    static func write(_ value: Value, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.text
        case .string(let s): out += GoQuote.quote(s)
        case .array(let a):
            out += "["
            for (i, e) in a.enumerated() {
                if i > 0 { out += ", " }
                write(e, to: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, key) in o.keys.sorted().enumerated() {
                if i > 0 { out += ", " }
                write(key, to: &out)
                out += ": "
                write(o[key]!, to: &out)
            }
            out += "}"
        case .set(let s):
            if s.isEmpty {
                out += "set()"
                return
            }
            out += "{"
            for (i, e) in s.sorted().enumerated() {
                if i > 0 { out += ", " }
                write(e, to: &out)
            }
            out += "}"
        }
    }
}
