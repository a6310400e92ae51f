import PolicyCore

extension Term {
    /// The term written back as Rego, for messages (`p[x]`, `input.a["b-c"]`, `f(x, 1)`).
    public var regoText: String {
        switch kind {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n.text
        case .string(let s): return Value.string(s).regoText
        case .variable(let name): return name
        case .ref(let head, let path):
            var out = head.regoText
            for part in path {
                if case .string(let s) = part.kind, s.isRegoIdentifier {
                    out += "." + s
                } else {
                    out += "[" + part.regoText + "]"
                }
            }
            return out
        case .array(let items):
            return "[" + items.map(\.regoText).joined(separator: ", ") + "]"
        case .set(let items):
            return items.isEmpty ? "set()" : "{" + items.map(\.regoText).joined(separator: ", ") + "}"
        case .object(let members):
            return "{" + members.map { $0.key.regoText + ": " + $0.value.regoText }.joined(separator: ", ") + "}"
        case .arrayComprehension(let head, _):
            return "[" + head.regoText + " | ...]"
        case .setComprehension(let head, _):
            return "{" + head.regoText + " | ...}"
        case .objectComprehension(let key, let value, _):
            return "{" + key.regoText + ": " + value.regoText + " | ...}"
        case .call(let function, let arguments):
            return function.regoText + "(" + arguments.map(\.regoText).joined(separator: ", ") + ")"
        }
    }
}
