import Foundation
import ArgumentParser
import Conformance
import PolicyCore

/// `warden conformance`: runs the data-driven suite under `conformance/`.
struct ConformanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Run the conformance cases (policies, requests and expected decisions written as data)."
    )

    @Argument(help: "The suite's root directory.")
    var directory: String = "conformance"

    @Option(help: "Run only one kind of case (a subdirectory, such as `authz` or `rego`).")
    var only: String?

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Flag(name: .shortAndLong, help: "List every case, not just failures.")
    var verbose = false

    func run() throws {
        let results = ConformanceSuite.run(root: directory, only: only)
        let failed = results.filter { !$0.passed }
        switch format {
        case .json:
            let report: Value = [
                "passed": .int(results.count - failed.count),
                "failed": .int(failed.count),
                "failures": .array(failed.map { ["file": .string($0.file), "note": .string($0.note), "failure": .string($0.failure ?? "")] }),
            ]
            writeOutput(JSONWriter.string(report, pretty: true))
        case .text:
            for result in results where verbose || !result.passed {
                if let failure = result.failure {
                    writeOutput("FAIL \(result.file): \(result.note)\n     \(failure.replacingOccurrences(of: "\n", with: "\n     "))")
                } else {
                    writeOutput("PASS \(result.file): \(result.note)")
                }
            }
            writeOutput("\(results.count - failed.count) passed, \(failed.count) failed")
        }
        if results.isEmpty {
            writeError("no conformance cases found under `\(directory)`")
            throw ExitCode(Warden.Status.unusable)
        }
        if !failed.isEmpty { throw ExitCode(Warden.Status.failed) }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
