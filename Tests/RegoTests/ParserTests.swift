import PolicyCore
@testable import Rego
import Testing

@Suite struct ParserTests {
    private func module(_ text: String) throws -> Module {
        let (module, problems) = Parser.parseModule(text, file: "m.rego")
        #expect(problems.isEmpty, "\(problems)")
        return try #require(module)
    }

    private func problems(_ text: String) -> [Diagnostic] {
        Parser.parseModule(text, file: "m.rego").1
    }

    @Test func ruleFormsAndTheirHeads() throws {
        let m = try module(
            """
            package a.b
            import data.lib as l
            default allow := false
            allow if input.x
            deny contains msg if msg := "no"
            obj[k] := v if { k := "a"; v := 1 }
            a.b.c := 1
            f(x, [y, _]) := x + y
            p := 1 if false else := 2
            """)
        #expect(m.package == ["a", "b"])
        #expect(m.imports.count == 1 && m.imports[0].boundName == "l")
        #expect(m.rules.map(\.head.name) == ["allow", "allow", "deny", "obj", "a", "f", "p"])
        #expect(m.rules[0].isDefault)
        #expect(m.rules[2].head.isContains)
        #expect(m.rules[3].head.reference.count == 2 && m.rules[3].head.assigns)
        #expect(m.rules[4].head.reference.count == 3)
        #expect(m.rules[5].head.arguments?.count == 2)
        #expect(m.rules[6].elseClauses.count == 1)
        #expect(m.rules[3].location.line == 6 && m.rules[3].location.column == 1)
    }

    @Test func newlinesSeparateExpressionsButNotOperators() throws {
        let m = try module("package a\np := x if {\n  y := [1, 2]\n  x := y\n  [0]\n}\nq := 1 +\n  2\n")
        // `[0]` on its own line is an expression of its own, not an index into `y`.
        #expect(m.rules[0].body.count == 3)
        guard case .call(_, let args) = m.rules[1].head.value?.kind else {
            Issue.record("q's value should be a call")
            return
        }
        #expect(args.count == 2)
    }

    @Test func spaceBeforeBracketIsNotAReference() {
        let found = problems("package a\np := x if { y := [1]; x := y [0] }\n")
        #expect(found.first?.message == "unexpected [ token: expected \\n or ; or }")
    }

    @Test func v0SyntaxIsRejectedWithOPAsMessages() {
        let found = problems("package a\ndeny[msg] { msg := 1 }\n")
        #expect(found.map(\.message) == [
            "`if` keyword is required before rule body",
            "`contains` keyword is required for partial set rules",
        ])
        #expect(found.allSatisfy { $0.code == "rego_parse_error" && $0.span?.line == 2 })
    }

    @Test func comprehensionHeadsAreSingleTerms() throws {
        // As in OPA, `[x * 2 | ...]` is not a comprehension: the bar is set union.
        #expect(problems("package a\np := [x * 2 | some x in [1]]\n").first?.message == "unexpected some keyword")
        let m = try module("package a\np := [f(x) | some x in [1]]\nq := {k: v | some k, v in {}}\n")
        guard case .arrayComprehension? = m.rules[0].head.value?.kind,
            case .objectComprehension? = m.rules[1].head.value?.kind
        else {
            Issue.record("expected comprehensions")
            return
        }
    }

    @Test func stringsNumbersAndEscapes() throws {
        let m = try module("package a\np := [\"a\\u00e9\\n\", `raw\\n`, 1.50, -3, 1e3]\n")
        let value = m.rules[0].head.value?.groundValue
        #expect(value == .array(["a\u{e9}\n", "raw\\n", .number(Number(literal: "1.50")!), -3, .number(Number(literal: "1e3")!)]))
        #expect(value.map { JSONWriter.string($0) } == "[\"a\u{e9}\\n\",\"raw\\\\n\",1.50,-3,1e3]")
    }

    @Test func lexicalErrorsHavePlaces() {
        let found = problems("package a\n\np := \"abc\n")
        #expect(found.first?.message == "non-terminated string")
        #expect(found.first?.span == SourceSpan(file: "m.rego", line: 3, column: 6))
    }

    @Test func queryExpressionsKeepTheirText() throws {
        let policy = try compile("package a\np := 1\n")
        let query = try policy.prepare(query: "x := data.a.p;   x > 0")
        guard case .results(let results) = query.evaluate(input: nil) else {
            Issue.record("query failed")
            return
        }
        #expect(results.first?.expressions.map(\.text) == ["x := data.a.p", "x > 0"])
        #expect(results.first?.expressions.map(\.location.column) == [1, 18])
    }
}
