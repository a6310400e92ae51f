import PolicyCore

/// base64, base64url, hex, JSON and URL query encodings, with Go's decoders and their error texts.
extension Builtins {
    static let encoding: [Builtin] = [
        stringToString("base64.encode") { s throws(BuiltinError) in Base64.encode(Array(s.utf8), url: false, pad: true) },
        stringToString("base64.decode") { s throws(BuiltinError) in
            GoUTF8.decode(try Base64.decode(Array(s.utf8), url: false))
        },
        Builtin("base64.is_valid", arity: 1, signature: .parse("(x: string) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            let s = try string(operands, 0)
            return .bool((try? Base64.decode(Array(s.utf8), url: false)) != nil)
        },
        stringToString("base64url.encode") { s throws(BuiltinError) in Base64.encode(Array(s.utf8), url: true, pad: true) },
        stringToString("base64url.encode_no_pad") { s throws(BuiltinError) in
            Base64.encode(Array(s.utf8), url: true, pad: false)
        },
        stringToString("base64url.decode") { s throws(BuiltinError) in
            // Missing padding is restored first (RFC 7515 appendix C); a length of 1 modulo 4 cannot be.
            var text = s
            if !text.hasSuffix("=") {
                switch text.utf8.count % 4 {
                case 2: text += "=="
                case 3: text += "="
                case 1: throw BuiltinError(.builtinError, "illegal base64url string: \(s)")
                default: break
                }
            }
            return GoUTF8.decode(try Base64.decode(Array(text.utf8), url: true))
        },
        stringToString("hex.encode") { s throws(BuiltinError) in LowercaseHex.encode(s.utf8) },
        stringToString("hex.decode") { s throws(BuiltinError) in GoUTF8.decode(try hexDecode(Array(s.utf8))) },
        Builtin("json.marshal", arity: 1, signature: .parse("(x: any) -> y: string")) { operands, _ in
            .string(GoJSON.marshal(operands[0]))
        },
        Builtin(
            "json.marshal_with_options", arity: 2,
            signature: .parse(
                "(x: any, opts: object<indent: string, prefix: string, pretty: boolean>[string: any]) -> y: string")
        ) { operands, _ throws(BuiltinError) in
            let options = try object(operands, 1)
            var indent = "\t", prefix = ""
            var implicitPretty = false
            var explicitPretty: Bool?
            for key in options.keys.sorted() {
                guard case .string(let name) = key else { continue }
                let value = options[key]!
                switch name {
                case "prefix", "indent":
                    guard case .string(let s) = value else {
                        throw BuiltinError(.typeError, "operand 2 key \(GoQuote.quote(name)) failed cast to string: "
                            + "operand 0 must be string but got \(value.typeName)")
                    }
                    if name == "prefix" { prefix = s } else { indent = s }
                    implicitPretty = true
                case "pretty":
                    guard case .bool(let b) = value else {
                        throw BuiltinError(.typeError, "operand 2 key \(GoQuote.quote(name)) failed cast to bool")
                    }
                    explicitPretty = b
                default:
                    throw BuiltinError(.typeError, "operand 2 object contained unknown key \(GoQuote.quote(name))")
                }
            }
            guard explicitPretty ?? implicitPretty else { return .string(GoJSON.marshal(operands[0])) }
            return .string(GoJSON.marshalIndented(operands[0], prefix: prefix, indent: indent))
        },
        Builtin("json.unmarshal", arity: 1, signature: .parse("(x: string) -> y: any")) {
            operands, _ throws(BuiltinError) in
            switch GoJSON.decode(try string(operands, 0)) {
            case .success(let v): return v
            case .failure(let f): throw BuiltinError(.builtinError, f.message)
            }
        },
        Builtin("json.is_valid", arity: 1, signature: .parse("(x: string) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            .bool(GoJSON.isValid(try string(operands, 0)))
        },
        stringToString("urlquery.encode") { s throws(BuiltinError) in URLQuery.escape(s) },
        stringToString("urlquery.decode") { s throws(BuiltinError) in try URLQuery.unescape(s) },
        Builtin(
            "urlquery.encode_object", arity: 1,
            signature: .parse("(object: object[string: any<string, array[string], set[string]>]) -> y: string")
        ) { operands, _ throws(BuiltinError) in
            let o = try object(operands, 0)
            let bad = BuiltinError(.typeError, "operand 1 values must be string, array[string], or set[string]")
            var pairs: [(String, [String])] = []
            for (k, v) in o {
                guard case .string(let key) = k else { throw bad }
                var values: [String] = []
                switch v {
                case .string(let s): values = [s]
                case .array(let a):
                    for e in a {
                        guard case .string(let s) = e else { throw bad }
                        values.append(s)
                    }
                case .set(let set):
                    for e in set.sorted() {
                        guard case .string(let s) = e else { throw bad }
                        values.append(s)
                    }
                default: throw bad
                }
                pairs.append((key, values))
            }
            pairs.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            var parts: [String] = []
            for (key, values) in pairs {
                for v in values { parts.append(URLQuery.escape(key) + "=" + URLQuery.escape(v)) }
            }
            return .string(parts.joined(separator: "&"))
        },
        Builtin("urlquery.decode_object", arity: 1, signature: .parse("(x: string) -> object: object[string: array[string]]")) {
            operands, _ throws(BuiltinError) in
            var result: [Value: Value] = [:]
            var firstError: BuiltinError?
            for segment in try string(operands, 0).split(separator: "&", omittingEmptySubsequences: false) {
                if segment.contains(";") {
                    firstError = firstError ?? BuiltinError(.builtinError, "invalid semicolon separator in query")
                    continue
                }
                if segment.isEmpty { continue }
                let parts = segment.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                do throws(BuiltinError) {
                    let key = try URLQuery.unescape(String(parts[0]))
                    let value = try URLQuery.unescape(parts.count > 1 ? String(parts[1]) : "")
                    var list = result[.string(key)]?.arrayValue ?? []
                    list.append(.string(value))
                    result[.string(key)] = .array(list)
                } catch {
                    firstError = firstError ?? error
                }
            }
            if let firstError { throw firstError }
            return .object(result)
        },
    ]

    private static func stringToString(_ name: String, _ map: @escaping @Sendable (String) throws(BuiltinError) -> String)
        -> Builtin
    {
        Builtin(name, arity: 1, signature: .parse("(x: string) -> y: string")) { operands, _ throws(BuiltinError) in
            .string(try map(try string(operands, 0)))
        }
    }

    /// Go's `hex.DecodeString`: a bad character is reported before an odd length.
    static func hexDecode(_ src: [UInt8]) throws(BuiltinError) -> [UInt8] {
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        func invalid(_ c: UInt8) -> BuiltinError {
            let scalar = Unicode.Scalar(c)
            var hex = String(c, radix: 16).uppercased()
            hex = String(repeating: "0", count: 4 - hex.count) + hex
            let shown = GoQuote.isPrintable(scalar) ? " '\(scalar)'" : ""
            return BuiltinError(.builtinError, "encoding/hex: invalid byte: U+\(hex)\(shown)")
        }
        var out: [UInt8] = []
        var j = 1
        while j < src.count {
            guard let a = value(src[j - 1]) else { throw invalid(src[j - 1]) }
            guard let b = value(src[j]) else { throw invalid(src[j]) }
            out.append(a << 4 | b)
            j += 2
        }
        if src.count % 2 == 1 {
            if value(src[j - 1]) == nil { throw invalid(src[j - 1]) }
            throw BuiltinError(.builtinError, "encoding/hex: odd length hex string")
        }
        return out
    }
}

/// Base64 as Go's `encoding/base64` writes and reads it (standard and URL alphabets, padded), with its error
/// offsets.
enum Base64 {
    static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let urlSafe = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8], url: Bool, pad: Bool) -> String {
        let alphabet = url ? urlSafe : standard
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], alphabet[Int(v & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            var v = UInt32(bytes[i]) << 16
            if rest == 2 { v |= UInt32(bytes[i + 1]) << 8 }
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)]]
            if rest == 2 { out.append(alphabet[Int(v >> 6 & 63)]) }
            if pad { out += [UInt8](repeating: UInt8(ascii: "="), count: 3 - rest) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ src: [UInt8], url: Bool) throws(BuiltinError) -> [UInt8] {
        var map = [UInt8](repeating: 0xFF, count: 256)
        for (k, c) in (url ? urlSafe : standard).enumerated() { map[Int(c)] = UInt8(k) }
        func corrupt(_ at: Int) -> BuiltinError { BuiltinError(.builtinError, "illegal base64 data at input byte \(at)") }
        let isNewline: (UInt8) -> Bool = { $0 == 0x0A || $0 == 0x0D }
        var out: [UInt8] = []
        var si = 0
        while si < src.count {
            // One quantum of up to four symbols; newlines are skipped.
            var buffer = [UInt8](repeating: 0, count: 4)
            var length = 4
            var j = 0
            var trailingError: BuiltinError?
            quantum: while j < 4 {
                if si == src.count {
                    if j == 0 { return out }
                    // Padding is required, so a short final quantum is corrupt.
                    throw corrupt(si - j)
                }
                let c = src[si]
                si += 1
                let v = map[Int(c)]
                if v != 0xFF {
                    buffer[j] = v
                    j += 1
                    continue
                }
                if isNewline(c) { continue }
                guard c == UInt8(ascii: "=") else { throw corrupt(si - 1) }
                switch j {
                case 0, 1:
                    throw corrupt(si - 1)
                case 2:
                    while si < src.count, isNewline(src[si]) { si += 1 }
                    if si == src.count { throw corrupt(src.count) }
                    guard src[si] == UInt8(ascii: "=") else { throw corrupt(si - 1) }
                    si += 1
                default:
                    break
                }
                while si < src.count, isNewline(src[si]) { si += 1 }
                if si < src.count { trailingError = corrupt(si) }
                length = j
                break quantum
            }
            let v = UInt32(buffer[0]) << 18 | UInt32(buffer[1]) << 12 | UInt32(buffer[2]) << 6 | UInt32(buffer[3])
            let decoded = [UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
            out += decoded.prefix(length - 1)
            if let trailingError { throw trailingError }
        }
        return out
    }
}

/// Go's `url.QueryEscape` and `url.QueryUnescape`.
enum URLQuery {
    static func escape(_ s: String) -> String {
        var out: [UInt8] = []
        let hex = Array("0123456789ABCDEF".utf8)
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.append(c)
            case UInt8(ascii: " "):
                out.append(UInt8(ascii: "+"))
            default:
                out += [UInt8(ascii: "%"), hex[Int(c >> 4)], hex[Int(c & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unescape(_ s: String) throws(BuiltinError) -> String {
        let bytes = Array(s.utf8)
        func hexValue(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "%"):
                guard i + 2 < bytes.count, let a = hexValue(bytes[i + 1]), let b = hexValue(bytes[i + 2]) else {
                    let bad = String(decoding: bytes[i..<min(bytes.count, i + 3)], as: UTF8.self)
                    throw BuiltinError(.builtinError, "invalid URL escape \(GoQuote.quote(bad))")
                }
                out.append(a << 4 | b)
                i += 3
            case UInt8(ascii: "+"):
                out.append(UInt8(ascii: " "))
                i += 1
            default:
                out.append(bytes[i])
                i += 1
            }
        }
        return GoUTF8.decode(out)
    }
}
