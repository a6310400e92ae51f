/// A parsed YAML or JSON document that remembers where every node came from, so that validation
/// errors can point at the exact field. Built by the `Documents` module; read by each engine's decoder.
public struct DocumentNode: Sendable {
    public indirect enum Content: Sendable {
        case scalar(Scalar)
        case sequence([DocumentNode])
        case mapping([MappingEntry])
    }

    /// A scalar with the type its YAML tag resolved to (`8080` is an int, `"8080"` a string).
    public struct Scalar: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable {
            case null, bool, int, float, string
        }

        public var text: String
        public var kind: Kind

        public init(text: String, kind: Kind) {
            self.text = text
            self.kind = kind
        }
    }

    public struct MappingEntry: Sendable {
        public var key: String
        public var keySpan: SourceSpan
        public var value: DocumentNode

        public init(key: String, keySpan: SourceSpan, value: DocumentNode) {
            self.key = key
            self.keySpan = keySpan
            self.value = value
        }
    }

    public var content: Content
    public var span: SourceSpan

    public init(_ content: Content, span: SourceSpan) {
        self.content = content
        self.span = span
    }

    /// The member named `key` of a mapping.
    public subscript(key: String) -> DocumentNode? {
        if case .mapping(let entries) = content { return entries.last { $0.key == key }?.value }
        return nil
    }

    /// A short name for the node's kind, for error messages ("a string", "a list", ...).
    public var kindDescription: String {
        switch content {
        case .mapping: "an object"
        case .sequence: "a list"
        case .scalar(let s):
            switch s.kind {
            case .null: "null"
            case .bool: "a boolean"
            case .int: "an integer"
            case .float: "a number"
            case .string: "a string"
            }
        }
    }

    /// The node as a plain value (spans dropped).
    public var value: Value {
        switch content {
        case .scalar(let s):
            switch s.kind {
            case .null: return .null
            case .bool: return .bool(["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"].contains(s.text))
            case .int:
                if let n = Number(literal: Substring(s.text)) { return .number(n) }
                if let i = Int(String(s.text.filter { $0 != "_" })) { return .int(i) }
                return .string(s.text)
            case .float:
                if let n = Number(literal: Substring(s.text)) { return .number(n) }
                return .string(s.text)
            case .string: return .string(s.text)
            }
        case .sequence(let items):
            return .array(items.map(\.value))
        case .mapping(let entries):
            var o: [Value: Value] = [:]
            for e in entries { o[.string(e.key)] = e.value.value }
            return .object(o)
        }
    }
}

/// A value decoded from a document, with where it was written.
public struct Located<T: Sendable>: Sendable {
    public var value: T
    public var span: SourceSpan
    public var path: FieldPath

    public init(_ value: T, span: SourceSpan, path: FieldPath) {
        self.value = value
        self.span = span
        self.path = path
    }
}

extension Located: Equatable where T: Equatable {}
extension Located: Hashable where T: Hashable {}
