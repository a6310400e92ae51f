import PolicyCore

/// Semantic versions: `semver.is_valid` and `semver.compare`, with a leading `v` allowed and build metadata ignored
/// in comparisons.
extension Builtins {
    static let semver: [Builtin] = [
        Builtin("semver.is_valid", arity: 1, signature: .parse("(vsn: any) -> result: boolean")) { operands, _ in
            guard case .string(let text) = operands[0] else { return .bool(false) }
            return .bool(SemanticVersion(text) != nil)
        },
        Builtin("semver.compare", arity: 2, signature: .parse("(a: string, b: string) -> result: number")) {
            operands, _ throws(BuiltinError) in
            let a = try string(operands, 0)
            let b = try string(operands, 1)
            guard let first = SemanticVersion(a) else {
                throw BuiltinError(.builtinError, "operand 1: string \(GoQuote.quote(a)) is not a valid SemVer")
            }
            guard let second = SemanticVersion(b) else {
                throw BuiltinError(.builtinError, "operand 2: string \(GoQuote.quote(b)) is not a valid SemVer")
            }
            return .int(first.compare(second))
        },
    ]
}

/// `MAJOR.MINOR.PATCH[-PRERELEASE][+METADATA]`, each number a signed 64-bit decimal (leading zeros and a sign
/// accepted), identifiers of ASCII letters, digits and hyphens separated by dots.
struct SemanticVersion {
    var major: Int64, minor: Int64, patch: Int64
    var preRelease: Substring

    init?(_ text: String) {
        var version = Substring(text)
        if version.hasPrefix("v") { version = version.dropFirst() }
        let (core0, metadata) = Self.cut(version, "+")
        if !metadata.isEmpty && !Self.isIdentifierList(metadata) { return nil }
        let (core, preRelease) = Self.cut(core0, "-")
        if !preRelease.isEmpty && !Self.isIdentifierList(preRelease) { return nil }
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let major = Self.parseInt(parts[0]), let minor = Self.parseInt(parts[1]),
            let patch = Self.parseInt(parts[2])
        else { return nil }
        (self.major, self.minor, self.patch, self.preRelease) = (major, minor, patch, preRelease)
    }

    /// -1, 0 or 1 by precedence. Pre-release identifiers compare numerically when both are all digits, numbers
    /// before words, and a longer list after its own prefix; lists that differ only in how their numbers are
    /// written (`01` and `1`) are equal (OPA does not finish comparing those).
    func compare(_ other: SemanticVersion) -> Int {
        for (a, b) in [(major, other.major), (minor, other.minor), (patch, other.patch)] where a != b {
            return a < b ? -1 : 1
        }
        if preRelease == other.preRelease { return 0 }
        if preRelease.isEmpty { return 1 }
        if other.preRelease.isEmpty { return -1 }
        let left = preRelease.split(separator: ".", omittingEmptySubsequences: false)
        let right = other.preRelease.split(separator: ".", omittingEmptySubsequences: false)
        for (a, b) in zip(left, right) {
            let aNumeric = Self.isAllDigits(a), bNumeric = Self.isAllDigits(b)
            if aNumeric != bNumeric { return aNumeric ? -1 : 1 }
            if aNumeric {
                let x = Self.decimal(a), y = Self.decimal(b)
                if x != y { return x < y ? -1 : 1 }
            } else if a != b {
                return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
            }
        }
        if left.count != right.count { return left.count < right.count ? -1 : 1 }
        return 0
    }

    private static func cut(_ s: Substring, _ separator: Character) -> (Substring, Substring) {
        guard let i = s.firstIndex(of: separator) else { return (s, "") }
        return (s[..<i], s[s.index(after: i)...])
    }

    private static func isIdentifierList(_ s: Substring) -> Bool {
        s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D
            }
        }
    }

    private static func isAllDigits(_ s: Substring) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// An all-digit identifier's value as Go's `strconv.Atoi` gives it, out-of-range values clamped to the
    /// largest 64-bit integer.
    private static func decimal(_ s: Substring) -> Int64 { Int64(String(s)) ?? Int64.max }

    /// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign, decimal digits, underscores not allowed, in range.
    private static func parseInt(_ s: Substring) -> Int64? {
        var digits = s
        var negative = false
        if let first = digits.first, first == "+" || first == "-" {
            negative = first == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(String(negative ? "-" : "") + String(digits))
    }
}
