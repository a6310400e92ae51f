import PolicyCore
import Rego
import Testing

/// Generated policies that nest evaluation far beyond what real policies do: each either evaluates (long bodies
/// and loops run without nesting on the machine stack) or stops with `eval_cancel_error` at the place where
/// nesting went too deep, and never runs out of stack. Run in debug builds, whose frames are largest.
@Suite struct DeepEvaluationTests {
    @Test func aBodyOfTenThousandLiteralsEvaluates() throws {
        let body = String(repeating: "  input.x == 1\n", count: 10_000)
        let policy = try compile("package t\np if {\n\(body)}\n")
        #expect(try value(policy, "data.t.p", input: ["x": 1]) == .value(true))
        #expect(try value(policy, "data.t.p", input: ["x": 2]) == .undefined)
    }

    @Test func tenThousandNestedLoopsEvaluate() throws {
        let loops = (0..<10_000).map { "  some x\($0) in input.xs\n" }.joined()
        let policy = try compile("package t\nn := count([1 |\n\(loops)])\n")
        #expect(try value(policy, "data.t.n", input: ["xs": [7]]) == .value(1))
        #expect(try value(policy, "data.t.n", input: ["xs": []]) == .value(0))
    }

    @Test func fiveThousandChainedRulesStopWithTheirPlace() throws {
        var text = "package t\nr0 := input.x\n"
        for i in 1..<5_000 { text += "r\(i) := r\(i - 1)\n" }
        let policy = try compile(text)
        // A short chain evaluates.
        #expect(try value(policy, "data.t.r100", input: ["x": 1]) == .value(1))
        let error = try #require(deepError(policy, "data.t.r4999"))
        // The innermost rule reached when the limit was hit: 4999, 4998, ... counting down.
        let line = try #require(error.span?.line)
        #expect(line > 4_000 && line <= 5_001)
        #expect(error.span?.file == "test-0.rego")
    }

    @Test func fiveThousandChainedFunctionsStop() throws {
        var text = "package t\nf0(x) := x\n"
        for i in 1..<5_000 { text += "f\(i)(x) := f\(i - 1)(x)\n" }
        text += "p := f4999(input.x)\n"
        let policy = try compile(text)
        #expect(try value(policy, "data.t.f100(4)") == .value(4))
        #expect(deepError(policy, "data.t.p") != nil)
    }

    @Test func chainsOfNegationsAndComprehensionsStop() throws {
        var nots = "package t\nq0 if input.x == 2\n"
        for i in 1..<3_000 { nots += "q\(i) if { not q\(i - 1) }\n" }
        #expect(deepError(try compile(nots), "data.t.q2999") != nil)

        var comprehensions = "package t\nc0 := [input.x]\n"
        for i in 1..<3_000 { comprehensions += "c\(i) := [y | some y in c\(i - 1)]\n" }
        let policy = try compile(comprehensions)
        #expect(try value(policy, "data.t.c50", input: ["x": 3]) == .value([3]))
        #expect(deepError(policy, "data.t.c2999") != nil)
    }

    @Test func nestedComprehensionsWithinTheLimitEvaluate() throws {
        let depth = 60
        let text = "package t\np := " + String(repeating: "[x | x := ", count: depth) + "input.x"
            + String(repeating: "]", count: depth) + "\n"
        let policy = try compile(text)
        var expected: Value = 5
        for _ in 0..<depth { expected = .array([expected]) }
        #expect(try value(policy, "data.t.p", input: ["x": 5]) == .value(expected))
    }

    /// The deepest text the parser lets through (`InputLimits.maximumNestingDepth`), placed in each of a chain of
    /// rules deeper than evaluation goes: nested collections around the next rule, operator chains, nested
    /// comprehensions. Each evaluates or stops with its error; none runs out of stack.
    @Test func theDeepestTermsInTheDeepestRulesStop() throws {
        let deep = InputLimits.maximumNestingDepth - 2
        let limits = InputLimits(maxNestingDepth: InputLimits.maximumNestingDepth)
        func chain(_ rule: (Int) -> String) throws -> RegoPolicySet {
            let text = "package t\nr0 := input.x\n" + (1..<310).map { rule($0) + "\n" }.joined()
            return try RegoPolicySet.compile(modules: [RegoModuleSource(path: "deep.rego", text: text)], limits: limits)
        }
        let arrays = try chain { "r\($0) := " + String(repeating: "[", count: deep) + "r\($0 - 1)" + String(repeating: "]", count: deep) }
        #expect(deepError(arrays, "data.t.r309") != nil)
        let sums = try chain { "r\($0) := " + Array(repeating: "1", count: deep).joined(separator: " + ") + " + r\($0 - 1)" }
        #expect(deepError(sums, "data.t.r309") != nil)
        let comprehensions = try chain { i in
            "r\(i) := " + String(repeating: "[y | y := ", count: deep / 2) + "r\(i - 1)" + String(repeating: "]", count: deep / 2)
        }
        #expect(deepError(comprehensions, "data.t.r309") != nil)
    }

    /// Patterns and operand lists recurse once per element: a very wide one matches, or stops with the error.
    @Test func aPatternOfTwentyThousandVariablesMatchesOrStops() throws {
        let count = 20_000
        let variables = (0..<count).map { "a\($0)" }.joined(separator: ", ")
        let policy = try compile("package t\np if {\n  [\(variables)] = input.xs\n  a0 == 0\n}\n")
        let input: Value = ["xs": .array((0..<count).map { .int($0) })]
        switch try value(policy, "data.t.p", input: input) {
        case .value(let v): #expect(v == true)
        case .error(let error): #expect(error.code == "eval_cancel_error")
        case .undefined: Issue.record("undefined")
        }
    }

    /// The error of a query that nests too deeply, checked to be the depth limit's.
    private func deepError(_ policy: RegoPolicySet, _ query: String) -> Diagnostic? {
        guard case .error(let error) = try? value(policy, query, input: ["x": 1]) else {
            Issue.record("\(query) should stop with an error")
            return nil
        }
        #expect(error.code == "eval_cancel_error")
        #expect(error.message.hasPrefix("evaluation nested too deeply"))
        return error
    }
}
