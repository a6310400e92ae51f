import PolicyCore
import Synchronization

/// `regex.match regex.is_valid regex.split regex.find_n regex.find_all_string_submatch_n regex.replace`, with Go's
/// RE2 syntax and semantics (see `RE2`).
extension Builtins {
    static let regex: [Builtin] = [
        Builtin("regex.match", arity: 2, signature: .parse("(pattern: string, value: string) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            let re = try compiled(operands, 0)
            let value = try string(operands, 1)
            return .bool(re.match(scalars(value), from: 0) != nil)
        },
        Builtin("regex.is_valid", arity: 1, signature: .parse("(pattern: string) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            guard case .string(let pattern) = operands[0] else { return .bool(false) }
            return .bool((try? RegexCache.shared.compile(pattern)) != nil)
        },
        Builtin("regex.split", arity: 2, signature: .parse("(pattern: string, value: string) -> output: array[string]")) {
            operands, _ throws(BuiltinError) in
            let re = try compiled(operands, 0)
            let value = try string(operands, 1)
            return .array(split(re, scalars(value), patternIsEmpty: try string(operands, 0).isEmpty).map(Value.string))
        },
        Builtin(
            "regex.find_n", arity: 3,
            signature: .parse("(pattern: string, value: string, number: number) -> output: array[string]")
        ) { operands, _ throws(BuiltinError) in
            let re = try compiled(operands, 0)
            let input = scalars(try string(operands, 1))
            let limit = try integer(operands, 2)
            return .array(re.allMatches(input, limit: limit).map { .string(text(input, $0[0]..<$0[1])) })
        },
        Builtin(
            "regex.find_all_string_submatch_n", arity: 3,
            signature: .parse("(pattern: string, value: string, number: number) -> output: array[array[string]]")
        ) { operands, _ throws(BuiltinError) in
            let re = try compiled(operands, 0)
            let input = scalars(try string(operands, 1))
            let limit = try integer(operands, 2)
            return .array(re.allMatches(input, limit: limit).map { m in
                .array(stride(from: 0, to: m.count, by: 2).map { k in
                    .string(m[k] >= 0 ? text(input, m[k]..<m[k + 1]) : "")
                })
            })
        },
        Builtin(
            "regex.replace", arity: 3, signature: .parse("(s: string, pattern: string, value: string) -> output: string")
        ) { operands, _ throws(BuiltinError) in
            let input = scalars(try string(operands, 0))
            let re = try compiled(operands, 1)
            let replacement = try string(operands, 2)
            let out = re.replaceAll(input, with: replacement)
            return .string(text(out, 0..<out.count))
        },
    ]

    /// The pattern operand, compiled (or OPA's builtin error for a bad pattern).
    static func compiled(_ operands: [Value], _ index: Int) throws(BuiltinError) -> RE2 {
        let pattern = try string(operands, index)
        do {
            return try RegexCache.shared.compile(pattern)
        } catch {
            throw BuiltinError(.builtinError, error.description)
        }
    }

    static func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }

    static func text(_ scalars: [UInt32], _ range: Range<Int>) -> String {
        var out = String.UnicodeScalarView()
        for v in scalars[range] { out.append(Unicode.Scalar(v) ?? "\u{FFFD}") }
        return String(out)
    }

    /// Go's `Regexp.Split(s, -1)`.
    static func split(_ re: RE2, _ input: [UInt32], patternIsEmpty: Bool) -> [String] {
        if !patternIsEmpty && input.isEmpty { return [""] }
        var parts: [String] = []
        var begin = 0, end = 0
        for m in re.allMatches(input, limit: -1) {
            end = m[0]
            if m[1] != 0 { parts.append(text(input, begin..<end)) }
            begin = m[1]
        }
        if end != input.count { parts.append(text(input, begin..<input.count)) }
        return parts
    }
}

/// Compiled patterns shared by every evaluation: policies match the same few patterns over and over.
final class RegexCache: Sendable {
    static let shared = RegexCache()

    /// Beyond this many patterns the cache starts over, so patterns taken from input cannot grow it without bound.
    static let capacity = 1_000

    /// Keyed by the pattern's bytes: Swift string keys would confuse canonically equivalent patterns (`K` and
    /// the Kelvin sign) that match different text.
    private let entries = Mutex<[[UInt8]: Result<RE2, RE2Error>]>([:])

    func compile(_ pattern: String) throws(RE2Error) -> RE2 {
        let key = Array(pattern.utf8)
        if let cached = entries.withLock({ $0[key] }) { return try cached.get() }
        let result: Result<RE2, RE2Error>
        do {
            result = .success(try RE2(pattern))
        } catch {
            result = .failure(error)
        }
        entries.withLock { table in
            if table.count >= Self.capacity { table.removeAll(keepingCapacity: true) }
            table[key] = result
        }
        return try result.get()
    }
}
