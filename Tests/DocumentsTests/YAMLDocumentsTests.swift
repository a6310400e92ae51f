import Documents
import PolicyCore
import Testing

@Suite struct YAMLDocumentsTests {
    @Test func splitsDocumentsAndSkipsEmptyOnes() {
        let parsed = YAMLDocuments.parse("a: 1\n---\n---\nb: [x, \"2\", 3.5, true, null]\n...\n", file: "f.yaml")
        #expect(parsed.diagnostics.isEmpty)
        #expect(parsed.documents.count == 2)
        #expect(parsed.documents[1].value == ["b": ["x", "2", 3.5, true, nil]])
    }

    @Test func keepsPlacesOfKeysAndValues() throws {
        let parsed = YAMLDocuments.parse("spec:\n  rules:\n  - from: []\n    to:\n    - operation: {ports: [\"80\"]}\n", file: "p.yaml")
        let spec = try #require(parsed.documents.first?["spec"])
        #expect(spec.span == SourceSpan(file: "p.yaml", line: 2, column: 3))
        guard case .sequence(let rules)? = spec["rules"]?.content, case .mapping(let entries)? = rules.first?.content else {
            Issue.record("rules[0] is not a mapping")
            return
        }
        #expect(entries.map(\.key) == ["from", "to"])
        #expect(entries[1].keySpan == SourceSpan(file: "p.yaml", line: 4, column: 5))
    }

    @Test func distinguishesQuotedFromPlainScalars() throws {
        let parsed = YAMLDocuments.parse("a: 8080\nb: \"8080\"\nc: yes\nd: ~\ne: 1.5\n", file: "t.yaml")
        let doc = try #require(parsed.documents.first)
        func kind(_ key: String) -> DocumentNode.Scalar.Kind? {
            if case .scalar(let s)? = doc[key]?.content { return s.kind }
            return nil
        }
        #expect(kind("a") == .int)
        #expect(kind("b") == .string)
        #expect(kind("c") == .bool)
        #expect(kind("d") == .null)
        #expect(kind("e") == .float)
    }

    @Test func reportsSyntaxErrorsWithTheirPlace() throws {
        let parsed = YAMLDocuments.parse("ok: 1\n---\nbad: [1, 2\nnext: 3\n", file: "broken.yaml")
        #expect(parsed.documents.count == 1, "documents before the error are kept")
        let error = try #require(parsed.diagnostics.first)
        #expect(error.code == "yaml_parse_error")
        #expect(error.span?.file == "broken.yaml")
        #expect(error.span?.line == 4)
        #expect(error.message.hasPrefix("invalid YAML: "))
    }

    @Test func reportsDuplicateKeys() throws {
        let parsed = YAMLDocuments.parse("a: 1\na: 2\n", file: "dup.yaml")
        let error = try #require(parsed.diagnostics.first)
        #expect(error.message.contains("duplicate keys `a`"))
    }

    @Test func readsJSON() {
        let parsed = YAMLDocuments.parse(#"{"kind": "AuthorizationPolicy", "spec": {"rules": [{}]}}"#, file: "p.json")
        #expect(parsed.documents.first?["kind"]?.value == "AuthorizationPolicy")
    }

    @Test func resolvesAliases() {
        let parsed = YAMLDocuments.parse("base: &b {x: 1}\ncopy: *b\n", file: "a.yaml")
        #expect(parsed.documents.first?["copy"]?.value == ["x": 1])
    }
}

@Suite struct DocumentDecoderTests {
    @Test func unknownFieldsAndTypeMismatchesAreAllReported() throws {
        let doc = try #require(YAMLDocuments.parse("nmae: x\ncount: \"3\"\nitems: notalist\n", file: "d.yaml").documents.first)
        let decoder = DocumentDecoder()
        let fields = try #require(decoder.fields(doc, at: .root, known: ["name", "count", "items"]))
        _ = fields["items"].flatMap { decoder.strings($0, at: fields.path("items")) }
        _ = fields["count"].flatMap { decoder.bool($0, at: fields.path("count")) }
        let messages = decoder.diagnostics.map(\.description)
        #expect(messages == [
            "d.yaml:1:1: nmae: unknown field `nmae`; did you mean `name`?",
            "d.yaml:3:8: items: expected a list, found a string",
            "d.yaml:2:8: count: expected a boolean, found a string",
        ])
    }
}
