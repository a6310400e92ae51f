import ArgumentParser
import Foundation
import PolicyCore
import Rego
import Synchronization

/// `warden test`: runs every `test_*` rule of the policies, like `opa test`.
struct TestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run Rego tests: every rule named test_* (like `opa test`).",
        discussion: """
            A test passes when its rule is true, fails when it is undefined or has another value, and is an \
            error when evaluating it fails. Rules named todo_test_* are skipped. Exits 1 when any test fails or \
            errs, 2 when the files cannot be loaded or compiled.
            """
    )

    @Argument(help: "Policy and data files, or directories of them.")
    var paths: [String]

    @Flag(name: .shortAndLong, help: "List every test and what the tests printed, not just failures.")
    var verbose = false

    @Option(name: .customLong("run"), help: "Run only the tests whose name contains this text.")
    var filter: String?

    @OptionGroup var limits: LimitOptions

    @Flag(name: .customLong("strict-builtin-errors"), help: "Treat builtin errors as test errors.")
    var strictBuiltinErrors = false

    enum Outcome: String {
        case pass = "PASS", fail = "FAIL", error = "ERROR", skip = "SKIPPED"
    }

    struct Report {
        var test: RegoTestRule
        var outcome: Outcome
        var detail: String?
        var printed: [String]
        var duration: Duration
    }

    func run() throws {
        let (files, problems) = RegoFiles.load(paths, limits: limits.applied())
        if let problem = problems.first {
            writeError(problem.description)
            throw ExitCode(Warden.Status.unusable)
        }
        let policy: RegoPolicySet
        do {
            policy = try RegoPolicySet.compile(modules: files.modules, data: files.data, limits: files.limits)
        } catch {
            var renderer = DiagnosticRenderer()
            for diagnostic in error.diagnostics {
                writeError(RegoError.render(diagnostic))
                if diagnostic.span != nil, let caret = renderer.render(diagnostic).split(separator: "\n", maxSplits: 1).dropFirst().first {
                    writeError(String(caret))
                }
            }
            throw ExitCode(Warden.Status.unusable)
        }
        let tests = policy.testRules.filter { filter == nil || $0.name.contains(filter!) }
        var reports: [Report] = []
        for test in tests {
            reports.append(runTest(test, in: policy))
        }
        writeOutput(TestCommand.render(reports, verbose: verbose))
        if reports.contains(where: { $0.outcome == .fail || $0.outcome == .error }) {
            throw ExitCode(Warden.Status.failed)
        }
    }

    private func runTest(_ test: RegoTestRule, in policy: RegoPolicySet) -> Report {
        if test.isSkipped {
            return Report(test: test, outcome: .skip, detail: nil, printed: [], duration: .zero)
        }
        let printed = Mutex<[String]>([])
        let options = RegoEvaluationOptions(
            strictBuiltinErrors: strictBuiltinErrors,
            printHandler: { event in printed.withLock { $0.append(event.message) } })
        let clock = ContinuousClock()
        let start = clock.now
        let outcome: RegoOutcome
        do {
            outcome = try policy.prepare(path: test.path).evaluateValue(input: nil, options: options)
        } catch {
            outcome = .error(error.diagnostics.first ?? Diagnostic(code: "error", message: "cannot prepare the test"))
        }
        let duration = clock.now - start
        let lines = printed.withLock { $0 }
        switch outcome {
        case .value(.bool(true)):
            return Report(test: test, outcome: .pass, detail: nil, printed: lines, duration: duration)
        case .value(let v):
            return Report(test: test, outcome: .fail, detail: "value: \(v.regoText)", printed: lines, duration: duration)
        case .undefined:
            return Report(test: test, outcome: .fail, detail: nil, printed: lines, duration: duration)
        case .error(let diagnostic):
            return Report(
                test: test, outcome: .error, detail: RegoError.render(diagnostic), printed: lines, duration: duration)
        }
    }

    /// The report in `opa test`'s layout: tests by file (all of them with -v, otherwise those that did not
    /// pass), the totals, and a final `N passed, N failed` line.
    static func render(_ reports: [Report], verbose: Bool) -> String {
        var out: [String] = []
        var file: String?
        for report in reports where verbose || report.outcome == .fail || report.outcome == .error {
            if report.test.location.file != file {
                file = report.test.location.file
                if !out.isEmpty { out.append("") }
                out.append("\(file!):")
            }
            var line = "\(report.test.name): \(report.outcome.rawValue)"
            if report.outcome != .skip { line += " (\(format(report.duration)))" }
            out.append(line)
            if let detail = report.detail { out.append("  \(detail)") }
            if verbose || report.outcome != .pass {
                for printed in report.printed { out.append("  \(printed)") }
            }
        }
        if !out.isEmpty { out.append(String(repeating: "-", count: 80)) }
        let total = reports.count
        let count = { (o: Outcome) in reports.filter { $0.outcome == o }.count }
        for outcome in [Outcome.pass, .fail, .error, .skip] where count(outcome) > 0 {
            out.append("\(outcome.rawValue): \(count(outcome))/\(total)")
        }
        out.append("\(count(.pass)) passed, \(count(.fail) + count(.error)) failed")
        return out.joined(separator: "\n")
    }

    private static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let microseconds = Double(seconds) * 1e6 + Double(attoseconds) / 1e12
        if microseconds < 1000 { return String(format: "%.0fµs", microseconds) }
        return String(format: "%.1fms", microseconds / 1000)
    }
}
