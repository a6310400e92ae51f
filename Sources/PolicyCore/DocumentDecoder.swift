/// Reads typed fields out of a `DocumentNode` the way Kubernetes' strict decoding does (unknown fields and
/// wrong types are errors), collecting every problem with its place instead of stopping at the first.
///
/// Engines describe their schema with it; the decoder keeps field paths and spans so that a message reads
/// `policies/details.yaml:14:9: spec.rules[0].from[0].source.ipBlocks[1]: invalid CIDR ...`.
public final class DocumentDecoder {
    public private(set) var diagnostics: [Diagnostic] = []

    public init() {}

    public var hasErrors: Bool { diagnostics.hasErrors }

    public func report(
        _ code: String,
        _ message: String,
        span: SourceSpan?,
        path: FieldPath,
        severity: Diagnostic.Severity = .error
    ) {
        diagnostics.append(Diagnostic(code: code, message: message, span: span, path: path, severity: severity))
    }

    /// Something Istio's validation rejects: an error, and the document does not load.
    public func invalid(_ message: String, at node: DocumentNode, _ path: FieldPath) {
        report(Diagnostic.Code.invalidValue, message, span: node.span, path: path)
    }

    public func invalid<T>(_ message: String, at located: Located<T>) {
        report(Diagnostic.Code.invalidValue, message, span: located.span, path: located.path)
    }

    /// Something Istio's validation accepts and reports (its `Warning`, as opposed to its errors), or that Warden
    /// reports about a document Istio accepts: a warning, and the document still loads.
    public func warn(_ code: String, _ message: String, at node: DocumentNode, _ path: FieldPath) {
        report(code, message, span: node.span, path: path, severity: .warning)
    }

    public func warn<T>(_ code: String, _ message: String, at located: Located<T>) {
        report(code, message, span: located.span, path: located.path, severity: .warning)
    }

    /// The fields of a mapping; any key not in `known` is reported as unknown, with a suggestion when a known
    /// key is close. Returns nil (after reporting) when the node is not a mapping.
    public func fields(_ node: DocumentNode, at path: FieldPath, known: [String]) -> Fields? {
        guard case .mapping(let entries) = node.content else {
            if case .scalar(let s) = node.content, s.kind == .null { return Fields(node: node, path: path, entries: []) }
            mismatch(node, path, expected: "an object")
            return nil
        }
        var seen: Set<String> = []
        for entry in entries {
            if !seen.insert(entry.key).inserted {
                report(
                    Diagnostic.Code.invalidValue, "duplicate field `\(entry.key)`", span: entry.keySpan,
                    path: path / entry.key)
            }
            if !known.contains(entry.key) {
                var message = "unknown field `\(entry.key)`"
                if let guess = closest(to: entry.key, in: known) { message += "; did you mean `\(guess)`?" }
                report(Diagnostic.Code.unknownField, message, span: entry.keySpan, path: path / entry.key)
            }
        }
        return Fields(node: node, path: path, entries: entries)
    }

    public func mismatch(_ node: DocumentNode, _ path: FieldPath, expected: String) {
        var message = "expected \(expected), found \(node.kindDescription)"
        if expected == "a string", case .scalar(let s) = node.content, s.kind != .null {
            message += "; quote it: \"\(s.text)\""
        }
        report(Diagnostic.Code.typeMismatch, message, span: node.span, path: path)
    }

    /// A string scalar; numbers and booleans are refused as Kubernetes refuses them for string fields.
    public func string(_ node: DocumentNode, at path: FieldPath) -> Located<String>? {
        guard case .scalar(let s) = node.content, s.kind == .string else {
            mismatch(node, path, expected: "a string")
            return nil
        }
        return Located(s.text, span: node.span, path: path)
    }

    /// A list of strings; a null list is an empty one. Bad elements are reported and skipped.
    public func strings(_ node: DocumentNode, at path: FieldPath) -> [Located<String>]? {
        guard let items = sequence(node, at: path) else { return nil }
        return items.compactMap { string($0.node, at: $0.path) }
    }

    public func sequence(_ node: DocumentNode, at path: FieldPath) -> [(node: DocumentNode, path: FieldPath)]? {
        switch node.content {
        case .sequence(let items):
            return items.enumerated().map { (node: $0.element, path: path / $0.offset) }
        case .scalar(let s) where s.kind == .null:
            return []
        default:
            mismatch(node, path, expected: "a list")
            return nil
        }
    }

    public func bool(_ node: DocumentNode, at path: FieldPath) -> Bool? {
        guard case .scalar(let s) = node.content, s.kind == .bool else {
            mismatch(node, path, expected: "a boolean")
            return nil
        }
        return node.value.boolValue
    }

    /// A map of string to string (labels, annotations).
    public func stringMap(_ node: DocumentNode, at path: FieldPath) -> [String: Located<String>]? {
        guard case .mapping(let entries) = node.content else {
            if case .scalar(let s) = node.content, s.kind == .null { return [:] }
            mismatch(node, path, expected: "an object")
            return nil
        }
        var out: [String: Located<String>] = [:]
        for e in entries {
            if let v = string(e.value, at: path / e.key) { out[e.key] = v }
        }
        return out
    }
}

extension DocumentDecoder {
    /// The fields of one mapping being decoded.
    public struct Fields {
        public let node: DocumentNode
        public let path: FieldPath
        public let entries: [DocumentNode.MappingEntry]

        public subscript(key: String) -> DocumentNode? { entries.last { $0.key == key }?.value }

        public func path(_ key: String) -> FieldPath { path / key }

        public func has(_ key: String) -> Bool { entries.contains { $0.key == key } }
    }
}

/// The known name closest to `name` by edit distance, when it is close enough to be a likely typo.
public func closest(to name: String, in candidates: [String]) -> String? {
    let lower = name.lowercased()
    var best: (String, Int)?
    for c in candidates {
        let d = editDistance(lower, c.lowercased())
        if d <= max(2, c.count / 3), best == nil || d < best!.1 { best = (c, d) }
    }
    return best?.0
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
