/// A JSON-like value, shared by every engine: the attributes of a request, JWT claims, Rego data and results.
///
/// Beyond JSON it has sets and non-string object keys, because Rego has them. Values are totally ordered
/// (`null < bool < number < string < array < object < set`), the order OPA uses to sort and compare.
public enum Value: Sendable {
    case null
    case bool(Bool)
    case number(Number)
    case string(String)
    case array([Value])
    case object([Value: Value])
    case set(Set<Value>)
}

extension Value {
    /// The name of the value's type as Rego's `type_name` spells it.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        case .set: "set"
        }
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var numberValue: Number? {
        if case .number(let n) = self { return n }
        return nil
    }

    public var arrayValue: [Value]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: [Value: Value]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var setValue: Set<Value>? {
        if case .set(let s) = self { return s }
        return nil
    }

    /// The member named `key` of an object with string keys, or nil.
    public subscript(key: String) -> Value? {
        if case .object(let o) = self { return o[.string(key)] }
        return nil
    }

    /// An object built from string keys.
    public static func object(_ members: [String: Value]) -> Value {
        var o: [Value: Value] = [:]
        o.reserveCapacity(members.count)
        for (k, v) in members { o[.string(k)] = v }
        return .object(o)
    }

    public static func int(_ i: Int) -> Value { .number(Number(i)) }
    public static func double(_ d: Double) -> Value { .number(Number(d)) }
}

// MARK: - Equality, hashing and the total order

extension Value: Hashable {
    public static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        // Byte-wise, as OPA compares strings: Swift's `==` would equate canonically equivalent spellings
        // (`é` and `e` + U+0301), which OPA keeps apart.
        case (.string(let a), .string(let b)): sameBytes(a, b)
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a == b
        case (.set(let a), .set(let b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        // Strings, the most common keys, hash as their bytes alone: values of different kinds are never equal,
        // so only the distribution of hashes would gain from mixing in the kind.
        if case .string(let s) = self {
            Value.hashBytes(s, into: &hasher)
            return
        }
        hasher.combine(kindRank)
        switch self {
        case .null: break
        case .bool(let b): hasher.combine(b)
        case .number(let n): hasher.combine(n)
        case .string(let s): Value.hashBytes(s, into: &hasher)
        case .array(let a): hasher.combine(a)
        case .object(let o): hasher.combine(o)
        case .set(let s): hasher.combine(s)
        }
    }

    /// The UTF-8 bytes, as byte-wise equality sees the string.
    @inlinable
    static func hashBytes(_ s: String, into hasher: inout Hasher) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if done == nil {
            for b in s.utf8 { hasher.combine(b) }
        }
    }

    /// Byte-wise equality, a word at a time over the strings' contiguous UTF-8 (every native string has it).
    @inlinable
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        let equal = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in
                compareBytes(UnsafeRawBufferPointer(x), UnsafeRawBufferPointer(y)) == 0
            }
        }
        if let equal, let equal { return equal }
        return a.utf8.elementsEqual(b.utf8)
    }

    /// Byte-wise three-way comparison, as Go compares strings.
    @inlinable
    static func compareBytes(_ a: String, _ b: String) -> Int {
        let order = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in
                compareBytes(UnsafeRawBufferPointer(x), UnsafeRawBufferPointer(y))
            }
        }
        if let order, let order { return order }
        if a.utf8.elementsEqual(b.utf8) { return 0 }
        return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
    }

    /// -1, 0 or 1 as `x` sorts before, equal to or after `y`, comparing eight bytes at a time while they agree.
    @inlinable
    static func compareBytes(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Int {
        let common = min(x.count, y.count)
        var i = 0
        while i + 8 <= common {
            let p = x.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let q = y.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            if p != q {
                // The first differing byte decides: read the words with their first byte most significant.
                let a = UInt64(bigEndian: p), b = UInt64(bigEndian: q)
                return a < b ? -1 : 1
            }
            i += 8
        }
        while i < common {
            let p = x[i], q = y[i]
            if p != q { return p < q ? -1 : 1 }
            i += 1
        }
        return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
    }

    /// The position of the value's kind in the total order.
    @inlinable
    public var kindRank: Int {
        switch self {
        case .null: 0
        case .bool: 1
        case .number: 2
        case .string: 3
        case .array: 4
        case .object: 5
        case .set: 6
        }
    }
}

extension Value: Comparable {
    public static func < (lhs: Value, rhs: Value) -> Bool {
        compare(lhs, rhs) < 0
    }

    /// Three-way comparison in OPA's total order: kinds first, then values; arrays lexicographically,
    /// objects by their sorted keys and then the values at those keys, sets by their sorted elements.
    public static func compare(_ lhs: Value, _ rhs: Value) -> Int {
        switch (lhs, rhs) {
        case (.null, .null):
            return 0
        case (.bool(let a), .bool(let b)):
            return a == b ? 0 : (a ? 1 : -1)
        case (.number(let a), .number(let b)):
            return Number.compare(a, b)
        case (.string(let a), .string(let b)):
            return compareBytes(a, b)
        case (.array(let a), .array(let b)):
            return compareSequences(a, b)
        case (.object(let a), .object(let b)):
            let ak = a.keys.sorted(), bk = b.keys.sorted()
            for (x, y) in zip(ak, bk) {
                let c = compare(x, y)
                if c != 0 { return c }
                let v = compare(a[x]!, b[y]!)
                if v != 0 { return v }
            }
            return ak.count == bk.count ? 0 : (ak.count < bk.count ? -1 : 1)
        case (.set(let a), .set(let b)):
            return compareSequences(a.sorted(), b.sorted())
        default:
            return lhs.kindRank < rhs.kindRank ? -1 : 1
        }
    }

    private static func compareSequences(_ a: [Value], _ b: [Value]) -> Int {
        for (x, y) in zip(a, b) {
            let c = compare(x, y)
            if c != 0 { return c }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }
}

// MARK: - Literals, for tests and tables

extension Value: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Number(value)) }
    public init(floatLiteral value: Double) { self = .number(Number(value)) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, Value)...) {
        var o: [Value: Value] = [:]
        for (k, v) in elements { o[.string(k)] = v }
        self = .object(o)
    }
}

extension Value: CustomStringConvertible {
    /// The value as compact JSON with sorted keys (sets print as sorted arrays).
    public var description: String { JSONWriter.string(self) }
}
