import PolicyCore
@testable import Rego
import Testing

@Suite struct CompilerTests {
    @Test func bodiesAreOrderedForSafety() throws {
        let policy = try compile("package a\np := y if {\n  y = x + 1\n  x = 2\n}\n")
        #expect(try value(policy, "data.a.p") == .value(3))
    }

    @Test func unsafeVariablesAreReportedWithTheirPlace() {
        let errors = compileErrors("package a\n\np if {\n  x > y\n}\n")
        #expect(errors.map(\.message) == ["var x is unsafe", "var y is unsafe"])
        #expect(errors.allSatisfy { $0.code == "rego_unsafe_var_error" && $0.span?.line == 4 && $0.span?.column == 3 })
    }

    @Test func declarationErrors() {
        #expect(compileErrors("package a\np if { x := 1; x := 2 }\n").map(\.message) == ["var x assigned above"])
        #expect(compileErrors("package a\np if { some x; true }\n").map(\.message) == ["declared var x unused"])
        #expect(compileErrors("package a\np if { x == 1; x := 1 }\n").map(\.message) == ["var x referenced above"])
    }

    @Test func recursionIsReportedWithThePath() {
        let errors = compileErrors("package a\np if q\nq if r\nr if p\n")
        #expect(errors.count == 3)
        #expect(errors.contains { $0.message == "rule data.a.p is recursive: data.a.p -> data.a.q -> data.a.r -> data.a.p" })
        #expect(errors.allSatisfy { $0.code == "rego_recursion_error" })
    }

    @Test func typeErrorsShowWhatWasGivenAndWanted() {
        let errors = compileErrors("package a\np if { x := \"s\"; y := x + 1 }\n")
        #expect(errors.first?.code == "rego_type_error")
        #expect(errors.first?.message.hasPrefix("plus: invalid argument(s)\n\thave: (string, number, ???)\n\twant: (x: number, y: number") == true)
        let arity = compileErrors("package a\np := count([1], 2)\n")
        #expect(arity.first?.message.hasPrefix("count: arity mismatch") == true)
    }

    @Test func ruleIndexSelectsCandidates() throws {
        var text = "package a\n"
        for i in 0..<200 { text += "route := \(i) if input.path == \"/p/\(i)\"\n" }
        text += "route := -1 if input.user == \"root\"\n"
        let policy = try compile(text)
        let node = try #require(policy.nodes.first { $0.path == ["a", "route"] })
        let index = try #require(node.group?.index)
        #expect(index.candidates(input: ["path": "/p/17"]) == [17])
        #expect(index.candidates(input: ["path": "/p/17", "user": "root"]) == [17, 200])
        #expect(index.candidates(input: ["path": "/nowhere", "user": "root"]) == [200])
        #expect(index.candidates(input: nil) == [200])
        #expect(try value(policy, "data.a.route", input: ["path": "/p/150"]) == .value(150))
        #expect(try value(policy, "data.a.route", input: ["path": "/p/1", "user": "root"]).isError)
    }

    @Test func rulesWithElseAreNeverSkipped() throws {
        let policy = try compile("package a\np := 1 if input.x == 1 else := 2\np := 3 if input.x == 3\n")
        #expect(try value(policy, "data.a.p", input: ["x": 5]) == .value(2))
        #expect(try value(policy, "data.a.p", input: ["x": 3]).isError)
    }

    @Test func constantValuesStopAtTheFirstSolution() throws {
        let policy = try compile("package a\nallow if { some x in input.xs; x > 1 }\n")
        let node = try #require(policy.nodes.first { $0.path == ["a", "allow"] })
        #expect(node.group?.stopsAtFirstValue == true)
        #expect(try value(policy, "data.a.allow", input: ["xs": [1, 2, 3]]) == .value(true))
    }

    @Test func dataReferencesResolveToRuleNodes() throws {
        let policy = try compile("package a.b\np := 1\n", "package c\nq := data.a.b.p\n")
        let node = try #require(policy.nodes.first { $0.path == ["c", "q"] })
        guard case .node(let target)? = node.group?.rules.first?.clauses.first?.value else {
            Issue.record("q's value should be the node of data.a.b.p")
            return
        }
        #expect(policy.nodes[target].path == ["a", "b", "p"])
    }

    @Test func errorsAreInSourceOrder() {
        let errors = compileErrors("package a\nq if { y > 1 }\np if { x > 1 }\n")
        #expect(errors.map { $0.span?.line ?? 0 } == [2, 3])
    }
}

extension RegoOutcome {
    var isError: Bool {
        if case .error = self { return true }
        return false
    }
}
