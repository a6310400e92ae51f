import CYaml
import PolicyCore

/// Checks a YAML text against `InputLimits` by reading libyaml's event stream — no tree is built, nothing is
/// expanded — before Yams composes it into nodes.
///
/// Composing is where YAML's costs hide: an alias stands for a copy of its anchored node, so nine aliases of
/// nine aliases of ... (a "billion laughs") describe billions of nodes in a few hundred bytes, and the composer
/// and every reader after it recurse as deeply as collections nest. Here every collection's nesting is
/// counted, every alias is counted, and the nodes each alias would add are summed from the sizes of the nodes
/// anchored so far, so a text over a limit is refused at the event that crosses it, with its place, in time and
/// memory linear in the text.
enum YAMLPreflight {
    static func check(_ text: String, file: String, limits: InputLimits) -> Diagnostic? {
        var text = text
        return text.withUTF8 { bytes in check(bytes, file: file, limits: limits) }
    }

    private static func check(_ bytes: UnsafeBufferPointer<UInt8>, file: String, limits: InputLimits) -> Diagnostic? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)

        /// A collection being read: how many nodes it holds so far (aliases counted expanded), and its anchor.
        struct Open {
            var nodes = 1
            var anchor: String?
        }
        var open: [Open] = []
        // Anchors are not reset between documents: Yams resolves an alias against every anchor read before it.
        var anchoredNodes: [String: Int] = [:]
        var aliases = 0
        var addedByAliases = 0

        func finish(_ nodes: Int, anchor: String?) {
            if let anchor { anchoredNodes[anchor] = nodes }
            if !open.isEmpty { open[open.count - 1].nodes += nodes }
        }
        func refuse(_ message: String, _ mark: yaml_mark_t) -> Diagnostic {
            Diagnostic(
                code: Diagnostic.Code.limitExceeded, message: message,
                span: SourceSpan(file: file, line: mark.line + 1, column: mark.column + 1))
        }

        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(&parser, &event) == 1 else {
                // libyaml's scanner reads flow collections ahead and stops at its own nesting bound (1,000
                // levels): that is this limit too. Any other syntax error is Yams' to report, with its place.
                if let problem = parser.problem.map({ String(cString: $0) }), problem.contains("nesting level") {
                    return refuse(
                        "YAML nested too deeply: more than \(min(limits.maxNestingDepth, 1_000)) levels "
                            + "(limits.max_nesting_depth)", parser.problem_mark)
                }
                return nil
            }
            defer { yaml_event_delete(&event) }
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return nil
            case YAML_SCALAR_EVENT:
                finish(1, anchor: string(event.data.scalar.anchor))
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                if open.count >= limits.maxNestingDepth {
                    return refuse(
                        "YAML nested too deeply: more than \(limits.maxNestingDepth) levels (limits.max_nesting_depth)",
                        event.start_mark)
                }
                let anchor = event.type == YAML_SEQUENCE_START_EVENT
                    ? event.data.sequence_start.anchor : event.data.mapping_start.anchor
                open.append(Open(anchor: string(anchor)))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                if let closed = open.popLast() { finish(closed.nodes, anchor: closed.anchor) }
            case YAML_ALIAS_EVENT:
                aliases += 1
                if aliases > limits.maxYAMLAliases {
                    return refuse(
                        "too many YAML aliases: more than \(limits.maxYAMLAliases) (limits.max_yaml_aliases)",
                        event.start_mark)
                }
                // An undefined alias is Yams' error to report; it stands for nothing here.
                let nodes = string(event.data.alias.anchor).flatMap { anchoredNodes[$0] } ?? 1
                addedByAliases += nodes
                if addedByAliases > limits.maxYAMLAliasNodes {
                    return refuse(
                        "YAML aliases expand to more than \(limits.maxYAMLAliasNodes) nodes "
                            + "(limits.max_yaml_alias_nodes)", event.start_mark)
                }
                finish(nodes, anchor: nil)
            default:
                break
            }
        }
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}
