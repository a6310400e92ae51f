/// A problem found in user input, as data: a stable code, a lowercase message with user input in backticks,
/// and where it is. Only the CLI turns it into `file:line:col: path: message` text.
public struct Diagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Comparable {
        case error, warning, note

        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
        private var rank: Int {
            switch self {
            case .error: 0
            case .warning: 1
            case .note: 2
            }
        }
    }

    /// A stable, machine-readable code (`yaml_parse_error`, `unknown_field`, `rego_parse_error`, ...).
    public var code: String
    public var message: String
    public var span: SourceSpan?
    public var path: FieldPath?
    public var severity: Severity

    public init(
        code: String,
        message: String,
        span: SourceSpan? = nil,
        path: FieldPath? = nil,
        severity: Severity = .error
    ) {
        self.code = code
        self.message = message
        self.span = span
        self.path = path
        self.severity = severity
    }

    public var isError: Bool { severity == .error }

    /// `file:line:col: path: message` (the parts that are known); `file:line:col: path: warning: message` for a
    /// warning, and likewise for a note.
    public var description: String {
        var out = ""
        if let span { out += "\(span): " }
        if let path, !path.isEmpty { out += "\(path): " }
        if severity != .error { out += "\(severity.rawValue): " }
        out += message
        return out
    }
}

extension Diagnostic {
    /// Codes shared by every document reader.
    public enum Code {
        public static let yamlParse = "yaml_parse_error"
        public static let jsonParse = "json_parse_error"
        public static let unknownField = "unknown_field"
        public static let typeMismatch = "type_mismatch"
        public static let missingField = "missing_field"
        public static let invalidValue = "invalid_value"
        public static let unsupported = "unsupported"
        public static let skipped = "skipped_document"
        /// Valid, but attached to something Warden does not enforce for (a gateway or waypoint).
        public static let notEnforced = "not_enforced"
        public static let io = "io_error"
    }
}

extension Array where Element == Diagnostic {
    public var hasErrors: Bool { contains { $0.isError } }

    /// Sorted by place, so reports read top to bottom per file.
    public func sortedByPlace() -> [Diagnostic] {
        enumerated().sorted { a, b in
            switch (a.element.span, b.element.span) {
            case (let x?, let y?) where x != y: return x < y
            case (nil, _?): return false
            case (_?, nil): return true
            default: return a.offset < b.offset
            }
        }.map(\.element)
    }
}
