import PolicyCore
import SwiftProtobuf

/// Conversions between `google.protobuf.Struct`/`Value` (Envoy's metadata) and Warden's `Value`.
extension PolicyCore.Value {
    public init(protobuf value: Google_Protobuf_Value) {
        switch value.kind {
        case .nullValue, nil: self = .null
        case .numberValue(let d):
            // Struct numbers are doubles; whole ones read back as integers, as JSON decoders do.
            if d.rounded() == d, abs(d) < 9.007_199_254_740_992e15 { self = .int(Int(d)) } else { self = .double(d) }
        case .stringValue(let s): self = .string(s)
        case .boolValue(let b): self = .bool(b)
        case .structValue(let s): self = Self(protobuf: s)
        case .listValue(let l): self = .array(l.values.map(Self.init(protobuf:)))
        }
    }

    public init(protobuf value: Google_Protobuf_Struct) {
        var members: [PolicyCore.Value: PolicyCore.Value] = [:]
        members.reserveCapacity(value.fields.count)
        for (key, field) in value.fields { members[.string(key)] = Self(protobuf: field) }
        self = .object(members)
    }

    /// The protobuf form; sets become lists, non-string object keys are written as their JSON text.
    public var protobufValue: Google_Protobuf_Value {
        var out = Google_Protobuf_Value()
        switch self {
        case .null: out.nullValue = .nullValue
        case .bool(let b): out.boolValue = b
        case .number(let n): out.numberValue = n.doubleValue
        case .string(let s): out.stringValue = s
        case .array(let a): out.listValue = Google_Protobuf_ListValue(values: a.map(\.protobufValue))
        case .set(let s): out.listValue = Google_Protobuf_ListValue(values: s.sorted().map(\.protobufValue))
        case .object: out.structValue = protobufStruct ?? Google_Protobuf_Struct()
        }
        return out
    }

    /// The protobuf `Struct` form of an object; nil for other values.
    public var protobufStruct: Google_Protobuf_Struct? {
        guard case .object(let members) = self else { return nil }
        var fields: [String: Google_Protobuf_Value] = [:]
        for (key, value) in members { fields[key.stringValue ?? key.description] = value.protobufValue }
        return Google_Protobuf_Struct(fields: fields)
    }
}
