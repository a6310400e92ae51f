import PolicyCore

/// `object.get object.keys object.remove object.union object.union_n object.filter object.subset`.
extension Builtins {
    static let objects: [Builtin] = [
        Builtin(
            "object.get", arity: 3,
            signature: .parse("(object: object[any: any], key: any, default: any) -> value: any")
        ) { operands, _ throws(BuiltinError) in
            let o = try object(operands, 0)
            guard case .array(let path) = operands[1] else { return o[operands[1]] ?? operands[2] }
            // An array key is a path: through objects by key, arrays by index and sets by membership.
            var current = Value.object(o)
            for key in path {
                guard let next = child(of: current, key) else { return operands[2] }
                current = next
            }
            return current
        },
        Builtin("object.keys", arity: 1, signature: .parse("(object: object[any: any]) -> value: set[any]")) {
            operands, _ throws(BuiltinError) in
            .set(Set(try object(operands, 0).keys))
        },
        Builtin(
            "object.remove", arity: 2,
            signature: .parse(
                "(object: object[any: any], keys: any<array[any], object[any: any], set[any]>) -> output: object[any: any]")
        ) { operands, _ throws(BuiltinError) in
            var o = try object(operands, 0)
            for key in try keyList(operands, 1) { o[key] = nil }
            return .object(o)
        },
        Builtin(
            "object.union", arity: 2,
            signature: .parse("(a: object[any: any], b: object[any: any]) -> output: object[any: any]")
        ) { operands, _ throws(BuiltinError) in
            let a = try object(operands, 0)
            let b = try object(operands, 1)
            return .object(merged(a, b))
        },
        Builtin(
            "object.union_n", arity: 1,
            signature: .parse("(objects: array[object[any: any]]) -> output: object[any: any]")
        ) { operands, _ throws(BuiltinError) in
            var result: [Value: Value] = [:]
            for element in try array(operands, 0) {
                guard case .object(let o) = element else {
                    throw Builtins.element(0, of: operands[0], mustBe: "object", got: element)
                }
                result = merged(result, o)
            }
            return .object(result)
        },
        Builtin(
            "object.filter", arity: 2,
            signature: .parse(
                "(object: object[any: any], keys: any<array[any], object[any: any], set[any]>) -> filtered: object[any: any]")
        ) { operands, _ throws(BuiltinError) in
            let o = try object(operands, 0)
            var result: [Value: Value] = [:]
            for key in try keyList(operands, 1) where o[key] != nil { result[key] = o[key] }
            return .object(result)
        },
        Builtin(
            "object.subset", arity: 2,
            signature: .parse(
                "(super: any<array[any], object[any: any], set[any]>, sub: any<array[any], object[any: any], set[any]>) -> result: boolean")
        ) { operands, _ throws(BuiltinError) in
            switch (operands[0], operands[1]) {
            case (.object(let sup), .object(let sub)): return .bool(objectSubset(sup, sub))
            case (.set(let sup), .set(let sub)): return .bool(sub.isSubset(of: sup))
            case (.array(let sup), .array(let sub)): return .bool(arraySubset(sup, sub))
            case (.array(let sup), .set(let sub)): return .bool(arraySetSubset(sup, sub))
            default:
                throw BuiltinError(.typeError, "both arguments object.subset must be of the same type or array and set")
            }
        },
    ]

    /// One step of an `object.get` path.
    private static func child(of value: Value, _ key: Value) -> Value? {
        switch value {
        case .object(let o): return o[key]
        case .array(let a):
            guard case .number(let n) = key, let i = textInteger(n), i >= 0, i < a.count else { return nil }
            return a[i]
        case .set(let s):
            // Spelled out: `nil` in a ternary with a `Value` would become `Value.null`.
            guard s.contains(key) else { return Optional<Value>.none }
            return key
        default: return nil
        }
    }

    /// The keys named by an array, a set, or an object's keys.
    private static func keyList(_ operands: [Value], _ index: Int) throws(BuiltinError) -> [Value] {
        switch operands[index] {
        case .array(let a): return a
        case .set(let s): return Array(s)
        case .object(let o): return Array(o.keys)
        default: throw oneOf(index, ["object", "set", "array"], got: operands[index])
        }
    }

    /// `b` over `a`, merging recursively where both sides hold objects.
    static func merged(_ a: [Value: Value], _ b: [Value: Value]) -> [Value: Value] {
        var result = a
        for (key, value) in b {
            if case .object(let inner)? = result[key], case .object(let other) = value {
                result[key] = .object(merged(inner, other))
            } else {
                result[key] = value
            }
        }
        return result
    }

    private static func objectSubset(_ sup: [Value: Value], _ sub: [Value: Value]) -> Bool {
        for (key, subValue) in sub {
            guard let superValue = sup[key] else { return false }
            if superValue == subValue { continue }
            switch (superValue, subValue) {
            case (.object(let x), .object(let y)): if !objectSubset(x, y) { return false }
            case (.set(let x), .set(let y)): if !y.isSubset(of: x) { return false }
            case (.array(let x), .array(let y)): if !arraySubset(x, y) { return false }
            default: return false
            }
        }
        return true
    }

    /// Whether `sub` appears contiguously in `sup`, by OPA's restart-on-mismatch scan.
    private static func arraySubset(_ sup: [Value], _ sub: [Value]) -> Bool {
        if sub.count > sup.count { return false }
        if sub == sup { return true }
        var superCursor = 0, subCursor = 0
        while true {
            if subCursor == sub.count { return true }
            if superCursor + subCursor == sup.count { return false }
            if Value.compare(sup[superCursor + subCursor], sub[subCursor]) == 0 {
                subCursor += 1
            } else {
                superCursor += 1
                subCursor = 0
            }
        }
    }

    /// OPA counts down the set's size for every array element in the set (duplicates count again) and answers
    /// true once it reaches zero while scanning; an empty array never does.
    private static func arraySetSubset(_ sup: [Value], _ sub: Set<Value>) -> Bool {
        var unmatched = sub.count
        for element in sup {
            if sub.contains(element) { unmatched -= 1 }
            if unmatched == 0 { return true }
        }
        return false
    }
}
