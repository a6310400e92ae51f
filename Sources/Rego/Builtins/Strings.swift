import PolicyCore

/// The string builtins. Positions and lengths count Unicode code points, as OPA counts runes; case mapping and
/// white space follow Go's Unicode tables.
extension Builtins {
    static let strings: [Builtin] = [
        Builtin(
            "concat", arity: 2,
            signature: .parse("(delimiter: string, collection: any<array[string], set[string]>) -> output: string")
        ) { operands, _ throws(BuiltinError) in
            let delimiter = try string(operands, 0)
            guard case .array = operands[1] else {
                guard case .set = operands[1] else { throw oneOf(1, ["set", "array"], got: operands[1]) }
                return .string(try strings(operands, 1).joined(separator: delimiter))
            }
            return .string(try strings(operands, 1).joined(separator: delimiter))
        },
        stringTest("contains", "(haystack: string, needle: string) -> result: boolean") { a, b in
            b.isEmpty || a.utf8.firstRange(of: b.utf8) != nil
        },
        stringTest("startswith", "(search: string, base: string) -> result: boolean") { a, b in
            a.utf8.starts(with: b.utf8)
        },
        stringTest("endswith", "(search: string, base: string) -> result: boolean") { a, b in
            a.utf8.reversed().starts(with: b.utf8.reversed())
        },
        Builtin("indexof", arity: 2, signature: .parse("(haystack: string, needle: string) -> output: number")) {
            operands, _ throws(BuiltinError) in
            let haystack = Array(try string(operands, 0).unicodeScalars)
            let needle = Array(try string(operands, 1).unicodeScalars)
            guard !needle.isEmpty else { throw BuiltinError(.builtinError, "empty search character") }
            return .int(firstIndex(of: needle, in: haystack, from: 0) ?? -1)
        },
        Builtin("indexof_n", arity: 2, signature: .parse("(haystack: string, needle: string) -> output: array[number]")) {
            operands, _ throws(BuiltinError) in
            let haystack = Array(try string(operands, 0).unicodeScalars)
            let needle = Array(try string(operands, 1).unicodeScalars)
            guard !needle.isEmpty else { throw BuiltinError(.builtinError, "empty search character") }
            // Every start position, overlapping ones included.
            var found: [Value] = []
            var start = 0
            while let i = firstIndex(of: needle, in: haystack, from: start) {
                found.append(.int(i))
                start = i + 1
            }
            return .array(found)
        },
        stringMap("lower") { GoCase.lower($0) },
        stringMap("upper") { GoCase.upper($0) },
        Builtin("replace", arity: 3, signature: .parse("(x: string, old: string, new: string) -> y: string")) {
            operands, _ throws(BuiltinError) in
            let s = try string(operands, 0)
            let old = try string(operands, 1)
            let new = try string(operands, 2)
            return .string(replacingPatterns(s, [(Array(old.utf8), new)]))
        },
        Builtin("split", arity: 2, signature: .parse("(x: string, delimiter: string) -> ys: array[string]")) {
            operands, _ throws(BuiltinError) in
            let s = try string(operands, 0)
            let delimiter = try string(operands, 1)
            return .array(split(s, delimiter).map(Value.string))
        },
        Builtin(
            "substring", arity: 3,
            signature: .parse("(value: string, offset: number, length: number) -> output: string")
        ) { operands, _ throws(BuiltinError) in
            let scalars = Array(try string(operands, 0).unicodeScalars)
            let offset = try integer(operands, 1)
            let length = try integer(operands, 2)
            guard offset >= 0 else { throw BuiltinError(.builtinError, "negative offset") }
            guard offset < scalars.count else { return .string("") }
            // A negative length, or one past the end, takes the rest.
            let end = length < 0 ? scalars.count : min(scalars.count, offset + length)
            var out = String.UnicodeScalarView()
            out.append(contentsOf: scalars[offset..<end])
            return .string(String(out))
        },
        trimming("trim") { s, cutset in trimScalars(s, in: cutset, leading: true, trailing: true) },
        trimming("trim_left") { s, cutset in trimScalars(s, in: cutset, leading: true, trailing: false) },
        trimming("trim_right") { s, cutset in trimScalars(s, in: cutset, leading: false, trailing: true) },
        Builtin("trim_prefix", arity: 2, signature: .parse("(value: string, prefix: string) -> output: string")) {
            operands, _ throws(BuiltinError) in
            let s = try string(operands, 0)
            let prefix = try string(operands, 1)
            guard s.utf8.starts(with: prefix.utf8) else { return .string(s) }
            return .string(String(decoding: s.utf8.dropFirst(prefix.utf8.count), as: UTF8.self))
        },
        Builtin("trim_suffix", arity: 2, signature: .parse("(value: string, suffix: string) -> output: string")) {
            operands, _ throws(BuiltinError) in
            let s = try string(operands, 0)
            let suffix = try string(operands, 1)
            guard s.utf8.reversed().starts(with: suffix.utf8.reversed()) else { return .string(s) }
            return .string(String(decoding: s.utf8.dropLast(suffix.utf8.count), as: UTF8.self))
        },
        Builtin("trim_space", arity: 1, signature: .parse("(value: string) -> output: string")) {
            operands, _ throws(BuiltinError) in
            let scalars = Array(try string(operands, 0).unicodeScalars)
            var start = 0, end = scalars.count
            while start < end, GoCase.isSpace(scalars[start]) { start += 1 }
            while end > start, GoCase.isSpace(scalars[end - 1]) { end -= 1 }
            var out = String.UnicodeScalarView()
            out.append(contentsOf: scalars[start..<end])
            return .string(String(out))
        },
        Builtin(
            "strings.replace_n", arity: 2,
            signature: .parse("(patterns: object[string: string], value: string) -> output: string")
        ) { operands, _ throws(BuiltinError) in
            let patterns = try object(operands, 0)
            var pairs: [(old: [UInt8], new: String)] = []
            for key in patterns.keys.sorted() {
                guard case .string(let old) = key, case .string(let new)? = patterns[key] else {
                    throw BuiltinError(.typeError, "operand 1 non-string value found in pattern object")
                }
                pairs.append((Array(old.utf8), new))
            }
            let s = try string(operands, 1)
            return .string(replacingPatterns(s, pairs))
        },
        Builtin("sprintf", arity: 2, signature: .parse("(format: string, values: array[any]) -> output: string")) {
            operands, _ throws(BuiltinError) in
            let format = try string(operands, 0)
            let values = try array(operands, 1)
            return .string(GoFormat.sprintf(format, values.map(GoFormat.argument(for:))))
        },
        anyMatch("strings.any_prefix_match") { s, p in s.utf8.starts(with: p.utf8) },
        anyMatch("strings.any_suffix_match") { s, p in s.utf8.reversed().starts(with: p.utf8.reversed()) },
        stringMap("strings.reverse") { s in
            var out = String.UnicodeScalarView()
            out.append(contentsOf: s.unicodeScalars.reversed())
            return String(out)
        },
        Builtin("strings.count", arity: 2, signature: .parse("(search: string, substring: string) -> output: number")) {
            operands, _ throws(BuiltinError) in
            let s = try string(operands, 0)
            let sub = try string(operands, 1)
            // Non-overlapping occurrences; an empty substring occurs between every two code points.
            if sub.isEmpty { return .int(s.unicodeScalars.count + 1) }
            let haystack = Array(s.utf8), needle = Array(sub.utf8)
            var count = 0, i = 0
            while let found = firstIndex(of: needle, in: haystack, from: i) {
                count += 1
                i = found + needle.count
            }
            return .int(count)
        },
    ]

    // MARK: Table helpers

    private static func stringTest(
        _ name: String, _ signature: String, _ test: @escaping @Sendable (String, String) -> Bool
    ) -> Builtin {
        Builtin(name, arity: 2, signature: .parse(signature)) { operands, _ throws(BuiltinError) in
            let a = try string(operands, 0)
            let b = try string(operands, 1)
            return .bool(test(a, b))
        }
    }

    private static func stringMap(_ name: String, _ map: @escaping @Sendable (String) -> String) -> Builtin {
        Builtin(name, arity: 1, signature: .parse("(x: string) -> y: string")) { operands, _ throws(BuiltinError) in
            .string(map(try string(operands, 0)))
        }
    }

    private static func trimming(_ name: String, _ trim: @escaping @Sendable (String, String) -> String) -> Builtin {
        Builtin(name, arity: 2, signature: .parse("(value: string, cutset: string) -> output: string")) {
            operands, _ throws(BuiltinError) in
            let s = try string(operands, 0)
            let cutset = try string(operands, 1)
            return .string(trim(s, cutset))
        }
    }

    private static func anyMatch(_ name: String, _ match: @escaping @Sendable (String, String) -> Bool) -> Builtin {
        let type = "any<string, array[string], set[string]>"
        return Builtin(name, arity: 2, signature: .parse("(search: \(type), base: \(type)) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            let searches = try stringOrStrings(operands, 0)
            let bases = try stringOrStrings(operands, 1)
            return .bool(searches.contains { s in bases.contains { b in match(s, b) } })
        }
    }

    /// A string, or the strings of an array or set.
    private static func stringOrStrings(_ operands: [Value], _ index: Int) throws(BuiltinError) -> [String] {
        switch operands[index] {
        case .string(let s): return [s]
        case .array, .set: return try strings(operands, index)
        default: throw oneOf(index, ["string", "set", "array"], got: operands[index])
        }
    }

    // MARK: Go's string functions

    /// The first index at or after `start` where `needle` occurs in `haystack`.
    static func firstIndex<T: Equatable>(of needle: [T], in haystack: [T], from start: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        var i = start
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0], haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    /// Go's `strings.Split`: an empty delimiter splits into code points.
    static func split(_ s: String, _ delimiter: String) -> [String] {
        if delimiter.isEmpty { return s.unicodeScalars.map { String($0) } }
        let haystack = Array(s.utf8), needle = Array(delimiter.utf8)
        var parts: [String] = []
        var i = 0
        while let found = firstIndex(of: needle, in: haystack, from: i) {
            parts.append(String(decoding: haystack[i..<found], as: UTF8.self))
            i = found + needle.count
        }
        parts.append(String(decoding: haystack[i...], as: UTF8.self))
        return parts
    }

    /// Go's `strings.Trim` family with a cutset of code points.
    static func trimScalars(_ s: String, in cutset: String, leading: Bool, trailing: Bool) -> String {
        let cut = Set(cutset.unicodeScalars)
        if cut.isEmpty { return s }
        let scalars = Array(s.unicodeScalars)
        var start = 0, end = scalars.count
        if leading { while start < end, cut.contains(scalars[start]) { start += 1 } }
        if trailing { while end > start, cut.contains(scalars[end - 1]) { end -= 1 } }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars[start..<end])
        return String(out)
    }

    /// Go's `strings.NewReplacer`, which OPA's `replace` and `strings.replace_n` use. Scanning bytes left to
    /// right, at each position the matching pattern that comes first in `pairs` is replaced and skipped. An empty
    /// pattern matches at every byte position (the end included) but not twice in a row, so it can split a
    /// multi-byte character; the bytes that no longer form UTF-8 read as U+FFFD, one per byte, as Go reads them.
    static func replacingPatterns(_ s: String, _ pairs: [(old: [UInt8], new: String)]) -> String {
        if pairs.isEmpty { return s }
        let bytes = Array(s.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        var previousMatchWasEmpty = false
        while i <= bytes.count {
            var match: (old: [UInt8], new: String)?
            for pair in pairs {
                if pair.old.isEmpty {
                    if previousMatchWasEmpty { continue }
                } else if !(i + pair.old.count <= bytes.count
                    && bytes[i..<(i + pair.old.count)].elementsEqual(pair.old))
                {
                    continue
                }
                match = pair
                break
            }
            if let match {
                out.append(contentsOf: match.new.utf8)
                i += match.old.count
                previousMatchWasEmpty = match.old.isEmpty
                continue
            }
            previousMatchWasEmpty = false
            if i < bytes.count { out.append(bytes[i]) }
            i += 1
        }
        return GoUTF8.decode(out)
    }

}

/// Bytes to text as Go reads them: every byte that does not start a valid UTF-8 sequence is one U+FFFD.
enum GoUTF8 {
    static func decode(_ bytes: [UInt8]) -> String {
        if let valid = String(validating: bytes, as: UTF8.self) { return valid }
        var out = String.UnicodeScalarView()
        var i = 0
        while i < bytes.count {
            if let (scalar, width) = scalar(at: i, in: bytes) {
                out.append(scalar)
                i += width
            } else {
                out.append("\u{FFFD}")
                i += 1
            }
        }
        return String(out)
    }

    /// The code point starting at `i`, when the bytes there are well-formed UTF-8.
    static func scalar(at i: Int, in b: [UInt8]) -> (Unicode.Scalar, Int)? {
        let lead = b[i]
        func continuation(_ k: Int) -> UInt32? {
            guard i + k < b.count, b[i + k] & 0xC0 == 0x80 else { return nil }
            return UInt32(b[i + k] & 0x3F)
        }
        switch lead {
        case 0..<0x80:
            return (Unicode.Scalar(lead), 1)
        case 0xC2..<0xE0:
            guard let c1 = continuation(1) else { return nil }
            return Unicode.Scalar(UInt32(lead & 0x1F) << 6 | c1).map { ($0, 2) }
        case 0xE0..<0xF0:
            guard let c1 = continuation(1), let c2 = continuation(2) else { return nil }
            let v = UInt32(lead & 0x0F) << 12 | c1 << 6 | c2
            guard v >= 0x800, !(0xD800...0xDFFF).contains(v) else { return nil }
            return Unicode.Scalar(v).map { ($0, 3) }
        case 0xF0..<0xF5:
            guard let c1 = continuation(1), let c2 = continuation(2), let c3 = continuation(3) else { return nil }
            let v = UInt32(lead & 0x07) << 18 | c1 << 12 | c2 << 6 | c3
            guard v >= 0x10000, v <= 0x10FFFF else { return nil }
            return Unicode.Scalar(v).map { ($0, 4) }
        default:
            return nil
        }
    }
}

/// Go's simple (one code point to one code point) case mapping and white space.
enum GoCase {
    static func lower(_ s: String) -> String { map(s, upper: false) }
    static func upper(_ s: String) -> String { map(s, upper: true) }

    private static func map(_ s: String, upper: Bool) -> String {
        // ASCII is the common case and maps by arithmetic.
        if s.utf8.allSatisfy({ $0 < 0x80 }) {
            var bytes = Array(s.utf8)
            for i in bytes.indices {
                if upper, bytes[i] >= UInt8(ascii: "a"), bytes[i] <= UInt8(ascii: "z") { bytes[i] -= 32 }
                if !upper, bytes[i] >= UInt8(ascii: "A"), bytes[i] <= UInt8(ascii: "Z") { bytes[i] += 32 }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        var out = String.UnicodeScalarView()
        for scalar in s.unicodeScalars { out.append(upper ? upperScalar(scalar) : lowerScalar(scalar)) }
        return String(out)
    }

    static func lowerScalar(_ c: Unicode.Scalar) -> Unicode.Scalar {
        if c.value == 0x130 { return "i" }
        return single(c.properties.lowercaseMapping) ?? c
    }

    static func upperScalar(_ c: Unicode.Scalar) -> Unicode.Scalar {
        // Greek letters with ypogegrammeni have one-code-point upper cases (their title-case forms) where the
        // full mapping has two.
        switch c.value {
        case 0x1F80...0x1F87, 0x1F90...0x1F97, 0x1FA0...0x1FA7: return Unicode.Scalar(c.value + 8)!
        case 0x1FB3: return "\u{1FBC}"
        case 0x1FC3: return "\u{1FCC}"
        case 0x1FF3: return "\u{1FFC}"
        default: return single(c.properties.uppercaseMapping) ?? c
        }
    }

    /// The mapping when it is one code point; multi-code-point mappings have no simple form and leave the
    /// code point unchanged.
    private static func single(_ mapping: String) -> Unicode.Scalar? {
        var it = mapping.unicodeScalars.makeIterator()
        guard let first = it.next(), it.next() == nil else { return nil }
        return first
    }

    /// Go's `unicode.IsSpace`.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x20, 0x85, 0xA0: return true
        case 0..<0x80: return false
        default: return c.properties.generalCategory == .spaceSeparator || c.value == 0x2028 || c.value == 0x2029
        }
    }
}
