import PolicyCore
import Yams

/// Reads YAML (and JSON, which YAML contains) into `DocumentNode`s with places, one per `---` document,
/// the way `kubectl apply -f` takes a file. This is the only place the YAML library is used.
public enum YAMLDocuments {
    public struct Parsed: Sendable {
        /// The non-empty documents read before any syntax error, in order.
        public var documents: [DocumentNode]
        /// At most one syntax error: the reader cannot continue past it.
        public var diagnostics: [Diagnostic]
    }

    /// Reads every document of a text. A text over `limits` (its size, nesting, aliases and what they expand
    /// to) is refused with one `limit_exceeded` diagnostic before any node is built.
    public static func parse(_ text: String, file: String, limits: InputLimits = .default) -> Parsed {
        if let refused = DocumentFiles.checkSize(text.utf8.count, file: file, limits: limits)
            ?? YAMLPreflight.check(text, file: file, limits: limits)
        {
            return Parsed(documents: [], diagnostics: [refused])
        }
        var documents: [DocumentNode] = []
        do {
            let parser = try Parser(yaml: text, resolver: .default)
            while let root = try parser.nextRoot() {
                let node = convert(root, file: file)
                if case .scalar(let s) = node.content, s.kind == .null { continue }  // empty document
                documents.append(node)
            }
            return Parsed(documents: documents, diagnostics: [])
        } catch let error as YamlError {
            return Parsed(documents: documents, diagnostics: [diagnostic(error, file: file)])
        } catch {
            return Parsed(
                documents: documents,
                diagnostics: [Diagnostic(code: Diagnostic.Code.yamlParse, message: "\(error)", span: SourceSpan(file: file, line: 1, column: 1))]
            )
        }
    }

    static func convert(_ node: Node, file: String) -> DocumentNode {
        let span = SourceSpan(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
        switch node {
        case .scalar(let scalar):
            return DocumentNode(.scalar(.init(text: scalar.string, kind: kind(of: node.tag))), span: span)
        case .sequence(let sequence):
            return DocumentNode(.sequence(sequence.map { convert($0, file: file) }), span: span)
        case .mapping(let mapping):
            let entries = mapping.map { pair in
                let keySpan = SourceSpan(file: file, line: pair.key.mark?.line ?? span.line, column: pair.key.mark?.column ?? span.column)
                return DocumentNode.MappingEntry(key: pair.key.string ?? "\(pair.key)", keySpan: keySpan, value: convert(pair.value, file: file))
            }
            return DocumentNode(.mapping(entries), span: span)
        case .alias(let alias):
            // The parser resolves aliases to their anchored nodes; a bare alias node has no content of its own.
            return DocumentNode(.scalar(.init(text: "*\(alias.anchor)", kind: .string)), span: span)
        }
    }

    static func kind(of tag: Tag) -> DocumentNode.Scalar.Kind {
        switch tag.rawValue {
        case Tag.Name.null.rawValue: .null
        case Tag.Name.bool.rawValue: .bool
        case Tag.Name.int.rawValue: .int
        case Tag.Name.float.rawValue: .float
        default: .string
        }
    }

    static func diagnostic(_ error: YamlError, file: String) -> Diagnostic {
        func make(_ problem: String, _ mark: Mark?, context: YamlError.Context?) -> Diagnostic {
            var message = problem
            if let context { message += " (\(context.text))" }
            let span = mark.map { SourceSpan(file: file, line: $0.line, column: $0.column) } ?? SourceSpan(file: file, line: 1, column: 1)
            return Diagnostic(code: Diagnostic.Code.yamlParse, message: "invalid YAML: \(message)", span: span)
        }
        switch error {
        case .scanner(let context, let problem, let mark, _): return make(problem, mark, context: context)
        case .parser(let context, let problem, let mark, _): return make(problem, mark, context: context)
        case .composer(let context, let problem, let mark, _): return make(problem, mark, context: context)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return make("duplicate keys \(duplicates.map { "`\($0)`" }.joined(separator: ", "))", context.mark, context: nil)
        case .reader(let problem, _, _, _): return make(problem, nil, context: nil)
        default: return make("\(error)", nil, context: nil)
        }
    }
}
