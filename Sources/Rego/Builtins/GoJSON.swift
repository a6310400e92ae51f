import PolicyCore

/// JSON text read the way OPA's `json.unmarshal` reads it: Go's stream decoder for the first value (numbers
/// keep their text, a repeated key keeps its last value, bad surrogates become U+FFFD), then one more token,
/// which must not be there. Errors carry Go's messages (`invalid character 'x' looking for beginning of value`,
/// `unexpected EOF`).
enum GoJSON {
    struct Failure: Error {
        var message: String
    }

    static let maximumDepth = 10_000

    /// The value of `text`, or Go's error message.
    static func decode(_ text: String) -> Result<Value, Failure> {
        var parser = Parser(bytes: Array(text.utf8))
        parser.skipSpace()
        guard parser.i < parser.bytes.count else { return .failure(Failure(message: "EOF")) }
        let value: Value
        do {
            value = try parser.value(depth: 0)
        } catch {
            return .failure(error)
        }
        // The decoder then reads one more token: anything there is an error, except `null`, which reads as no
        // token at all.
        parser.skipSpace()
        guard parser.i < parser.bytes.count else { return .success(value) }
        let c = parser.bytes[parser.i]
        switch c {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            return .failure(trailing(String(Unicode.Scalar(c))))
        case UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: ","), UInt8(ascii: ":"):
            return .failure(Failure(message: "invalid character \(quoteByte(c)) looking for beginning of value"))
        default:
            do {
                let next = try parser.value(depth: 0)
                switch next {
                case .null: return .success(value)
                case .bool(let b): return .failure(trailing("%!s(bool=\(b))"))
                case .string(let s): return .failure(trailing(s))
                case .number(let n): return .failure(trailing(n.text))
                default: return .success(value)
                }
            } catch {
                return .failure(error)
            }
        }
    }

    private static func trailing(_ token: String) -> Failure {
        Failure(message: "error: invalid character '\(token)' after top-level value")
    }

    /// Whether `text` is exactly one JSON value (Go's `json.Valid`).
    static func isValid(_ text: String) -> Bool {
        var parser = Parser(bytes: Array(text.utf8))
        parser.skipSpace()
        guard (try? parser.value(depth: 0)) != nil else { return false }
        parser.skipSpace()
        return parser.i == parser.bytes.count
    }

    /// A byte as Go's scanner quotes it in messages.
    static func quoteByte(_ c: UInt8) -> String {
        if c == UInt8(ascii: "'") { return "'\\''" }
        if c == UInt8(ascii: "\"") { return "'\"'" }
        let quoted = GoQuote.quote(String(Unicode.Scalar(c)))
        return "'" + quoted.dropFirst().dropLast() + "'"
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        func unexpectedEOF() -> Failure { Failure(message: "unexpected EOF") }

        func invalid(_ context: String) -> Failure {
            Failure(message: "invalid character \(GoJSON.quoteByte(bytes[i])) \(context)")
        }

        mutating func value(depth: Int) throws(Failure) -> Value {
            guard depth < GoJSON.maximumDepth else { throw Failure(message: "exceeded max depth") }
            skipSpace()
            guard i < bytes.count else { throw unexpectedEOF() }
            switch bytes[i] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw invalid("looking for beginning of value")
            }
        }

        mutating func literal(_ word: String) throws(Failure) {
            let expected = Array(word.utf8)
            i += 1
            for k in 1..<expected.count {
                guard i < bytes.count else { throw unexpectedEOF() }
                guard bytes[i] == expected[k] else {
                    throw invalid("in literal \(word) (expecting \(GoJSON.quoteByte(expected[k])))")
                }
                i += 1
            }
        }

        mutating func object(depth: Int) throws(Failure) -> Value {
            i += 1
            var members: [Value: Value] = [:]
            skipSpace()
            guard i < bytes.count else { throw unexpectedEOF() }
            if bytes[i] == UInt8(ascii: "}") {
                i += 1
                return .object(members)
            }
            while true {
                skipSpace()
                guard i < bytes.count else { throw unexpectedEOF() }
                guard bytes[i] == UInt8(ascii: "\"") else { throw invalid("looking for beginning of object key string") }
                let key = try string()
                skipSpace()
                guard i < bytes.count else { throw unexpectedEOF() }
                guard bytes[i] == UInt8(ascii: ":") else { throw invalid("after object key") }
                i += 1
                let v = try value(depth: depth + 1)
                // The last of repeated keys wins; the first spelling of the key is kept.
                members[.string(key)] = v
                skipSpace()
                guard i < bytes.count else { throw unexpectedEOF() }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                } else if bytes[i] == UInt8(ascii: "}") {
                    i += 1
                    return .object(members)
                } else {
                    throw invalid("after object key:value pair")
                }
            }
        }

        mutating func array(depth: Int) throws(Failure) -> Value {
            i += 1
            var elements: [Value] = []
            skipSpace()
            guard i < bytes.count else { throw unexpectedEOF() }
            if bytes[i] == UInt8(ascii: "]") {
                i += 1
                return .array(elements)
            }
            while true {
                elements.append(try value(depth: depth + 1))
                skipSpace()
                guard i < bytes.count else { throw unexpectedEOF() }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                } else if bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    return .array(elements)
                } else {
                    throw invalid("after array element")
                }
            }
        }

        mutating func string() throws(Failure) -> String {
            i += 1
            var out: [UInt8] = []
            while true {
                guard i < bytes.count else { throw unexpectedEOF() }
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    return GoUTF8.decode(out)
                }
                if c < 0x20 { throw invalid("in string literal") }
                if c != UInt8(ascii: "\\") {
                    out.append(c)
                    i += 1
                    continue
                }
                i += 1
                guard i < bytes.count else { throw unexpectedEOF() }
                switch bytes[i] {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code) {
                        // A high surrogate takes the low one that follows; anything else is U+FFFD.
                        let save = i
                        if i + 2 < bytes.count, bytes[i + 1] == UInt8(ascii: "\\"), bytes[i + 2] == UInt8(ascii: "u") {
                            i += 2
                            let low = try hex4()
                            if (0xDC00..<0xE000).contains(low) {
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                code = 0xFFFD
                                i = save
                            }
                        } else {
                            code = 0xFFFD
                        }
                    } else if (0xDC00..<0xE000).contains(code) {
                        code = 0xFFFD
                    }
                    out.append(contentsOf: String(Unicode.Scalar(code) ?? "\u{FFFD}").utf8)
                default:
                    throw invalid("in string escape code")
                }
                i += 1
            }
        }

        /// Four hex digits after `\u`; the cursor is on the `u` and ends on the last digit.
        mutating func hex4() throws(Failure) -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 {
                i += 1
                guard i < bytes.count else { throw unexpectedEOF() }
                guard let d = RE2Parser.hexValue(Unicode.Scalar(bytes[i])) else {
                    throw invalid("in \\u hexadecimal character escape")
                }
                v = v << 4 | d
            }
            return v
        }

        mutating func number() throws(Failure) -> Number {
            let start = i
            func digit(_ k: Int) -> Bool { k < bytes.count && bytes[k] >= 0x30 && bytes[k] <= 0x39 }
            if bytes[i] == UInt8(ascii: "-") {
                i += 1
                guard i < bytes.count else { throw unexpectedEOF() }
                guard digit(i) else { throw invalid("in numeric literal") }
            }
            if bytes[i] == UInt8(ascii: "0") {
                i += 1
            } else {
                while digit(i) { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard i < bytes.count else { throw unexpectedEOF() }
                guard digit(i) else { throw invalid("after decimal point in numeric literal") }
                while digit(i) { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard i < bytes.count else { throw unexpectedEOF() }
                guard digit(i) else { throw invalid("in exponent of numeric literal") }
                while digit(i) { i += 1 }
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            guard let n = Number(literal: Substring(text)) else { throw Failure(message: "invalid number \(text)") }
            return n
        }
    }

    // MARK: Writing, as Go's encoding/json writes

    /// Compact JSON with object keys written as strings and sorted as strings, as Go marshals a map.
    static func marshal(_ value: Value) -> String {
        var out = ""
        write(value, to: &out, prefix: nil, indent: nil, depth: 0)
        return out
    }

    /// `json.MarshalIndent`: every line starts with `prefix`, nested lines add `indent` per level.
    static func marshalIndented(_ value: Value, prefix: String, indent: String) -> String {
        var out = prefix
        write(value, to: &out, prefix: prefix, indent: indent, depth: 0)
        return out
    }

    private static func write(_ value: Value, to out: inout String, prefix: String?, indent: String?, depth: Int) {
        func newline(_ level: Int) {
            guard let indent, let prefix else { return }
            out += "\n" + prefix + String(repeating: indent, count: level)
        }
        switch value {
        case .array(let a):
            if a.isEmpty {
                out += "[]"
                return
            }
            out += "["
            for (k, e) in a.enumerated() {
                if k > 0 { out += "," }
                newline(depth + 1)
                write(e, to: &out, prefix: prefix, indent: indent, depth: depth + 1)
            }
            newline(depth)
            out += "]"
        case .set(let s):
            write(.array(s.sorted()), to: &out, prefix: prefix, indent: indent, depth: depth)
        case .object(let o):
            if o.isEmpty {
                out += "{}"
                return
            }
            // Keys become strings first (non-string keys as their JSON text), then sort as strings.
            var entries: [(key: String, value: Value)] = []
            for (k, v) in o {
                let key: String
                if case .string(let s) = k { key = s } else { key = marshal(k) }
                entries.append((key, v))
            }
            entries.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            out += "{"
            for (k, entry) in entries.enumerated() {
                if k > 0 { out += "," }
                newline(depth + 1)
                JSONWriter.writeString(entry.key, to: &out)
                out += indent == nil ? ":" : ": "
                write(entry.value, to: &out, prefix: prefix, indent: indent, depth: depth + 1)
            }
            newline(depth)
            out += "}"
        default:
            JSONWriter.write(value, to: &out)
        }
    }
}
