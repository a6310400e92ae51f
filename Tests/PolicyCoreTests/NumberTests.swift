import PolicyCore
import Testing

@Suite struct NumberTests {
    static func n(_ text: String) -> Number { Number(literal: text)! }

    @Test(arguments: ["1.0", "1e3", "1E3", "1.50", "-0", "0.0", "1e400", "-12.5e-3", "123456789012345678901234567890"])
    func literalTextIsKept(_ text: String) {
        #expect(Self.n(text).description == text)
        #expect(JSONWriter.string(.number(Self.n(text))) == text)
    }

    @Test func canonicalIntegersStayInline() {
        #expect(Self.n("42").description == "42")
        #expect(Self.n("-9223372036854775808").int64Value == Int64.min)
        #expect(Self.n("9223372036854775808").int64Value == nil)
        #expect(Self.n("9223372036854775808").isInteger)
    }

    @Test(arguments: [
        ("1", "1.0", 0), ("1", "1e0", 0), ("100", "1e2", 0), ("0", "-0", 0), ("0", "0e10", 0),
        ("0.1", "0.10000000000000001", -1), ("0.30000000000000004", "0.3", 1),
        ("1e400", "1e401", -1), ("-1e400", "1e-400", -1), ("1e-400", "0", 1),
        ("123456789012345678901234567890", "123456789012345678901234567891", -1),
        ("9007199254740993", "9007199254740992", 1), ("2.5", "2.50", 0), ("-2.5", "-2.4", -1),
        ("12345678901234567890.5", "12345678901234567890", 1),
    ])
    func comparesByExactValue(_ a: String, _ b: String, _ expected: Int) {
        #expect(Number.compare(Self.n(a), Self.n(b)) == expected)
        #expect(Number.compare(Self.n(b), Self.n(a)) == -expected)
        if expected == 0 {
            #expect(Self.n(a) == Self.n(b))
            #expect(Self.n(a).hashValue == Self.n(b).hashValue)
        }
    }

    @Test func equalValuesShareOneSetElement() {
        let set: Set<Number> = [Self.n("1"), Self.n("1.0"), Self.n("1e0"), Self.n("100"), Self.n("1e2"),
                                Self.n("0.5"), Self.n("5e-1"), Self.n("0.50"), Self.n("1e400"), Self.n("10e399")]
        #expect(set.count == 4)
    }

    @Test func integerValues() {
        #expect(Self.n("1e3").int64Value == 1000)
        #expect(Self.n("2.50e1").int64Value == 25)
        #expect(Self.n("2.5").int64Value == nil)
        #expect(Self.n("1e30").integerValue?.description == "1000000000000000000000000000000")
        #expect(Self.n("-1.5e1").isInteger)
        #expect(Self.n("-1.55e1").isInteger == false)
        #expect(Self.n("-1.50e2").integerValue?.description == "-150")
        #expect(Self.n("1e30").integerDigitCount == 31)
    }

    @Test func doublesPrintInShortestGeneralForm() {
        #expect(Number(0.1).description == "0.1")
        #expect(Number(2.0).description == "2")
        #expect(Number(1e21).description == "1e+21")
        #expect(Number(1234567.5).description == "1.2345675e+06")
        #expect(Number(123456.5).description == "123456.5")
        #expect(Number(0.00001).description == "1e-05")
        #expect(Number(0.0001).description == "0.0001")
        #expect(Number(-0.0).description == "-0")
    }

    @Test(arguments: ["", "-", "1.", ".5", "1e", "1e+", "0x10", "1_000", "+1", "1.2.3", "--1"])
    func rejectsMalformedLiterals(_ text: String) {
        #expect(Number(literal: text) == nil)
    }
}
