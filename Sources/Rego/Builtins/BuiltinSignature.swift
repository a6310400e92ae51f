import PolicyCore

/// A type as OPA's type checker sees it, printed the way OPA prints it in `rego_type_error` messages
/// (`any<string, array[any]>`, `object[string: any]`, `array<number, number>`).
public indirect enum RegoType: Sendable, Hashable, CustomStringConvertible {
    case null
    case boolean
    case number
    case string
    /// A value of any of the member types; with no members, any value at all.
    case any([RegoType])
    /// An array with fixed types at its first positions and, when `rest` is set, any number of further elements.
    case array(positions: [RegoType], rest: RegoType?)
    /// An object with known fields and, when `rest` is set, further members of the given key and value types.
    case object(fields: [Field], rest: DynamicProperty?)
    case set(RegoType)

    /// A member of an object type whose key is known.
    public struct Field: Sendable, Hashable {
        public var key: String
        public var type: RegoType

        public init(key: String, type: RegoType) {
            self.key = key
            self.type = type
        }
    }

    /// The key and value types of an object's other members.
    public struct DynamicProperty: Sendable, Hashable {
        public var key: RegoType
        public var value: RegoType

        public init(key: RegoType, value: RegoType) {
            self.key = key
            self.value = value
        }
    }

    public static let anyValue = RegoType.any([])

    public static func array(of element: RegoType) -> RegoType { .array(positions: [], rest: element) }

    public static func object(_ key: RegoType, _ value: RegoType) -> RegoType {
        .object(fields: [], rest: DynamicProperty(key: key, value: value))
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .boolean: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .any(let members):
            return members.isEmpty ? "any" : "any<" + members.map(\.description).joined(separator: ", ") + ">"
        case .array(let positions, let rest):
            var out = "array"
            if !positions.isEmpty { out += "<" + positions.map(\.description).joined(separator: ", ") + ">" }
            if let rest { out += "[\(rest)]" }
            return out
        case .object(let fields, let rest):
            var out = "object"
            if !fields.isEmpty {
                out += "<" + fields.map { "\($0.key): \($0.type)" }.joined(separator: ", ") + ">"
            }
            if let rest { out += "[\(rest.key): \(rest.value)]" }
            return out
        case .set(let element):
            return "set[\(element)]"
        }
    }
}

/// The declared operands and result of a builtin, written as OPA declares them:
/// `(x: number, y: number) -> z: number`.
public struct BuiltinSignature: Sendable, Hashable, CustomStringConvertible {
    /// An operand or the result: an optional name and a type.
    public struct Parameter: Sendable, Hashable, CustomStringConvertible {
        public var name: String?
        public var type: RegoType

        public init(name: String?, type: RegoType) {
            self.name = name
            self.type = type
        }

        /// `x: number`, or just the type when unnamed.
        public var description: String { name.map { "\($0): \(type)" } ?? type.description }
    }

    public var arguments: [Parameter]
    public var result: Parameter?

    public init(arguments: [Parameter], result: Parameter?) {
        self.arguments = arguments
        self.result = result
    }

    /// The operand list as OPA's `arity mismatch` error prints it after `want:`.
    public var argumentsDescription: String { "(" + arguments.map(\.description).joined(separator: ", ") + ")" }

    /// Operands and result together, as OPA's `invalid argument(s)` error prints them after `want:`.
    public var fullDescription: String {
        "(" + (arguments + (result.map { [$0] } ?? [])).map(\.description).joined(separator: ", ") + ")"
    }

    public var description: String {
        argumentsDescription + (result.map { " -> \($0)" } ?? "")
    }

    /// Parses the declaration text used in the builtin tables; nil when it is malformed.
    public static func parse(_ text: String) -> BuiltinSignature? {
        var parser = SignatureParser(Array(text.utf8))
        return parser.signature()
    }
}

/// A small recursive-descent reader for signature declarations.
private struct SignatureParser {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func signature() -> BuiltinSignature? {
        guard consume("(") else { return nil }
        var arguments: [BuiltinSignature.Parameter] = []
        if !consume(")") {
            repeat {
                guard let parameter = parameter() else { return nil }
                arguments.append(parameter)
            } while consume(",")
            guard consume(")") else { return nil }
        }
        var result: BuiltinSignature.Parameter?
        if consume("->") {
            guard let parameter = parameter() else { return nil }
            result = parameter
        }
        skipSpaces()
        guard index == bytes.count else { return nil }
        return BuiltinSignature(arguments: arguments, result: result)
    }

    mutating func parameter() -> BuiltinSignature.Parameter? {
        let start = index
        // Names are identifiers, or quoted when OPA's name has spaces (`"formatted timestamp": string`).
        if let name = identifier() ?? quoted(), consume(":") {
            guard let type = type() else { return nil }
            return BuiltinSignature.Parameter(name: name, type: type)
        }
        index = start
        guard let type = type() else { return nil }
        return BuiltinSignature.Parameter(name: nil, type: type)
    }

    mutating func type() -> RegoType? {
        guard let word = identifier() else { return nil }
        switch word {
        case "null": return .null
        case "boolean": return .boolean
        case "number": return .number
        case "string": return .string
        case "any":
            guard peek("<") else { return .anyValue }
            guard let members = typeList(open: "<", close: ">") else { return nil }
            return .any(members)
        case "array":
            var positions: [RegoType] = []
            if peek("<") {
                guard let list = typeList(open: "<", close: ">") else { return nil }
                positions = list
            }
            var rest: RegoType?
            if consume("[") {
                guard let element = type(), consume("]") else { return nil }
                rest = element
            }
            return .array(positions: positions, rest: rest)
        case "set":
            guard consume("["), let element = type(), consume("]") else { return nil }
            return .set(element)
        case "object":
            var fields: [RegoType.Field] = []
            if consume("<") {
                repeat {
                    guard let key = identifier() ?? quoted(), consume(":"), let value = type() else { return nil }
                    fields.append(RegoType.Field(key: key, type: value))
                } while consume(",")
                guard consume(">") else { return nil }
            }
            var rest: RegoType.DynamicProperty?
            if consume("[") {
                guard let key = type(), consume(":"), let value = type(), consume("]") else { return nil }
                rest = RegoType.DynamicProperty(key: key, value: value)
            }
            return .object(fields: fields, rest: rest)
        default:
            return nil
        }
    }

    mutating func typeList(open: String, close: String) -> [RegoType]? {
        guard consume(open) else { return nil }
        var types: [RegoType] = []
        repeat {
            guard let type = type() else { return nil }
            types.append(type)
        } while consume(",")
        guard consume(close) else { return nil }
        return types
    }

    mutating func identifier() -> String? {
        skipSpaces()
        let start = index
        while index < bytes.count, isIdentifierByte(bytes[index]) { index += 1 }
        guard index > start else { return nil }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    mutating func quoted() -> String? {
        skipSpaces()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        let start = index + 1
        index += 1
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") { index += 1 }
        guard index < bytes.count else { return nil }
        defer { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    func isIdentifierByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
    }

    mutating func skipSpaces() {
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
    }

    func peek(_ token: String) -> Bool {
        var i = index
        while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
        return bytes[i...].starts(with: token.utf8)
    }

    mutating func consume(_ token: String) -> Bool {
        skipSpaces()
        guard bytes[index...].starts(with: token.utf8) else { return false }
        index += token.utf8.count
        return true
    }
}
