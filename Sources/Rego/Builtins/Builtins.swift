import PolicyCore

/// Every builtin Warden's Rego knows, by its Rego name. Each family is a declarative table in its own file;
/// this is where they are put together, explicitly, so a name is defined in exactly one place.
public enum Builtins {
    public static let all: [String: Builtin] = assemble([
        arithmetic,
        comparison,
        sets,
        aggregates,
        arrays,
        objects,
        types,
        numbers,
        bits,
        strings,
        regex,
        glob,
        encoding,
        net,
        time,
        crypto,
        tokens,
        units,
        semver,
    ])

    /// The builtin called `name`, if there is one.
    public static func named(_ name: String) -> Builtin? { all[name] }

    static func assemble(_ tables: [[Builtin]]) -> [String: Builtin] {
        var byName: [String: Builtin] = [:]
        for table in tables {
            for builtin in table {
                // Two families declaring one name is a programming error caught by the first test run.
                precondition(byName[builtin.name] == nil, "builtin `\(builtin.name)` is declared twice")
                byName[builtin.name] = builtin
            }
        }
        return byName
    }
}

// MARK: - Operands

/// Reading operands with OPA's errors: positions count from 1, messages name the expected and the actual type.
extension Builtins {
    static func number(_ operands: [Value], _ index: Int) throws(BuiltinError) -> Number {
        guard case .number(let n) = operands[index] else {
            throw .operand(index + 1, mustBe: "number", got: operands[index])
        }
        return n
    }

    static func string(_ operands: [Value], _ index: Int) throws(BuiltinError) -> String {
        guard case .string(let s) = operands[index] else {
            throw .operand(index + 1, mustBe: "string", got: operands[index])
        }
        return s
    }

    static func bool(_ operands: [Value], _ index: Int) throws(BuiltinError) -> Bool {
        guard case .bool(let b) = operands[index] else {
            throw .operand(index + 1, mustBe: "boolean", got: operands[index])
        }
        return b
    }

    static func array(_ operands: [Value], _ index: Int) throws(BuiltinError) -> [Value] {
        guard case .array(let a) = operands[index] else {
            throw .operand(index + 1, mustBe: "array", got: operands[index])
        }
        return a
    }

    static func set(_ operands: [Value], _ index: Int) throws(BuiltinError) -> Set<Value> {
        guard case .set(let s) = operands[index] else {
            throw .operand(index + 1, mustBe: "set", got: operands[index])
        }
        return s
    }

    static func object(_ operands: [Value], _ index: Int) throws(BuiltinError) -> [Value: Value] {
        guard case .object(let o) = operands[index] else {
            throw .operand(index + 1, mustBe: "object", got: operands[index])
        }
        return o
    }

    /// An integer operand as OPA reads indices and lengths: the text must be an integer, optionally with a
    /// fraction of zeros (`2` and `2.0`, not `2e0` or `2.5`), within 64 bits.
    static func integer(_ operands: [Value], _ index: Int) throws(BuiltinError) -> Int {
        let n = try number(operands, index)
        guard let i = textInteger(n) else { throw notInteger(index) }
        return i
    }

    /// An integer operand read by value (`1e1` is 10), of any size; a non-number is `must be integer`.
    static func bigInteger(_ operands: [Value], _ index: Int) throws(BuiltinError) -> BigInteger {
        guard case .number(let n) = operands[index] else {
            throw .operand(index + 1, mustBe: "integer", got: operands[index])
        }
        guard let i = try RegoArithmetic.exactInteger(n) else { throw notInteger(index) }
        return i
    }

    static func notInteger(_ index: Int) -> BuiltinError {
        BuiltinError(.typeError, "operand \(index + 1) must be integer number but got floating-point number")
    }

    /// The number as an `Int` when its text is an integer with at most a fraction of zeros.
    static func textInteger(_ n: Number) -> Int? {
        if n.isIntegerLiteral { return n.intValue }
        guard let i = n.intValue else { return nil }
        let text = n.text
        guard !text.contains(where: { $0 == "e" || $0 == "E" }) else { return nil }
        return i
    }

    /// `operand N must be one of {a, b} but got T`.
    static func oneOf(_ index: Int, _ expected: [String], got value: Value) -> BuiltinError {
        BuiltinError(
            .typeError,
            "operand \(index + 1) must be one of {\(expected.joined(separator: ", "))} but got \(value.typeName)"
        )
    }

    /// `operand N must be array of strings but got array containing number`, OPA's error for a bad element.
    static func element(_ index: Int, of composite: Value, mustBe expected: String, got element: Value)
        -> BuiltinError
    {
        let kind = composite.typeName
        return BuiltinError(
            .typeError,
            "operand \(index + 1) must be \(kind) of \(expected)s but got \(kind) containing \(element.typeName)"
        )
    }

    /// The string elements of an array or set operand.
    static func strings(_ operands: [Value], _ index: Int) throws(BuiltinError) -> [String] {
        let elements: [Value]
        switch operands[index] {
        case .array(let a): elements = a
        case .set(let s): elements = s.sorted()
        default: throw oneOf(index, ["array", "set"], got: operands[index])
        }
        var out: [String] = []
        out.reserveCapacity(elements.count)
        for element in elements {
            guard case .string(let s) = element else {
                throw Builtins.element(index, of: operands[index], mustBe: "string", got: element)
            }
            out.append(s)
        }
        return out
    }
}
