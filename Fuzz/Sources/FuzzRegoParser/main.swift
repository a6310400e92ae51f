import FuzzSupport
import PolicyCore
import Rego

/// The Rego lexer, parser and compiler on any text, read as a module and as a query: every input ends in a policy
/// set or in diagnostics (nesting past the bound among them) that point inside the text, never in a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRegoParser(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = FuzzInput(start, count).text
    let lines = text.utf8.reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    func checkPlaces(_ diagnostics: [Diagnostic]) {
        fuzzCheck(!diagnostics.isEmpty, "a refusal without a diagnostic")
        for diagnostic in diagnostics {
            guard let span = diagnostic.span, span.file == "fuzz.rego" else { continue }
            fuzzCheck(span.line >= 1 && span.line <= lines && span.column >= 1, "\(diagnostic) outside the text")
        }
    }
    do {
        let policy = try RegoPolicySet.compile(modules: [RegoModuleSource(path: "fuzz.rego", text: text)])
        _ = policy.testRules
    } catch {
        checkPlaces(error.diagnostics)
    }
    do {
        _ = try emptyPolicy.prepare(query: text)
    } catch {
        fuzzCheck(!error.diagnostics.isEmpty, "a refused query without a diagnostic")
    }
    return 0
}

let emptyPolicy = try! RegoPolicySet.compile(modules: [])
