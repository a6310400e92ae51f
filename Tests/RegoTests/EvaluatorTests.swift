import PolicyCore
import Rego
import Synchronization
import Testing

@Suite struct EvaluatorTests {
    @Test func undefinedIsNotFalse() throws {
        let policy = try compile("package a\nf := false\nu if false\n")
        #expect(try value(policy, "data.a.f") == .value(false))
        #expect(try value(policy, "data.a.u") == .undefined)
        #expect(try value(policy, "data.a") == .value(["f": false]))
    }

    @Test func builtinErrorsAreUndefinedUnlessStrict() throws {
        let policy = try compile("package a\ndefault p := \"fallback\"\np := 1 / input.n\n")
        #expect(try value(policy, "data.a.p", input: ["n": 0]) == .value("fallback"))
        let strict = RegoEvaluationOptions(strictBuiltinErrors: true)
        guard case .error(let error) = try value(policy, "data.a.p", input: ["n": 0], options: strict) else {
            Issue.record("strict mode should fail")
            return
        }
        #expect(error.code == "eval_builtin_error")
        #expect(RegoError.render(error) == "test-0.rego:3: eval_builtin_error: div: divide by zero")
    }

    @Test func typeErrorsFromInputAreUndefinedUnlessStrict() throws {
        let policy = try compile("package a\np if { not input.n + 1 }\n")
        // The call is undefined, so `not` holds.
        #expect(try value(policy, "data.a.p", input: ["n": "x"]) == .value(true))
        let strict = RegoEvaluationOptions(strictBuiltinErrors: true)
        guard case .error(let error) = try value(policy, "data.a.p", input: ["n": "x"], options: strict) else {
            Issue.record("strict mode should fail")
            return
        }
        #expect(error.message == "plus: operand 1 must be number but got string")
    }

    @Test func conflictsAreErrorsWithTheirPlace() throws {
        let policy = try compile("package a\np := input.x\np := 2\n")
        guard case .error(let error) = try value(policy, "data.a.p", input: ["x": 1]) else {
            Issue.record("expected a conflict")
            return
        }
        #expect(error.code == "eval_conflict_error")
        #expect(error.message == "complete rules must not produce multiple outputs")
        #expect(error.span?.file == "test-0.rego")
    }

    @Test func printGoesToTheHandler() throws {
        let policy = try compile("package a\np if {\n  print(\"user\", input.user, [1, {\"a\"}])\n}\n")
        let lines = Mutex<[String]>([])
        let options = RegoEvaluationOptions(printHandler: { event in
            lines.withLock { $0.append("\(event.location.line): \(event.message)") }
        })
        #expect(try value(policy, "data.a.p", input: ["user": "ann"], options: options) == .value(true))
        #expect(lines.withLock { $0 } == ["3: user ann [1, {\"a\"}]"])
    }

    @Test func virtualDocumentsMergeRulesAndBaseData() throws {
        let policy = try compile(
            "package a\np := 1\nq contains 2\n", "package a.b\nr := 3\n", data: ["a": ["limits": ["max": 5]]])
        #expect(try value(policy, "data.a") == .value(["p": 1, "q": .set([2]), "b": ["r": 3], "limits": ["max": 5]]))
        #expect(try value(policy, "data.a.limits.max") == .value(5))
        #expect(policy.packages == [["a"], ["a", "b"]])
    }

    @Test func withReplacementsEndWithTheirExpression() throws {
        let policy = try compile("package a\nq := input.x\np := [a, b, c] if {\n  a := q\n  b := q with input.x as 9\n  c := q\n}\n")
        #expect(try value(policy, "data.a.p", input: ["x": 1]) == .value([1, 9, 1]))
    }

    @Test func preparedQueriesRunConcurrently() async throws {
        var text = "package authz\ndefault allow := false\n"
        for i in 0..<50 { text += "allow if { input.user == \"u\(i)\"; input.action in {\"read\", \"list\"} }\n" }
        text += "roles contains r if { some r in input.roles; startswith(r, \"app-\") }\n"
        let policy = try compile(text)
        let allow = try policy.prepare(query: "data.authz.allow")
        let roles = try policy.prepare(path: ["authz", "roles"])
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var mismatches = 0
                    for i in 0..<300 {
                        let user = "u\((task * 31 + i) % 70)"
                        let input: Value = ["user": .string(user), "action": i % 3 == 0 ? "write" : "read", "roles": ["app-a", "x"]]
                        let expected = (task * 31 + i) % 70 < 50 && i % 3 != 0
                        if allow.evaluateValue(input: input) != .value(.bool(expected)) { mismatches += 1 }
                        if roles.evaluateValue(input: input) != .value(.set(["app-a"])) { mismatches += 1 }
                    }
                    return mismatches
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    @Test func functionReplacementCallingTheReplacedFunctionTerminates() throws {
        let policy = try compile("package a\nf(x) := g(x)\ng(x) := h(x)\nh(x) := 1\np := y if { y := f(1) with h as f }\n")
        #expect(try value(policy, "data.a.p") == .value(1))
    }

    @Test func generalQueriesReportBindingsAndExpressionValues() throws {
        let policy = try compile("package a\ns := {\"b\", \"a\"}\n")
        guard case .results(let results) = try policy.prepare(query: "data.a.s[x]").evaluate(input: nil) else {
            Issue.record("query failed")
            return
        }
        #expect(results.map { $0.bindings } == [["x": "a"], ["x": "b"]])
        #expect(results.map { $0.expressions[0].value } == ["a", "b"])
    }

    @Test func numbersKeepTheirSpellingThroughEvaluation() throws {
        let policy = try compile("package a\np := [1.50, input.n, 1e3 + 1]\n")
        guard case .value(let v) = try value(policy, "data.a.p", input: json("{\"n\": 2.0}")) else {
            Issue.record("no value")
            return
        }
        #expect(JSONWriter.string(v) == "[1.50,2.0,1001]")
    }
}
