import Documents
import Foundation
import PolicyCore
import Testing
import WardenTesting

/// YAML and JSON over `InputLimits` are refused before any node is built, with the place they go over.
@Suite struct InputLimitsTests {
    static let billionLaughs = HostileInputs.billionLaughs

    @Test func aBillionLaughsIsRefusedBeforeExpansion() throws {
        let parsed = YAMLDocuments.parse(Self.billionLaughs, file: "laughs.yaml")
        #expect(parsed.documents.isEmpty)
        let diagnostic = try #require(parsed.diagnostics.first)
        #expect(diagnostic.code == Diagnostic.Code.limitExceeded)
        #expect(diagnostic.message.contains("limits.max_yaml_alias_nodes"))
        // Each `*e` stands for 66,430 nodes; the first on line 6 takes what the aliases add past 100,000.
        #expect(diagnostic.span == SourceSpan(file: "laughs.yaml", line: 6, column: 8))
    }

    @Test func tenThousandAliasesAreRefused() throws {
        let text = "x: &x [1]\ny: [" + Array(repeating: "*x", count: 10_000).joined(separator: ",") + "]\n"
        let parsed = YAMLDocuments.parse(text, file: "many.yaml")
        let diagnostic = try #require(parsed.diagnostics.first)
        #expect(diagnostic.message.contains("limits.max_yaml_aliases"))
        #expect(diagnostic.span?.line == 2)
        // With a higher alias count, the expansion bound still holds for a large anchor.
        let big = "x: &x [" + Array(repeating: "1", count: 1_000).joined(separator: ",") + "]\ny: ["
            + Array(repeating: "*x", count: 500).joined(separator: ",") + "]\n"
        let expanded = YAMLDocuments.parse(big, file: "big.yaml")
        #expect(expanded.diagnostics.first?.message.contains("limits.max_yaml_alias_nodes") == true)
    }

    @Test func aliasesWithinTheBoundsAreExpanded() throws {
        let parsed = YAMLDocuments.parse("base: &b {a: 1}\nuse: [*b, *b]\n", file: "ok.yaml")
        #expect(parsed.diagnostics.isEmpty)
        #expect(parsed.documents.first?["use"]?.value == [["a": 1], ["a": 1]])
        let none = YAMLDocuments.parse("base: &b {a: 1}\nuse: *b\n", file: "ok.yaml", limits: InputLimits(maxYAMLAliases: 0))
        #expect(none.diagnostics.first?.message.contains("limits.max_yaml_aliases") == true)
    }

    @Test(arguments: [500, 10_000])
    func deepYAMLIsRefusedWithItsPlace(depth: Int) throws {
        let parsed = YAMLDocuments.parse("a: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth), file: "deep.yaml")
        let diagnostic = try #require(parsed.diagnostics.first)
        #expect(diagnostic.code == Diagnostic.Code.limitExceeded)
        #expect(diagnostic.message.contains("limits.max_nesting_depth"))
        if depth < 1_000 {
            // The mapping is level 1, so the 128th bracket is the 129th level.
            #expect(diagnostic.span == SourceSpan(file: "deep.yaml", line: 1, column: 4 + 127))
        } else {
            // Past 1,000 levels libyaml stops first, where it reads ahead from.
            #expect(diagnostic.span?.line == 1)
        }
        let block = (0..<200).map { String(repeating: "  ", count: $0) + "k:" }.joined(separator: "\n") + " 1\n"
        #expect(YAMLDocuments.parse(block, file: "block.yaml").diagnostics.first?.code == Diagnostic.Code.limitExceeded)
        let fine = (0..<100).map { String(repeating: "  ", count: $0) + "k:" }.joined(separator: "\n") + " 1\n"
        #expect(YAMLDocuments.parse(fine, file: "block.yaml").diagnostics.isEmpty)
    }

    @Test func deepJSONIsRefusedWithItsPlace() {
        let text = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        do {
            _ = try JSONReader.parse(text, maximumDepth: 128)
            Issue.record("parsed")
        } catch {
            #expect(error.line == 1 && error.column == 129)
            #expect(error.message.contains("limits.max_nesting_depth"))
        }
        // YAML reads JSON too, under the same bound.
        #expect(YAMLDocuments.parse(text, file: "deep.json").diagnostics.first?.code == Diagnostic.Code.limitExceeded)
    }

    @Test func largeFilesAreRefusedWithoutBeingReadWhole() throws {
        let directory = FileManager.default.temporaryDirectory.path + "/warden-limits-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/big.yaml"
        try String(repeating: "# padding\n", count: 200).write(toFile: file, atomically: true, encoding: .utf8)
        let limits = InputLimits(maxFileBytes: 1_000)
        guard case .failure(let diagnostic) = DocumentFiles.read(file, limits: limits) else {
            Issue.record("read a file over the limit")
            return
        }
        #expect(diagnostic.code == Diagnostic.Code.limitExceeded)
        #expect(diagnostic.span == SourceSpan(file: file, line: 1, column: 1))
        #expect(diagnostic.message.contains("limits.max_file_bytes"))
        guard case .success(let text) = DocumentFiles.read(file, limits: InputLimits(maxFileBytes: 2_000)) else {
            Issue.record("a file at the limit was refused")
            return
        }
        #expect(text.utf8.count == 2_000)
        // Texts that did not come from a file are held to the same bound.
        #expect(YAMLDocuments.parse(text, file: "t.yaml", limits: limits).diagnostics.first?.code == Diagnostic.Code.limitExceeded)
    }
}
