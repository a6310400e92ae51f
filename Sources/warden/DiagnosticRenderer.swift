import Documents
import PolicyCore

/// Turns diagnostics into the text a developer reads: `file:line:col: field.path: message`, then the source line
/// with a caret under the place.
struct DiagnosticRenderer {
    private var sources: [String: [Substring]] = [:]

    mutating func render(_ diagnostic: Diagnostic) -> String {
        var out = diagnostic.description
        guard let span = diagnostic.span, let line = sourceLine(span) else { return out }
        let number = String(span.line)
        let gutter = String(repeating: " ", count: number.count)
        // Columns count Unicode scalars; keep tabs so the caret lines up in a terminal.
        let lead = line.unicodeScalars.prefix(max(0, span.column - 1)).map { $0 == "\t" ? "\t" : " " }.joined()
        out += "\n \(number) | \(line)\n \(gutter) | \(lead)^"
        return out
    }

    mutating func render(_ diagnostics: [Diagnostic]) -> String {
        diagnostics.map { render($0) }.joined(separator: "\n")
    }

    private mutating func sourceLine(_ span: SourceSpan) -> Substring? {
        if sources[span.file] == nil {
            guard case .success(let text) = DocumentFiles.read(span.file) else { return nil }
            sources[span.file] = text.split(separator: "\n", omittingEmptySubsequences: false)
        }
        guard let lines = sources[span.file], span.line >= 1, span.line <= lines.count else { return nil }
        return lines[span.line - 1]
    }
}

extension Diagnostic {
    /// The JSON form used by `--format json` outputs.
    var json: Value {
        var o: [String: Value] = ["code": .string(code), "message": .string(message), "severity": .string(severity.rawValue)]
        if let span {
            o["location"] = ["file": .string(span.file), "row": .int(span.line), "col": .int(span.column)]
        }
        if let path, !path.isEmpty { o["path"] = .string(path.description) }
        return .object(o)
    }
}
