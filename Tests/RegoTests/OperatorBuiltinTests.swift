import PolicyCore
import Rego
import Testing

@Suite struct OperatorBuiltinTests {
    static let cases: [BuiltinCase] = [
        BuiltinCase("plus", [1, 2], .value(3)),
        BuiltinCase("plus", ["a", 2], typeError("operand 1 must be number but got string")),
        BuiltinCase("plus", [1, nil], typeError("operand 2 must be number but got null")),
        BuiltinCase("minus", [5, 7], .value(-2)),
        BuiltinCase("minus", [.set([1, 2, 3]), .set([2])], .value(.set([1, 3]))),
        BuiltinCase("minus", [.set([1]), 1], typeError("operand 2 must be set but got number")),
        BuiltinCase("minus", [1, .set([1])], typeError("operand 2 must be number but got set")),
        BuiltinCase("minus", ["s", 1], typeError("operand 1 must be one of {number, set} but got string")),
        BuiltinCase("mul", [6, 7], .value(42)),
        BuiltinCase("div", [7, 2], .value(3.5)),
        BuiltinCase("div", [6, 3], .value(2)),
        BuiltinCase("div", [1, 0], builtinError("divide by zero")),
        BuiltinCase("rem", [7, 3], .value(1)),
        BuiltinCase("rem", [-7, 3], .value(-1)),
        BuiltinCase("rem", [7, 0], builtinError("modulo by zero")),
        BuiltinCase("rem", [7.5, 2], builtinError("modulo on floating-point number")),
        BuiltinCase("abs", [-3], .value(3)),
        BuiltinCase("round", [2.5], .value(3)),
        BuiltinCase("round", [-2.5], .value(-3)),
        BuiltinCase("equal", [1, 1.0], .value(true)),
        BuiltinCase("equal", ["1", 1], .value(false)),
        BuiltinCase("neq", [[1], [1]], .value(false)),
        BuiltinCase("lt", [nil, false], .value(true)),
        BuiltinCase("lt", [1, "a"], .value(true)),
        BuiltinCase("lte", [2, 2], .value(true)),
        BuiltinCase("gt", ["b", "a"], .value(true)),
        BuiltinCase("gte", [[1, 2], [1]], .value(true)),
        BuiltinCase("or", [.set([1]), .set([2])], .value(.set([1, 2]))),
        BuiltinCase("and", [.set([1, 2]), .set([2, 3])], .value(.set([2]))),
        BuiltinCase("or", [1, .set([2])], typeError("operand 1 must be set but got number")),
        BuiltinCase("union", [.set([.set([1]), .set([2])])], .value(.set([1, 2]))),
        BuiltinCase("intersection", [.set([.set([1, 2]), .set([2])])], .value(.set([2]))),
        BuiltinCase("intersection", [.set([])], .value(.set([]))),
        BuiltinCase("union", [.set([1])], typeError("operand 1 must be set but got number")),
    ]

    @Test(arguments: cases)
    func builtin(_ c: BuiltinCase) {
        #expect(callWith(c.name, c.operands) == c.want)
    }

    @Test func everySignatureParses() {
        for (name, builtin) in Builtins.all {
            #expect(builtin.signature != nil, "\(name) has no parsable signature")
            if let signature = builtin.signature {
                #expect(signature.arguments.count == builtin.arity, "\(name) declares a different arity")
            }
        }
    }

    @Test func signaturesPrintAsOPADoes() {
        let minus = Builtins.all["minus"]!.signature!
        #expect(minus.fullDescription
            == "(x: any<number, set[any]>, y: any<number, set[any]>, z: any<number, set[any]>)")
        #expect(Builtins.all["plus"]!.signature!.argumentsDescription == "(x: number, y: number)")
    }
}

/// Where OPA's `to_number` keeps number text that is not JSON (its results then fail to print), Warden writes the
/// same value as JSON: `+5` is `5`, `.5` is `0.5`, `0x1p-2` is `0.25`.
@Suite struct ToNumberNormalizationTests {
    @Test(arguments: [("+5", "5"), (".5", "0.5"), ("5.", "5"), ("1_000", "1000"), ("00012", "12"),
                      ("0x1p-2", "0.25"), ("-0x1.8p1", "-3"), ("+1.50e2", "1.50e2")])
    func textThatIsNotJSONIsWrittenAsJSON(_ input: String, _ expected: String) {
        #expect(call("to_number", .string(input)) == .value(num(expected)))
        if case .value(let v) = call("to_number", .string(input)) { #expect(v.description == expected) }
    }
}
