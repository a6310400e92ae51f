/// A JSON text that could not be read, with the place it went wrong.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int
    public var column: Int

    public var description: String { "\(line):\(column): \(message)" }
}

/// Reads JSON into `Value`, keeping integers exact. Strict RFC 8259: no comments, no trailing commas.
public struct JSONReader {
    /// Nesting deeper than this is refused rather than risking the stack (request bodies, tokens and
    /// documents received at run time; files are read under `InputLimits.maxNestingDepth`).
    public static let maximumDepth = 512

    public static func parse(_ text: String, maximumDepth: Int = maximumDepth) throws(JSONError) -> Value {
        try parse(Array(text.utf8), maximumDepth: maximumDepth)
    }

    public static func parse(
        _ bytes: UnsafeBufferPointer<UInt8>, maximumDepth: Int = maximumDepth
    ) throws(JSONError) -> Value {
        var reader = Cursor(bytes: bytes, maximumDepth: maximumDepth)
        reader.pending.reserveCapacity(16)
        reader.skipWhitespace()
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.atEnd else { throw reader.error("unexpected data after the JSON value") }
        return value
    }

    public static func parse(_ bytes: [UInt8], maximumDepth: Int = maximumDepth) throws(JSONError) -> Value {
        try bytes.withUnsafeBufferPointer { buffer throws(JSONError) in try parse(buffer, maximumDepth: maximumDepth) }
    }

    private struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        let maximumDepth: Int
        var index = 0
        /// Members of the objects being read, innermost last: each object is built once at its exact size
        /// instead of growing (and rehashing) member by member.
        var pending: [(key: Value, value: Value)] = []

        var atEnd: Bool { index >= bytes.count }

        func error(_ message: String) -> JSONError {
            var line = 1, column = 1
            for i in 0..<min(index, bytes.count) {
                if bytes[i] == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else if bytes[i] & 0xC0 != 0x80 {
                    column += 1
                }
            }
            return JSONError(message: message, line: line, column: column)
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) throws(JSONError) -> Value {
            guard depth < maximumDepth else {
                throw error("JSON nested too deeply: more than \(maximumDepth) levels (limits.max_nesting_depth)")
            }
            guard index < bytes.count else { throw error("unexpected end of JSON") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw error("unexpected character `\(Character(Unicode.Scalar(bytes[index])))`")
            }
        }

        mutating func literal(_ word: StaticString) throws(JSONError) {
            let n = word.utf8CodeUnitCount
            guard index + n <= bytes.count else { throw error("unexpected end of JSON") }
            for i in 0..<n where bytes[index + i] != word.utf8Start[i] {
                throw error("invalid literal, expected `\(word)`")
            }
            index += n
        }

        mutating func object(depth: Int) throws(JSONError) -> Value {
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object([Value: Value]())
            }
            let first = pending.count
            defer { pending.removeSubrange(first...) }
            func finish() -> Value {
                var members: [Value: Value] = Dictionary(minimumCapacity: pending.count - first)
                for member in pending[first...] { members[member.key] = member.value }  // a repeated key: the last wins
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw error("expected a string key in object")
                }
                let key = try string()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected `:` after key") }
                index += 1
                skipWhitespace()
                let member = try value(depth: depth + 1)
                pending.append((.string(key), member))
                skipWhitespace()
                guard index < bytes.count else { throw error("unexpected end of JSON in object") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return finish()
                } else {
                    throw error("expected `,` or `}` in object")
                }
            }
        }

        mutating func array(depth: Int) throws(JSONError) -> Value {
            index += 1
            var elements: [Value] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try value(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw error("unexpected end of JSON in array") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(elements)
                } else {
                    throw error("expected `,` or `]` in array")
                }
            }
        }

        mutating func number() throws(JSONError) -> Number {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
                if index < bytes.count, isDigit(bytes[index]) { throw error("invalid number: leading zero") }
            } else {
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number: digit expected after `.`") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number: digit expected in exponent") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            // Fast path: an integer of up to 18 digits is exact in 64 bits without going through text.
            let digits = bytes[start] == UInt8(ascii: "-") ? start + 1 : start
            if index - digits <= 18, !bytes[digits..<index].contains(where: { !isDigit($0) }) {
                var magnitude: Int64 = 0
                for b in bytes[digits..<index] { magnitude = magnitude * 10 + Int64(b - UInt8(ascii: "0")) }
                // `-0` keeps its text, as OPA prints it.
                if magnitude != 0 || digits == start { return Number(digits == start ? magnitude : -magnitude) }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard let n = Number(literal: Substring(text)) else { throw error("invalid number `\(text)`") }
            return n
        }

        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

        mutating func string() throws(JSONError) -> String {
            index += 1  // opening quote
            let start = index
            // Fast path: no escapes. ASCII text needs no UTF-8 validation (the generic validating initializer is
            // slow enough to dominate parsing JWT claims).
            var highBits: UInt8 = 0
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\"") {
                    let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                    let s = highBits & 0x80 == 0 ? String(decoding: slice, as: UTF8.self) : String(validating: slice, as: UTF8.self)
                    guard let s else { throw error("invalid UTF-8 in string") }
                    index += 1
                    return s
                }
                highBits |= b
                if b == UInt8(ascii: "\\") { break }
                if b < 0x20 { throw error("control character in string") }
                index += 1
            }
            var scalars = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\"") {
                    index += 1
                    guard let s = String(validating: scalars, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
                    return s
                }
                if b < 0x20 { throw error("control character in string") }
                if b != UInt8(ascii: "\\") {
                    scalars.append(b)
                    index += 1
                    continue
                }
                index += 1
                guard index < bytes.count else { break }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""): scalars.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): scalars.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): scalars.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code) {
                        // A high surrogate must be followed by its low half.
                        if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                            index += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            code = 0xFFFD
                        }
                    } else if (0xDC00..<0xE000).contains(code) {
                        code = 0xFFFD
                    }
                    scalars.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
                default:
                    throw error("invalid escape in string")
                }
            }
            throw error("unterminated string")
        }

        mutating func hex4() throws(JSONError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw error("invalid \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[index]
                let d: UInt32
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
                default: throw error("invalid \\u escape")
                }
                v = v << 4 | d
                index += 1
            }
            return v
        }
    }
}

/// Writes `Value` as JSON the way OPA prints it: object keys sorted, sets as sorted arrays.
public enum JSONWriter {
    public static func string(_ value: Value, pretty: Bool = false) -> String {
        var out = ""
        write(value, to: &out, pretty: pretty, indent: 0)
        return out
    }

    public static func write(_ value: Value, to out: inout String, pretty: Bool = false, indent: Int = 0) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.description
        case .string(let s): writeString(s, to: &out)
        case .array(let a): writeArray(a, to: &out, pretty: pretty, indent: indent)
        case .set(let s): writeArray(s.sorted(), to: &out, pretty: pretty, indent: indent)
        case .object(let o):
            if o.isEmpty {
                out += "{}"
                return
            }
            out += "{"
            for (i, key) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                if pretty { newline(&out, indent + 1) }
                // JSON keys are strings: other key kinds are written as their JSON text, quoted.
                if case .string(let s) = key { writeString(s, to: &out) } else { writeString(string(key), to: &out) }
                out += pretty ? ": " : ":"
                write(o[key]!, to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(&out, indent) }
            out += "}"
        }
    }

    private static func writeArray(_ a: [Value], to out: inout String, pretty: Bool, indent: Int) {
        if a.isEmpty {
            out += "[]"
            return
        }
        out += "["
        for (i, v) in a.enumerated() {
            if i > 0 { out += "," }
            if pretty { newline(&out, indent + 1) }
            write(v, to: &out, pretty: pretty, indent: indent + 1)
        }
        if pretty { newline(&out, indent) }
        out += "]"
    }

    private static func newline(_ out: inout String, _ indent: Int) {
        out += "\n"
        var left = indent
        while left > 0 {
            let n = min(left, indentation.count - 1)
            out += indentation[n]
            left -= n
        }
    }

    /// Two spaces per level, for up to 16 levels at a time.
    private static let indentation = (0...16).map { String(repeating: "  ", count: $0) }

    public static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                // Escaped as Go's encoding/json does, so output matches OPA byte for byte.
                out += "\\u" + hex4(scalar.value)
            default:
                if scalar.value < 0x20 {
                    out += "\\u" + hex4(scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func hex4(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 4 - s.count) + s
    }
}
