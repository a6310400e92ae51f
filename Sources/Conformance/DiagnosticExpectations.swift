import PolicyCore

/// A case's `want_errors` and `want_warnings`: what decoding its documents must report.
///
/// Each entry is `{path: spec.rules[0], message: substring, line: 7, code: http_only_deny_rule}` (every key but
/// `message` optional). Every entry must be found, and nothing else of that severity may be reported. A case
/// without `want_errors` expects its documents to load; warnings are compared when the case has `want_warnings`
/// (`want_warnings: []` says there are none).
enum DiagnosticExpectations {
    enum Outcome {
        /// The documents loaded as expected: go on to the request.
        case loaded
        /// The case wanted errors and got exactly those: it passed.
        case refusedAsExpected
        case failed(String)
    }

    static func check(_ fields: DocumentDecoder.Fields, _ diagnostics: [Diagnostic]) -> Outcome {
        let errors = diagnostics.filter(\.isError)
        let warnings = diagnostics.filter { $0.severity == .warning }
        if let wanted = fields["want_warnings"] {
            guard case .sequence(let items) = wanted.content else { return .failed("`want_warnings` must be a list") }
            if let failure = compare(items, warnings, kind: "warning") { return .failed(failure) }
        }
        if let wanted = fields["want_errors"] {
            guard case .sequence(let items) = wanted.content else { return .failed("`want_errors` must be a list") }
            return compare(items, errors, kind: "error").map(Outcome.failed) ?? .refusedAsExpected
        }
        if !errors.isEmpty {
            return .failed("the documents did not load:\n" + errors.map(\.description).joined(separator: "\n"))
        }
        return .loaded
    }

    /// Nil when every wanted diagnostic was found and no other was reported; otherwise what differed.
    static func compare(_ wanted: [DocumentNode], _ found: [Diagnostic], kind: String) -> String? {
        var remaining = found
        var missing: [String] = []
        for w in wanted {
            let path = w["path"]?.value.stringValue
            let message = w["message"]?.value.stringValue ?? ""
            let line = w["line"]?.value.numberValue?.intValue
            let code = w["code"]?.value.stringValue
            if let i = remaining.firstIndex(where: { d in
                (path == nil || d.path?.description == path) && d.message.contains(message)
                    && (line == nil || d.span?.line == line) && (code == nil || d.code == code)
            }) {
                remaining.remove(at: i)
            } else {
                missing.append("missing \(kind) \(path ?? "") \"\(message)\"" + (line.map { " at line \($0)" } ?? ""))
            }
        }
        let unexpected = remaining.map { "unexpected \(kind): \($0)" }
        if missing.isEmpty && unexpected.isEmpty { return nil }
        return (missing + unexpected).joined(separator: "\n") + "\n \(kind)s were:\n"
            + found.map { "  \($0)" }.joined(separator: "\n")
    }
}
