import PolicyCore
import Rego
import Synchronization

/// Runs `conformance/rego/**/*.yaml`, written in OPA's compliance format:
///
/// ```yaml
/// cases:
/// - note: a unique name
///   modules: ["package test\np := 1\n"]   # named test-0.rego, test-1.rego, ... in error locations
///   data: {...}                           # optional base data
///   input: ...                            # optional; absent means no input at all
///   query: data.test.p = x
///   want_result: [{x: 1}]                 # the bindings of each solution, in order; [] when undefined
///   want_error_code: rego_type_error      # instead of want_result
///   want_error: "conflicting rules"       # a part of the error's message
///   strict_error: true                    # evaluate with strict builtin errors
///   want_prints: ["message"]              # optional: what `print` writes
/// ```
///
/// Values are compared as JSON text, so number spellings (`1.0` against `1`) count.
public enum RegoCaseRunner {
    public static let runner = ConformanceSuite.Runner(directory: "rego") { file in run(file) }

    static let caseFields = [
        "note", "modules", "data", "input", "query", "want_result", "want_error_code", "want_error",
        "strict_error", "sort_bindings", "want_prints",
    ]

    public static func run(_ file: CaseFile) -> [CaseResult] {
        var notes: Set<String> = []
        return file.cases.enumerated().map { index, node in
            let note = node["note"]?.value.stringValue ?? "case \(index)"
            var result = runCase(node, file: file.path, note: note)
            if !notes.insert(note).inserted { result.failure = "duplicate note" }
            return result
        }
    }

    static func runCase(_ node: DocumentNode, file: String, note: String) -> CaseResult {
        func fail(_ message: String) -> CaseResult { CaseResult(file: file, note: note, failure: message) }
        let decoder = DocumentDecoder()
        guard let fields = decoder.fields(node, at: .root, known: caseFields) else { return fail("a case must be an object") }
        if let problem = decoder.diagnostics.first { return fail(problem.description) }
        guard case .sequence(let moduleNodes)? = fields["modules"]?.content else { return fail("`modules` must be a list") }
        var modules: [RegoModuleSource] = []
        for (i, m) in moduleNodes.enumerated() {
            guard let text = m.value.stringValue else { return fail("each module must be a string") }
            modules.append(RegoModuleSource(path: "test-\(i).rego", text: text))
        }
        guard let query = fields["query"]?.value.stringValue else { return fail("`query` must be a string") }
        let data = fields["data"]?.value ?? .object([Value: Value]())
        let input = fields["input"]?.value
        let strict = fields["strict_error"]?.value.boolValue ?? false
        let printed = PrintLog()
        let options = RegoEvaluationOptions(
            strictBuiltinErrors: strict, printHandler: { printed.append($0.message) }, now: nil)

        let outcome: Result<[RegoResult], Diagnostic>
        var compileErrors: [Diagnostic] = []
        do {
            let policy = try RegoPolicySet.compile(modules: modules, data: data)
            let prepared = try policy.prepare(query: query)
            switch prepared.evaluate(input: input, options: options) {
            case .results(let results): outcome = .success(results)
            case .error(let diagnostic): outcome = .failure(diagnostic)
            }
        } catch {
            compileErrors = error.diagnostics
            outcome = .failure(error.diagnostics.first ?? Diagnostic(code: "unknown", message: "compilation failed"))
        }

        if let wantCode = fields["want_error_code"]?.value.stringValue {
            let wantMessage = fields["want_error"]?.value.stringValue
            let errors: [Diagnostic]
            switch outcome {
            case .success(let results):
                return fail("want error \(wantCode), got \(describe(results))")
            case .failure(let diagnostic):
                errors = compileErrors.isEmpty ? [diagnostic] : compileErrors
            }
            let matches = errors.contains { e in
                e.code == wantCode && (wantMessage.map { e.message.contains($0) || RegoError.render(e).contains($0) } ?? true)
            }
            if !matches {
                return fail(
                    "want error \(wantCode): \(wantMessage ?? ""), got:\n" + errors.map { RegoError.render($0) }.joined(separator: "\n"))
            }
            return CaseResult(file: file, note: note)
        }
        guard let want = fields["want_result"] else { return fail("a case needs `want_result` or `want_error_code`") }
        let results: [RegoResult]
        switch outcome {
        case .failure(let diagnostic):
            let all = compileErrors.isEmpty ? [diagnostic] : compileErrors
            return fail("unexpected error:\n" + all.map { RegoError.render($0) }.joined(separator: "\n"))
        case .success(let r):
            results = r
        }
        var got = results.map { bindingsValue($0) }
        var wanted = want.value.arrayValue ?? []
        if fields["sort_bindings"]?.value.boolValue == true {
            got.sort()
            wanted.sort()
        }
        let gotText = JSONWriter.string(.array(got))
        let wantText = JSONWriter.string(.array(wanted))
        if gotText != wantText {
            return fail("want \(wantText)\n got \(gotText)")
        }
        if let wantPrints = fields["want_prints"]?.value.arrayValue {
            let wantLines = wantPrints.compactMap(\.stringValue)
            if wantLines != printed.lines {
                return fail("want prints \(wantLines), got \(printed.lines)")
            }
        }
        return CaseResult(file: file, note: note)
    }

    static func bindingsValue(_ result: RegoResult) -> Value {
        var object: [Value: Value] = [:]
        for (name, value) in result.bindings { object[.string(name)] = value }
        return .object(object)
    }

    static func describe(_ results: [RegoResult]) -> String {
        results.isEmpty ? "undefined" : JSONWriter.string(.array(results.map(bindingsValue)))
    }
}

/// Collects `print` output from a single evaluation.
final class PrintLog: Sendable {
    private let storage = Mutex<[String]>([])

    func append(_ line: String) {
        storage.withLock { $0.append(line) }
    }

    var lines: [String] { storage.withLock { $0 } }
}
