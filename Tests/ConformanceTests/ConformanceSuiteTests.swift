import Conformance
import Testing
import WardenTesting

/// Runs every data case under `conformance/`; each failing case is reported with its file and note.
@Suite struct ConformanceSuiteTests {
    @Test(arguments: ConformanceSuite.runners.map(\.directory))
    func suite(directory: String) {
        let results = ConformanceSuite.run(root: Repository.path("conformance"), only: directory)
        #expect(!results.isEmpty, "no cases under conformance/\(directory)")
        for result in results where !result.passed {
            Issue.record("\(result.file): \(result.note)\n\(result.failure ?? "")")
        }
    }

    @Test func notesAreUniqueAcrossTheSuite() {
        let results = ConformanceSuite.run(root: Repository.path("conformance"))
        var seen: [String: String] = [:]
        for r in results {
            if let other = seen[r.note] { Issue.record("note `\(r.note)` appears in \(other) and \(r.file)") }
            seen[r.note] = r.file
        }
    }
}
