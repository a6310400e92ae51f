/// A number as Rego and JSON see it: integers stay exact while they fit in 64 bits, everything else is a double.
///
/// Equality and order are by numeric value, so `1 == 1.0`, and equal numbers hash alike.
public struct Number: Sendable {
    @usableFromInline
    enum Storage: Sendable {
        case int(Int64)
        case double(Double)
    }

    @usableFromInline
    var storage: Storage

    @inlinable
    public init(_ value: Int) { storage = .int(Int64(value)) }

    @inlinable
    public init(_ value: Int64) { storage = .int(value) }

    @inlinable
    public init(_ value: Double) { storage = .double(value) }

    /// The number as an exact integer, when it is one and fits.
    public var int64Value: Int64? {
        switch storage {
        case .int(let i):
            return i
        case .double(let d):
            guard d.rounded(.towardZero) == d, let i = Int64(exactly: d) else { return nil }
            return i
        }
    }

    public var intValue: Int? { int64Value.map { Int($0) } }

    public var doubleValue: Double {
        switch storage {
        case .int(let i): Double(i)
        case .double(let d): d
        }
    }

    /// Whether the number is written without a fraction or exponent (its literal was an integer).
    public var isIntegerLiteral: Bool {
        if case .int = storage { return true }
        return false
    }

    /// Parses a JSON number literal; integers that do not fit in 64 bits become doubles.
    public init?(literal: Substring) {
        if let i = Int64(literal) {
            storage = .int(i)
        } else if let d = Double(literal), d.isFinite || literal.contains(where: { $0 == "e" || $0 == "E" }) {
            storage = .double(d)
        } else {
            return nil
        }
    }

    /// -1, 0 or 1 by numeric value.
    public static func compare(_ a: Number, _ b: Number) -> Int {
        switch (a.storage, b.storage) {
        case (.int(let x), .int(let y)):
            return x == y ? 0 : (x < y ? -1 : 1)
        default:
            let x = a.doubleValue, y = b.doubleValue
            return x == y ? 0 : (x < y ? -1 : 1)
        }
    }
}

extension Number: Hashable {
    public static func == (a: Number, b: Number) -> Bool { compare(a, b) == 0 }

    public func hash(into hasher: inout Hasher) {
        if let i = int64Value {
            hasher.combine(i)
        } else {
            hasher.combine(doubleValue)
        }
    }
}

extension Number: Comparable {
    public static func < (a: Number, b: Number) -> Bool { compare(a, b) < 0 }
}

extension Number: CustomStringConvertible {
    /// The number as a JSON literal.
    public var description: String {
        switch storage {
        case .int(let i):
            return String(i)
        case .double(let d):
            if let i = Int64(exactly: d), abs(d) < 1e15 { return String(i) }
            return String(d)
        }
    }
}
