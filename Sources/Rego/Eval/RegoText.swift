import PolicyCore

extension Value {
    /// The value written as a Rego term, as OPA prints terms (`print` output, messages): `{"a": [1, {2}]}`,
    /// `set()` for the empty set, object keys and set members in order.
    public var regoText: String {
        var out = ""
        writeRego(to: &out)
        return out
    }

    func writeRego(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.text
        case .string(let s): Value.writeQuoted(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                item.writeRego(to: &out)
            }
            out += "]"
        case .set(let members):
            if members.isEmpty {
                out += "set()"
                return
            }
            out += "{"
            for (i, item) in members.sorted().enumerated() {
                if i > 0 { out += ", " }
                item.writeRego(to: &out)
            }
            out += "}"
        case .object(let members):
            out += "{"
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out += ", " }
                key.writeRego(to: &out)
                out += ": "
                members[key]!.writeRego(to: &out)
            }
            out += "}"
        }
    }

    /// A string quoted as Go's `strconv.Quote` does: printable characters kept, others escaped.
    static func writeQuoted(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{07}": out += "\\a"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{0B}": out += "\\v"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + hex(scalar.value, width: 2)
                } else if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
                    || scalar.properties.generalCategory == .unassigned
                {
                    out += scalar.value > 0xFFFF ? "\\U" + hex(scalar.value, width: 8) : "\\u" + hex(scalar.value, width: 4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func hex(_ v: UInt32, width: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}

extension Value {
    /// `{}`.
    static let emptyObject = Value.object([Value: Value]())
}
