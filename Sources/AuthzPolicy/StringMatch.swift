/// One Istio string pattern: `exact`, `prefix*`, `*suffix`, or `*` (presence).
///
/// Comparison is byte-wise on UTF-8, as Envoy's matchers compare, optionally ignoring ASCII case.
enum StringPattern: Sendable, Hashable {
    case exact(String)
    case prefix(String)
    case suffix(String)
    case presence

    /// Reads a policy value the way Istio's matcher generator does: `*` first, then a leading `*` (suffix), then a
    /// trailing `*` (prefix); anything else, including a `*` in the middle, is exact.
    init(_ value: String) {
        if value == "*" {
            self = .presence
        } else if value.hasPrefix("*") {
            self = .suffix(String(value.dropFirst()))
        } else if value.hasSuffix("*") {
            self = .prefix(String(value.dropLast()))
        } else {
            self = .exact(value)
        }
    }

    /// Whether `value` matches. Presence requires a non-empty value (Istio's `.+`).
    @inline(__always)
    func matches(_ value: String) -> Bool {
        switch self {
        case .exact(let e): bytesEqual(value, e)
        case .prefix(let p): hasPrefixBytes(value, p)
        case .suffix(let s): hasSuffixBytes(value, s)
        case .presence: !value.isEmpty
        }
    }
}

/// The compiled values of one field: the exact values (scanned when few, hashed when many), a prefix table and a
/// suffix table, and whether `*` was among them. One call answers "does any value match?".
struct StringMatchSet: Sendable {
    // Only what a match reads is held inline, in the order it reads it, so a predicate stays small (at 1,000
    // policies the predicates outgrow the caches, and each line they span is one more miss).
    let presence: Bool
    /// Compare ignoring ASCII case (hosts): values are stored lowercased and callers pass lowercased input.
    let ignoreCase: Bool
    private let exact: ByteStore
    private let exactTable: StaticTable<Bool>?
    /// Nil when there are no prefixes or suffixes, as in most fields.
    private let affixes: Affixes?
    /// The values by kind, for building indexes; never read while matching.
    private let byKind: ValuesByKind

    private final class Affixes: Sendable {
        let prefixes: AffixTable
        let suffixes: AffixTable

        init(prefixes: AffixTable, suffixes: AffixTable) {
            self.prefixes = prefixes
            self.suffixes = suffixes
        }
    }

    private final class ValuesByKind: Sendable {
        let exact: [[UInt8]]
        let prefixes: [[UInt8]]
        let suffixes: [[UInt8]]

        init(exact: [[UInt8]], prefixes: [[UInt8]], suffixes: [[UInt8]]) {
            self.exact = exact
            self.prefixes = prefixes
            self.suffixes = suffixes
        }
    }

    var exactBytes: [[UInt8]] { byKind.exact }
    var prefixBytes: [[UInt8]] { byKind.prefixes }
    var suffixBytes: [[UInt8]] { byKind.suffixes }

    static let scanLimit = 4

    init(_ values: [String], ignoreCase: Bool = false) {
        self.ignoreCase = ignoreCase
        var exact: [String] = [], prefixes: [String] = [], suffixes: [String] = []
        var presence = false
        for value in values {
            switch StringPattern(ignoreCase ? value.asciiLowercased() : value) {
            case .exact(let e): if !exact.contains(where: { bytesEqual($0, e) }) { exact.append(e) }
            case .prefix(let p): prefixes.append(p)
            case .suffix(let s): suffixes.append(s)
            case .presence: presence = true
            }
        }
        byKind = ValuesByKind(
            exact: exact.map { Array($0.utf8) }, prefixes: prefixes.map { Array($0.utf8) },
            suffixes: suffixes.map { Array($0.utf8) })
        self.exact = ByteStore(exact)
        exactTable = exact.count > Self.scanLimit ? StaticTable(exact.map { ($0, true) }) : nil
        affixes = prefixes.isEmpty && suffixes.isEmpty
            ? nil : Affixes(prefixes: AffixTable(prefixes, suffix: false), suffixes: AffixTable(suffixes, suffix: true))
        self.presence = presence
    }

    /// Whether `value` matches any pattern; `presence` here means "present and non-empty".
    @inline(__always)
    func matches(_ value: String) -> Bool {
        if presence && !value.isEmpty { return true }
        return withBytes(value) { matches(bytes: $0) }
    }

    @inline(__always)
    func matches(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if presence && !bytes.isEmpty { return true }
        if let exactTable {
            if exactTable.index(of: bytes) != nil { return true }
        } else {
            for i in 0..<exact.count where bytesEqual(exact[i], bytes) { return true }
        }
        guard let affixes else { return false }
        return affixes.prefixes.matches(bytes) || affixes.suffixes.matches(bytes)
    }

}

/// A set of prefixes (or suffixes). Few entries are scanned; many are grouped by length and hashed, so a
/// lookup costs one hash per distinct length.
struct AffixTable: Sendable {
    let suffix: Bool
    private let small: ByteStore
    private let tables: [(length: Int, table: StaticTable<Bool>)]
    static let scanLimit = 8

    init(_ affixes: [String], suffix: Bool) {
        self.suffix = suffix
        if affixes.count <= Self.scanLimit {
            small = ByteStore(affixes)
            tables = []
        } else {
            small = ByteStore([])
            let byLength = Dictionary(grouping: affixes) { $0.utf8.count }
            tables = byLength.keys.sorted().map { n in (n, StaticTable(byLength[n]!.map { ($0, true) })) }
        }
    }

    var isEmpty: Bool { small.count == 0 && tables.isEmpty }

    @inline(__always)
    func matches(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        for i in 0..<small.count where suffix ? hasSuffix(value, small[i]) : hasPrefix(value, small[i]) {
            return true
        }
        for i in tables.indices {
            let n = tables[i].length
            if n > value.count { break }
            let part = suffix ? UnsafeBufferPointer(rebasing: value[(value.count - n)...]) : UnsafeBufferPointer(rebasing: value[0..<n])
            if tables[i].table.index(of: part) != nil { return true }
        }
        return false
    }
}

extension String {
    /// Lowercases ASCII letters only (as Envoy's case-insensitive matching does); returns `self` when there are none.
    func asciiLowercased() -> String {
        let hasUpper = withBytes(self) { bytes in
            for b in bytes where b &- 65 < 26 { return true }
            return false
        }
        guard hasUpper else { return self }
        return String(decoding: utf8.map { $0 &- 65 < 26 ? $0 + 32 : $0 }, as: UTF8.self)
    }
}
