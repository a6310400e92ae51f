import PolicyCore

/// `glob.match glob.quote_meta`.
extension Builtins {
    static let glob: [Builtin] = [
        Builtin(
            "glob.match", arity: 3,
            signature: .parse("(pattern: string, delimiters: any<null, array[string]>, match: string) -> result: boolean")
        ) { operands, _ throws(BuiltinError) in
            let pattern = try string(operands, 0)
            let separators = try GlobSeparators.read(operands[1])
            let text = try string(operands, 2)
            do throws(GlobError) {
                let compiled = try GlobCache.shared.compile(pattern, separators: separators)
                return .bool(compiled.matches(text))
            } catch {
                throw BuiltinError(.builtinError, error.message)
            }
        },
        Builtin("glob.quote_meta", arity: 1, signature: .parse("(pattern: string) -> output: string")) {
            operands, _ throws(BuiltinError) in
            var out: [UInt8] = []
            for b in Array(try string(operands, 0).utf8) {
                if GlobLexer.special.contains(b) { out.append(UInt8(ascii: "\\")) }
                out.append(b)
            }
            return .string(String(decoding: out, as: UTF8.self))
        },
    ]
}

/// The separators operand of `glob.match`: null for none, or an array of one-character strings (empty: `.`).
enum GlobSeparators {
    static func read(_ value: Value) throws(BuiltinError) -> [UInt32] {
        switch value {
        case .null:
            return []
        case .array(let a):
            var separators: [UInt32] = []
            for element in a {
                guard case .string(let s) = element else {
                    throw Builtins.element(1, of: value, mustBe: "string", got: element)
                }
                let scalars = Array(s.unicodeScalars)
                guard scalars.count == 1 else {
                    throw Builtins.element(1, of: value, mustBe: "rune", got: element)
                }
                separators.append(scalars[0].value)
            }
            // An empty list means the default separator.
            return separators.isEmpty ? [0x2E] : separators
        default:
            throw Builtins.oneOf(1, ["array", "null"], got: value)
        }
    }

    /// The separators of a constant operand, when it is a valid one.
    static func read(_ op: Operand) -> [UInt32]? {
        guard case .constant(let value) = op else { return nil }
        return try? read(value)
    }
}
