import Crypto
import PolicyCore

/// The digests OPA's bundle signatures hold: SHA-256 of a file's bytes, except for structured files
/// (`data.json`, `data.yaml`, `.manifest`), whose JSON is hashed in a canonical form so whitespace and key order do
/// not matter: objects as `{` key `:` value `,` ... `}` with keys in byte order, arrays as `[` ... `]`, strings as
/// Go's encoding/json writes them (HTML characters unescaped), numbers as their literal text.
public enum BundleHash {
    /// Names OPA hashes as structured documents (by base name).
    public static func isStructured(_ path: String) -> Bool {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        return base == "data.json" || base == "data.yaml" || base == "data.yml" || base == ".manifest"
    }

    /// The lowercase hex SHA-256 of a bundle file as OPA computes it for `.signatures.json`.
    public static func digest(path: String, bytes: [UInt8]) throws(CanonicalJSON.Error) -> String {
        let input: [UInt8]
        if isStructured(path) {
            if path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
                let value: Value
                do {
                    value = try BundleData.yamlValue(bytes, path: path)
                } catch {
                    throw CanonicalJSON.Error(message: error.message)
                }
                input = try CanonicalJSON.canonical(value: value)
            } else {
                input = try CanonicalJSON.canonical(bytes)
            }
        } else {
            input = bytes
        }
        return LowercaseHex.encode(SHA256.hash(data: input))
    }
}

/// OPA's canonical JSON for signature digests (see `BundleHash`), read straight from the text so numbers keep
/// their literal form, as Go's `json.Number` keeps it.
public enum CanonicalJSON {
    public struct Error: Swift.Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public static let maxDepth = 1000

    public static func canonical(_ text: [UInt8]) throws(Error) -> [UInt8] {
        var parser = Parser(bytes: text)
        parser.skipSpace()
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        try parser.value(into: &out, depth: 0)
        parser.skipSpace()
        guard parser.index == text.count else { throw Error(message: "unexpected text after the JSON value") }
        return out
    }

    /// The canonical form of a value read from YAML (numbers in Warden's JSON form).
    public static func canonical(value: Value) throws(Error) -> [UInt8] {
        var out: [UInt8] = []
        write(value, into: &out)
        return out
    }

    static func write(_ value: Value, into out: inout [UInt8]) {
        switch value {
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            let sorted = members.compactMap { k, v in k.stringValue.map { (Array($0.utf8), v) } }
                .sorted { $0.0.lexicographicallyPrecedes($1.0) }
            for (i, (key, member)) in sorted.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(Array(String(decoding: key, as: UTF8.self).unicodeScalars), into: &out)
                out.append(UInt8(ascii: ":"))
                write(member, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .string(let s):
            writeString(Array(s.unicodeScalars), into: &out)
        default:
            out += Array(JSONWriter.string(value).utf8)
        }
    }

    /// A string as Go's encoding/json writes it with HTML escaping off.
    static func writeString(_ scalars: [Unicode.Scalar], into out: inout [UInt8]) {
        let hexDigits = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for scalar in scalars {
            switch scalar {
            case "\"": out += [0x5c, 0x22]
            case "\\": out += [0x5c, 0x5c]
            case "\u{08}": out += [0x5c, UInt8(ascii: "b")]
            case "\u{0c}": out += [0x5c, UInt8(ascii: "f")]
            case "\n": out += [0x5c, UInt8(ascii: "n")]
            case "\r": out += [0x5c, UInt8(ascii: "r")]
            case "\t": out += [0x5c, UInt8(ascii: "t")]
            case "\u{2028}", "\u{2029}":
                out += Array("\\u202".utf8) + [scalar == "\u{2028}" ? UInt8(ascii: "8") : UInt8(ascii: "9")]
            default:
                if scalar.value < 0x20 {
                    out += Array("\\u00".utf8) + [hexDigits[Int(scalar.value >> 4)], hexDigits[Int(scalar.value & 0xf)]]
                } else {
                    out += Array(String(scalar).utf8)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
            // A UTF-8 byte order mark is not JSON; Go refuses it too, so leave it to fail.
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[index]) { index += 1 }
        }

        func fail(_ message: String) -> Error { Error(message: "\(message) at byte \(index)") }

        mutating func expect(_ literal: String) throws(Error) {
            let l = Array(literal.utf8)
            guard index + l.count <= bytes.count, Array(bytes[index..<index + l.count]) == l else {
                throw fail("invalid JSON")
            }
            index += l.count
        }

        mutating func value(into out: inout [UInt8], depth: Int) throws(Error) {
            guard depth < CanonicalJSON.maxDepth else { throw fail("JSON nested deeper than \(CanonicalJSON.maxDepth)") }
            guard index < bytes.count else { throw fail("unexpected end of JSON") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                try object(into: &out, depth: depth)
            case UInt8(ascii: "["):
                index += 1
                out.append(UInt8(ascii: "["))
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                    index += 1
                } else {
                    var first = true
                    while true {
                        skipSpace()
                        if !first { out.append(UInt8(ascii: ",")) }
                        first = false
                        try value(into: &out, depth: depth + 1)
                        skipSpace()
                        guard index < bytes.count else { throw fail("unexpected end of JSON") }
                        if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                        try expect("]")
                        break
                    }
                }
                out.append(UInt8(ascii: "]"))
            case UInt8(ascii: "\""):
                _ = try string(into: &out)
            case UInt8(ascii: "t"): try expect("true"); out += Array("true".utf8)
            case UInt8(ascii: "f"): try expect("false"); out += Array("false".utf8)
            case UInt8(ascii: "n"): try expect("null"); out += Array("null".utf8)
            default:
                let start = index
                if bytes[index] == UInt8(ascii: "-") { index += 1 }
                func digits() -> Int {
                    let s = index
                    while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
                    return index - s
                }
                let whole = index
                guard digits() > 0 else { throw fail("invalid JSON") }
                if bytes[whole] == 0x30, index - whole > 1 { throw fail("invalid number") }
                if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                    index += 1
                    guard digits() > 0 else { throw fail("invalid number") }
                }
                if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                    index += 1
                    if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                    guard digits() > 0 else { throw fail("invalid number") }
                }
                out += bytes[start..<index]
            }
        }

        /// An object's members written in key order (bytewise, over the decoded keys; the last of duplicate keys
        /// kept, as Go keeps it). Members are written straight into `out` as they come; only when their keys are not
        /// already strictly in order are they moved, so data written sorted costs no copy.
        mutating func object(into out: inout [UInt8], depth: Int) throws(Error) {
            let bodyStart = out.count + 1
            out.append(UInt8(ascii: "{"))
            var members: [(key: ArraySlice<UInt8>, range: Range<Int>)] = []
            var inOrder = true
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                out.append(UInt8(ascii: "}"))
                return
            }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                if !members.isEmpty { out.append(UInt8(ascii: ",")) }
                let memberStart = out.count
                let key = try string(into: &out)
                skipSpace()
                try expect(":")
                skipSpace()
                out.append(UInt8(ascii: ":"))
                try value(into: &out, depth: depth + 1)
                if let last = members.last, !last.key.lexicographicallyPrecedes(key) { inOrder = false }
                members.append((key, memberStart..<out.count))
                skipSpace()
                guard index < bytes.count else { throw fail("unexpected end of JSON") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                try expect("}")
                break
            }
            if !inOrder {
                let body = Array(out[bodyStart...])
                out.removeSubrange(bodyStart...)
                // A stable sort keeps duplicates in document order: the last of each run of equal keys wins.
                let order = members.indices.sorted {
                    members[$0].key.lexicographicallyPrecedes(members[$1].key)
                        || (members[$0].key == members[$1].key && $0 < $1)
                }
                var written = false
                for (n, i) in order.enumerated() {
                    if n + 1 < order.count, members[order[n + 1]].key == members[i].key { continue }
                    if written { out.append(UInt8(ascii: ",")) }
                    written = true
                    let range = members[i].range
                    out += body[(range.lowerBound - bodyStart)..<(range.upperBound - bodyStart)]
                }
            }
            out.append(UInt8(ascii: "}"))
        }

        /// Writes a string in canonical form and returns its decoded UTF-8 bytes (for key order). Plain strings —
        /// printable ASCII without escapes, almost every key and value — are copied as they are.
        mutating func string(into out: inout [UInt8]) throws(Error) -> ArraySlice<UInt8> {
            var end = index + 1
            while end < bytes.count {
                let b = bytes[end]
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 || b >= 0x80 { break }
                end += 1
            }
            if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
                out += bytes[index...end]
                let content = bytes[(index + 1)..<end]
                index = end + 1
                return content
            }
            let scalars = try string()
            CanonicalJSON.writeString(scalars, into: &out)
            return ArraySlice(String(String.UnicodeScalarView(scalars)).utf8)
        }

        /// A string's scalars, escapes decoded; invalid UTF-8 and lone surrogates become U+FFFD, as in Go.
        mutating func string() throws(Error) -> [Unicode.Scalar] {
            index += 1
            var scalars: [Unicode.Scalar] = []
            var run: [UInt8] = []
            func flush() {
                if !run.isEmpty {
                    scalars += String(decoding: run, as: UTF8.self).unicodeScalars
                    run.removeAll(keepingCapacity: true)
                }
            }
            while true {
                guard index < bytes.count else { throw fail("unterminated string") }
                let b = bytes[index]
                if b == UInt8(ascii: "\"") {
                    index += 1
                    flush()
                    return scalars
                }
                if b < 0x20 { throw fail("control character in string") }
                if b != UInt8(ascii: "\\") {
                    run.append(b)
                    index += 1
                    continue
                }
                flush()
                index += 1
                guard index < bytes.count else { throw fail("unterminated string") }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0c}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    let unit = try hex4()
                    if (0xd800..<0xdc00).contains(unit), index + 1 < bytes.count, bytes[index] == 0x5c,
                       bytes[index + 1] == UInt8(ascii: "u")
                    {
                        let save = index
                        index += 2
                        let low = try hex4()
                        if (0xdc00..<0xe000).contains(low) {
                            scalars.append(Unicode.Scalar(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))!)
                        } else {
                            scalars.append("\u{fffd}")
                            index = save
                        }
                    } else {
                        scalars.append(Unicode.Scalar(unit) ?? "\u{fffd}")
                    }
                default:
                    throw fail("invalid escape in string")
                }
            }
        }

        mutating func hex4() throws(Error) -> UInt32 {
            guard index + 4 <= bytes.count else { throw fail("invalid \\u escape") }
            var v: UInt32 = 0
            for b in bytes[index..<index + 4] {
                let d: UInt32
                switch b {
                case 0x30...0x39: d = UInt32(b - 0x30)
                case 0x61...0x66: d = UInt32(b - 0x61 + 10)
                case 0x41...0x46: d = UInt32(b - 0x41 + 10)
                default: throw fail("invalid \\u escape")
                }
                v = v << 4 | d
            }
            index += 4
            return v
        }
    }
}
