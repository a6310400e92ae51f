import PolicyCore
@testable import Rego
import Testing

/// Text nested past `InputLimits.maxNestingDepth` is a `rego_parse_error` at the place it goes over, never a
/// crash; text within the bound compiles and evaluates, and each term is parsed once.
@Suite struct NestingLimitTests {
    static let attacks: [(name: String, text: String)] = [
        ("3,000 nested parentheses", "x := " + String(repeating: "(", count: 3_000) + "1" + String(repeating: ")", count: 3_000)),
        ("a 5,000-term sum", "x := " + Array(repeating: "1", count: 5_000).joined(separator: " + ")),
        ("10,000 nested arrays", "x := " + String(repeating: "[", count: 10_000) + "1" + String(repeating: "]", count: 10_000)),
        ("10,000 nested objects", "x := " + String(repeating: "{\"a\": ", count: 10_000) + "1" + String(repeating: "}", count: 10_000)),
        ("10,000 unary minuses", "x := " + String(repeating: "-", count: 10_000) + "y"),
        ("10,000 nested calls", "x := " + String(repeating: "count([", count: 10_000) + "1" + String(repeating: "])", count: 10_000)),
        ("5,000 nested comprehensions", "x := " + String(repeating: "[y | y := ", count: 5_000) + "1" + String(repeating: "]", count: 5_000)),
        ("a 5,000-term membership chain", "x if " + Array(repeating: "1", count: 5_000).joined(separator: " in ")),
        ("5,000 nested every bodies", "x if {\n" + String(repeating: "every y in [1] {\n", count: 5_000) + "true\n" + String(repeating: "}\n", count: 5_000) + "}"),
        ("a 10,000-part reference", "x := input" + String(repeating: ".a", count: 10_000)),
    ]

    @Test(arguments: attacks)
    func deepTextIsAParseErrorWithItsPlace(_ attack: (name: String, text: String)) throws {
        let source = RegoModuleSource(path: "deep.rego", text: "package p\n\n" + attack.text + "\n")
        do {
            _ = try RegoPolicySet.compile(modules: [source])
            Issue.record("\(attack.name) compiled")
        } catch {
            let diagnostic = try #require(error.diagnostics.first)
            #expect(error.diagnostics.count == 1)
            #expect(diagnostic.code == RegoError.Code.parse, "\(attack.name)")
            #expect(diagnostic.message.contains("limits.max_nesting_depth"), "\(attack.name): \(diagnostic.message)")
            let span = try #require(diagnostic.span)
            #expect(span.file == "deep.rego" && span.line >= 3 && span.column > 1, "\(attack.name): \(span)")
        }
    }

    @Test func aLongPackagePathIsRefused() throws {
        let text = "package " + Array(repeating: "a", count: 10_000).joined(separator: ".") + "\n\nx := 1\n"
        let (module, problems) = Parser.parseModule(text, file: "m.rego")
        #expect(module == nil)
        #expect(problems.first?.message.contains("reference too long") == true)
    }

    @Test func aQueryIsReadUnderTheSameBound() throws {
        let policy = try RegoPolicySet.compile(modules: [])
        let query = String(repeating: "[", count: 5_000) + "1" + String(repeating: "]", count: 5_000)
        do {
            _ = try policy.prepare(query: query)
            Issue.record("the query was prepared")
        } catch {
            #expect(error.diagnostics.first?.code == RegoError.Code.parse)
        }
    }

    /// Just inside the bound everything works: nested literals are parsed once each (they used to be parsed
    /// twice per level, 2^depth in all), then compiled and evaluated.
    @Test func nestingWithinTheBoundEvaluates() throws {
        let depth = 100
        let text = """
            package p

            arrays := \(String(repeating: "[", count: depth))1\(String(repeating: "]", count: depth))
            objects := \(String(repeating: "{\"a\": ", count: depth))1\(String(repeating: "}", count: depth))
            sets := \(String(repeating: "{", count: depth))1\(String(repeating: "}", count: depth))
            sum := \(Array(repeating: "1", count: depth).joined(separator: " + "))
            parens := \(String(repeating: "(", count: depth))1\(String(repeating: ")", count: depth))
            """
        let policy = try RegoPolicySet.compile(modules: [RegoModuleSource(path: "ok.rego", text: text)])
        func value(_ rule: String) throws -> Value? {
            guard case .value(let v) = try policy.prepare(path: ["p", rule]).evaluateValue(input: nil) else { return nil }
            return v
        }
        var array: Value = 1
        var object: Value = 1
        for _ in 0..<depth {
            array = .array([array])
            object = .object([.string("a"): object])
        }
        #expect(try value("arrays") == array)
        #expect(try value("objects") == object)
        #expect(try value("sum") == .int(depth))
        #expect(try value("parens") == 1)
    }

    @Test func theBoundIsConfigurable() throws {
        let text = "package p\n\nx := [[[[1]]]]\n"
        let tight = InputLimits(maxNestingDepth: 4)
        #expect(throws: RegoCompileError.self) {
            try RegoPolicySet.compile(modules: [RegoModuleSource(path: "m.rego", text: text)], limits: tight)
        }
        _ = try RegoPolicySet.compile(
            modules: [RegoModuleSource(path: "m.rego", text: text)], limits: InputLimits(maxNestingDepth: 8))
    }

    /// The lexer counts columns on from the last token, so a long single line stays linear.
    @Test func aLongLineKeepsItsColumns() throws {
        let items = Array(repeating: "1", count: 20_000).joined(separator: ", ")
        let text = "package p\n\nx := [\(items), \"é\", @]\n"
        do {
            _ = try RegoPolicySet.compile(modules: [RegoModuleSource(path: "long.rego", text: text)])
            Issue.record("an illegal token compiled")
        } catch {
            let span = try #require(error.diagnostics.first?.span)
            // `x := [` is six columns; `"é", ` is five (a character, not two bytes).
            #expect(span.line == 3 && span.column == 6 + items.count + 2 + 5 + 1)
        }
    }
}
