import ArgumentParser
import Conformance
import Foundation
import PolicyCore
import Scenarios

/// `warden conformance`: runs the data-driven suite under `conformance/`: the in-process cases of every area and
/// the end-to-end scenarios, which start real `warden` processes on 127.0.0.1.
struct ConformanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Run the conformance suite: in-process cases and end-to-end scenarios with the real programs.",
        discussion: """
            Areas: authz, extauthz, jwt, rego (cases decided in-process) and scenarios (conformance/scenarios/*.yaml: \
            the CA, upstreams, `warden serve` and `warden proxy` started on free ports of 127.0.0.1 and driven with \
            curl and a gRPC client). A scenario that needs a command this build does not have is skipped, with the \
            reason. Exit status 1 when any case fails.
            """
    )

    @Argument(help: "The suite's root directory.")
    var directory: String = "conformance"

    @Option(help: "Run only one area: authz, extauthz, jwt, rego or scenarios.")
    var only: String?

    @Option(help: "Run only the cases and scenarios whose file or name contains this text.")
    var filter: String?

    @Option(help: "Output format: text, json or junit.")
    var format: ConformanceFormat = .text

    @Option(help: "Also write a conformance report (YAML, per profile) to this file.")
    var report: String?

    @Flag(name: .shortAndLong, help: "List every case, not just failures and skips.")
    var verbose = false

    static let scenarioArea = "scenarios"

    func validate() throws {
        let areas = ConformanceSuite.runners.map(\.directory) + [Self.scenarioArea]
        if let only, !areas.contains(only) {
            throw ValidationError("--only must be one of \(areas.joined(separator: ", ")), found `\(only)`")
        }
    }

    func run() async throws {
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        let progress = ProgressLine()
        var areas: [ConformanceResults.Area] = []
        for runner in ConformanceSuite.runners where only == nil || only == runner.directory {
            progress.show("\(runner.directory): running")
            let results = ConformanceSuite.run(root: root, only: runner.directory).filter(matchesFilter)
            areas.append(.init(name: runner.directory, results: results))
            progress.done("\(runner.directory): \(results.count { $0.passed }) passed, \(results.count(where: \.failed)) failed")
        }
        if only == nil || only == Self.scenarioArea {
            areas.append(.init(name: Self.scenarioArea, results: await runScenarios(root: root, progress: progress)))
        }
        progress.clear()
        let results = ConformanceResults(areas: areas, root: root)
        if results.all.isEmpty {
            writeError("no conformance cases found under `\(directory)`" + (filter.map { " matching `\($0)`" } ?? ""))
            throw ExitCode(Warden.Status.unusable)
        }
        switch format {
        case .json: writeOutput(JSONWriter.string(results.json, pretty: true))
        case .junit: writeOutput(results.junit)
        case .text: writeOutput(text(results))
        }
        if let report {
            let implementation = ConformanceResults.Implementation(
                version: Warden.version, commit: Self.commit(near: root), date: Self.now(),
                narrowedBy: [only.map { "--only \($0)" }, filter.map { "--filter \($0)" }].compactMap { $0 }.joined(separator: " ").nilIfEmpty)
            do {
                try results.report(implementation).write(toFile: report, atomically: true, encoding: .utf8)
            } catch {
                writeError("cannot write the report to `\(report)`: \(error)")
                throw ExitCode(Warden.Status.unusable)
            }
        }
        if results.failed > 0 { throw ExitCode(Warden.Status.failed) }
    }

    func matchesFilter(_ result: CaseResult) -> Bool {
        guard let filter else { return true }
        return result.file.localizedCaseInsensitiveContains(filter) || result.note.localizedCaseInsensitiveContains(filter)
    }

    func runScenarios(root: String, progress: ProgressLine) async -> [CaseResult] {
        let scenarios = root + "/" + Self.scenarioArea
        let files = ScenarioSuite.files(in: scenarios)
        let environment = ScenarioEnvironment(
            warden: Warden.executablePath, commands: Warden.commandNames, dataDirectory: scenarios,
            repository: (root as NSString).deletingLastPathComponent)
        ChildProcesses.cleanUpOnSignals { signal in Foundation.exit(128 + signal) }
        var results: [CaseResult] = []
        for (index, file) in files.enumerated() {
            let (scenario, _) = Scenario.load(path: file)
            if let filter, !file.localizedCaseInsensitiveContains(filter),
               scenario.map({ $0.title.localizedCaseInsensitiveContains(filter) || $0.name.localizedCaseInsensitiveContains(filter) }) != true {
                continue
            }
            let label = "scenarios \(index + 1)/\(files.count) \(scenario?.name ?? file)"
            progress.show(label)
            let started = ContinuousClock.now
            let result = await ScenarioSuite.run(file: file, environment: environment) { step in progress.show("\(label): \(step)") }
            let outcome = result.failed ? "FAIL" : result.skipped != nil ? "SKIP" : "PASS"
            progress.done("\(label): \(outcome) (\(seconds(since: started)))")
            results.append(result)
        }
        return results
    }

    func seconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        let tenths = Int(elapsed.components.seconds * 10 + elapsed.components.attoseconds / 100_000_000_000_000_000)
        return "\(tenths / 10).\(tenths % 10)s"
    }

    func text(_ results: ConformanceResults) -> String {
        var lines: [String] = []
        for result in results.all {
            if let failure = result.failure {
                lines.append("FAIL \(result.file): \(result.note)\n     \(failure.replacingOccurrences(of: "\n", with: "\n     "))")
            } else if let reason = result.skipped {
                lines.append("SKIP \(result.file): \(result.note): \(reason)")
            } else if verbose {
                lines.append("PASS \(result.file): \(result.note)")
            }
        }
        if !lines.isEmpty { lines.append("") }
        lines.append(results.table)
        lines.append(results.summary)
        return lines.joined(separator: "\n")
    }

    /// The git commit of the checkout holding the suite, or `unknown`.
    static func commit(near directory: String) -> String {
        guard let git = Program.find("git") else { return "unknown" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: git)
        process.arguments = ["-C", directory, "rev-parse", "--short=12", "HEAD"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return "unknown" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let commit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return process.terminationStatus == 0 && !commit.isEmpty ? commit : "unknown"
    }

    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date())
    }
}

enum ConformanceFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, junit
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// One line on standard error saying what runs now: rewritten in place on a terminal, otherwise only the
/// finished items are printed, one per line (CI logs stay readable).
final class ProgressLine: @unchecked Sendable {
    let isTerminal = isatty(STDERR_FILENO) == 1
    private let lock = NSLock()
    private var shown = false

    func show(_ text: String) {
        guard isTerminal else { return }
        lock.withLock {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + String(text.prefix(120))).utf8))
            shown = true
        }
    }

    func done(_ text: String) {
        lock.withLock {
            let prefix = isTerminal && shown ? "\r\u{1B}[K" : ""
            FileHandle.standardError.write(Data((prefix + text + "\n").utf8))
            shown = false
        }
    }

    func clear() {
        lock.withLock {
            if isTerminal && shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            shown = false
        }
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
