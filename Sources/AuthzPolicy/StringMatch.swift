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

/// The compiled values of one field: a hash set for the exact values, a prefix table and a suffix table, and
/// whether `*` was among them. One lookup answers "does any value match?".
struct StringMatchSet: Sendable, Hashable {
    private(set) var exact: Set<ByteString> = []
    private(set) var prefixes: AffixTable = AffixTable(suffix: false)
    private(set) var suffixes: AffixTable = AffixTable(suffix: true)
    private(set) var presence = false
    /// Compare ignoring ASCII case (hosts): values are stored lowercased and callers pass lowercased input.
    let ignoreCase: Bool

    init(_ values: [String], ignoreCase: Bool = false) {
        self.ignoreCase = ignoreCase
        for value in values {
            switch StringPattern(ignoreCase ? value.asciiLowercased() : value) {
            case .exact(let e): exact.insert(ByteString(e))
            case .prefix(let p): prefixes.insert(p)
            case .suffix(let s): suffixes.insert(s)
            case .presence: presence = true
            }
        }
    }

    /// Whether `value` matches any pattern; `presence` here means "present and non-empty".
    @inline(__always)
    func matches(_ value: String) -> Bool {
        if presence && !value.isEmpty { return true }
        if !exact.isEmpty && exact.contains(ByteString(value)) { return true }
        return prefixes.matches(value) || suffixes.matches(value)
    }

    /// The exact values when the set has nothing but exact values (it can then be indexed by hash).
    var onlyExactValues: [ByteString]? {
        presence || !prefixes.isEmpty || !suffixes.isEmpty ? nil : Array(exact)
    }
}

/// A set of prefixes (or suffixes). Few entries are scanned; many are grouped by length and hashed, so a
/// lookup costs one hash per distinct length.
struct AffixTable: Sendable, Hashable {
    let suffix: Bool
    private var small: [String] = []
    private var byLength: [Int: Set<ByteString>] = [:]
    private var lengths: [Int] = []
    static let scanLimit = 8

    init(suffix: Bool) { self.suffix = suffix }

    var isEmpty: Bool { small.isEmpty && byLength.isEmpty }

    mutating func insert(_ affix: String) {
        if byLength.isEmpty && small.count < Self.scanLimit {
            small.append(affix)
            return
        }
        for s in small { insertHashed(s) }
        small = []
        insertHashed(affix)
    }

    private mutating func insertHashed(_ affix: String) {
        let n = affix.utf8.count
        if byLength[n] == nil {
            lengths.append(n)
            lengths.sort()
        }
        byLength[n, default: []].insert(ByteString(affix))
    }

    @inline(__always)
    func matches(_ value: String) -> Bool {
        if !small.isEmpty {
            for a in small where suffix ? hasSuffixBytes(value, a) : hasPrefixBytes(value, a) { return true }
            return false
        }
        if byLength.isEmpty { return false }
        let count = value.utf8.count
        for n in lengths {
            if n > count { break }
            let part = suffix ? ByteString(value, utf8Suffix: n) : ByteString(value, utf8Prefix: n)
            if byLength[n]!.contains(part) { return true }
        }
        return false
    }
}

/// A string compared and hashed by its UTF-8 bytes (no Unicode normalisation), possibly a byte range of a
/// larger string, so lookups never copy.
struct ByteString: Sendable, Hashable {
    let base: String
    let start: Int
    let count: Int

    init(_ s: String) {
        base = s
        start = 0
        count = s.utf8.count
    }

    init(_ s: String, utf8Prefix n: Int) {
        base = s
        start = 0
        count = n
    }

    init(_ s: String, utf8Suffix n: Int) {
        base = s
        count = n
        start = s.utf8.count - n
    }

    var string: String {
        start == 0 && count == base.utf8.count ? base : String(decoding: Array(base.utf8.dropFirst(start).prefix(count)), as: UTF8.self)
    }

    static func == (a: ByteString, b: ByteString) -> Bool {
        guard a.count == b.count else { return false }
        return a.withBytes { x in b.withBytes { y in x.elementsEqual(y) } }
    }

    func hash(into hasher: inout Hasher) {
        withBytes { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let r = base.utf8.withContiguousStorageIfAvailable({ body(UnsafeBufferPointer(rebasing: $0[start..<(start + count)])) }) {
            return r
        }
        let copy = Array(base.utf8)
        return copy.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[start..<(start + count)])) }
    }
}

@inline(__always)
func bytesEqual(_ a: String, _ b: String) -> Bool {
    ByteString(a) == ByteString(b)
}

@inline(__always)
func hasPrefixBytes(_ s: String, _ prefix: String) -> Bool {
    let n = prefix.utf8.count
    guard n <= s.utf8.count else { return false }
    return ByteString(s, utf8Prefix: n) == ByteString(prefix)
}

@inline(__always)
func hasSuffixBytes(_ s: String, _ suffix: String) -> Bool {
    let n = suffix.utf8.count
    guard n <= s.utf8.count else { return false }
    return ByteString(s, utf8Suffix: n) == ByteString(suffix)
}

extension String {
    /// Lowercases ASCII letters only (as Envoy's case-insensitive matching does); returns `self` when there are none.
    func asciiLowercased() -> String {
        guard utf8.contains(where: { $0 >= 65 && $0 <= 90 }) else { return self }
        return String(decoding: utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }
}
