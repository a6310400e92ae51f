import PolicyCore
import Testing

@Suite struct ValueTests {
    @Test func totalOrderFollowsKindsThenValues() {
        let ordered: [Value] = [
            .null, false, true, -1, 0.5, 2, "a", "b", [1], [1, 2], ["a": 1], .set([1]),
        ]
        #expect(ordered.shuffled().sorted() == ordered)
    }

    @Test func numbersCompareByValue() {
        #expect(Value.int(1) == Value.double(1.0))
        #expect(Set<Value>([.int(1), .double(1.0)]).count == 1)
        #expect(Value.int(2) > Value.double(1.5))
    }

    @Test func objectsCompareBySortedKeysThenValues() {
        let a: Value = ["a": 1, "b": 2]
        let b: Value = ["a": 1, "c": 0]
        #expect(a < b)
        #expect(Value.compare(["a": 2], ["a": 1]) == 1)
    }

    @Test func subscriptReadsStringKeys() {
        let v: Value = ["iss": "me", "nested": ["x": true]]
        #expect(v["iss"] == "me")
        #expect(v["nested"]?["x"] == true)
        #expect(v["missing"] == nil)
        #expect(Value.string("x")["iss"] == nil)
    }
}

@Suite struct JSONTests {
    @Test func parsesEveryKind() throws {
        let v = try JSONReader.parse(#"{"a": [1, -2.5e1, "x\n\u00e9\ud83d\ude00", true, false, null], "b": {}}"#)
        #expect(v["a"] == [1, -25.0, "x\né😀", true, false, nil])
        #expect(v["b"] == [:])
    }

    @Test func keepsLargeIntegersExact() throws {
        let v = try JSONReader.parse("9007199254740993")
        #expect(v.numberValue?.int64Value == 9_007_199_254_740_993)
    }

    @Test(arguments: [
        ("{", "expected a string key in object"),
        ("[1,]", "unexpected character `]`"),
        ("{\"a\" 1}", "expected `:` after key"),
        ("01", "invalid number: leading zero"),
        ("\"\u{01}\"", "control character in string"),
        ("1 2", "unexpected data after the JSON value"),
    ])
    func rejectsMalformedText(text: String, message: String) {
        #expect(throws: JSONError.self) { try JSONReader.parse(text) }
        do {
            _ = try JSONReader.parse(text)
        } catch {
            #expect(error.message == message)
        }
    }

    @Test func reportsLineAndColumn() {
        do {
            _ = try JSONReader.parse("{\n  \"a\": tru\n}")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 2)
            #expect(error.column == 8)
        }
    }

    @Test func writesSortedKeysAndEscapes() {
        let v: Value = ["b": 1, "a": ["<x>", "q\"\\\n"], "s": .set(["z", "y"])]
        #expect(JSONWriter.string(v) == #"{"a":["\u003cx\u003e","q\"\\\n"],"b":1,"s":["y","z"]}"#)
    }

    @Test func roundTrips() throws {
        let text = #"{"a":[1,2.5,"x"],"b":{"c":null,"d":false}}"#
        #expect(JSONWriter.string(try JSONReader.parse(text)) == text)
    }
}

@Suite struct StringEqualityTests {
    @Test func stringsCompareByBytesNotCanonicalEquivalence() {
        let composed: Value = "\u{E9}"
        let decomposed: Value = "e\u{301}"
        #expect(composed != decomposed)
        #expect(Value.compare(composed, decomposed) != 0)
        #expect(Set<Value>([composed, decomposed]).count == 2)
    }
}
