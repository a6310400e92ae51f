import PolicyCore

/// The error codes Rego reports, as OPA names them, and the helpers that make `Diagnostic`s with them.
public enum RegoError {
    public enum Code {
        public static let parse = "rego_parse_error"
        public static let compile = "rego_compile_error"
        public static let unsafeVariable = "rego_unsafe_var_error"
        public static let type = "rego_type_error"
        public static let recursion = "rego_recursion_error"
        public static let conflict = "eval_conflict_error"
        public static let evalType = "eval_type_error"
        public static let builtin = "eval_builtin_error"
        /// Evaluation stopped before finishing (cancellation, resource limits).
        public static let cancelled = "eval_cancel_error"
        /// An internal invariant did not hold; never expected, reported rather than trapping.
        public static let `internal` = "eval_internal_error"
    }

    static func diagnostic(_ code: String, _ message: String, _ location: Location?) -> Diagnostic {
        Diagnostic(code: code, message: message, span: location?.span)
    }

    /// OPA's one-line rendering: `file:line: code: message`.
    public static func render(_ diagnostic: Diagnostic) -> String {
        var out = ""
        if let span = diagnostic.span, !span.file.isEmpty { out += "\(span.file):\(span.line): " }
        out += "\(diagnostic.code): \(diagnostic.message)"
        return out
    }

    /// OPA's summary of several errors: `N errors occurred:` and one line each.
    public static func render(_ diagnostics: [Diagnostic]) -> String {
        if diagnostics.count == 1 { return "1 error occurred: " + render(diagnostics[0]) }
        return "\(diagnostics.count) errors occurred:\n" + diagnostics.map { render($0) }.joined(separator: "\n")
    }
}

/// A compilation that failed: every error found, in source order.
public struct RegoCompileError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }

    public var description: String { RegoError.render(diagnostics) }
}
