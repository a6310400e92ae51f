import Foundation
import Testing
import WardenTesting

/// Every `$ warden ...` line of the README's console examples, run as written from the repository root, must exit
/// as the README says (0, or the status a following `$ echo $?` shows) and print what the README shows. Timings
/// (durations in any unit, and every number on lines with ns or "per second") are masked, since they vary.
@Suite struct ReadmeExamplesTests {
    struct Example: CustomTestStringConvertible, Sendable {
        var line: Int
        /// Shell assignments (`TOKEN=$(...)`) met earlier in the same block, run before the command.
        var prelude: [String]
        var command: String
        var output: [String]
        var status: Int32

        var testDescription: String { "README.md:\(line): \(command)" }
    }

    static func examples(in file: String = Repository.path("README.md")) -> [Example] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return [] }
        var examples: [Example] = []
        var inConsole = false
        var prelude: [String] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("```") {
                inConsole = !inConsole && line == "```console"
                prelude = []
                continue
            }
            guard inConsole else { continue }
            if line.hasPrefix("$ ") {
                let command = String(line.dropFirst(2))
                if command == "echo $?" {
                    examples[examples.count - 1].status = -1  // the next output line is the status
                } else if command.hasPrefix("warden ") {
                    examples.append(Example(line: index + 1, prelude: prelude, command: command, output: [], status: 0))
                } else {
                    prelude.append(command)
                }
            } else if !examples.isEmpty, examples[examples.count - 1].status == -1 {
                examples[examples.count - 1].status = Int32(line) ?? -2
            } else if !examples.isEmpty {
                examples[examples.count - 1].output.append(String(line))
            }
        }
        return examples
    }

    /// Numbers in timing lines are masked: `412.1 ns` and `22660.3 ns` compare equal.
    static func masked(_ line: String) -> String {
        // A duration in any unit (`372µs`, `1.1ms`) is a duration; timing lines have every number masked.
        let durations = line.replacing(/[0-9]+(\.[0-9]+)?(ns|µs|ms|s)\b/, with: "T")
        let timing = ["ns", "per second"].contains { line.contains($0) }
        guard timing else { return durations }
        return durations.replacing(/[0-9]+(\.[0-9]+)?/, with: "N")
    }

    @Test func theReadmeHasExamples() {
        #expect(Self.examples().count >= 6)
    }

    @Test(arguments: examples())
    func runsAsWritten(_ example: Example) async throws {
        let script = (example.prelude + [example.command]).joined(separator: "\n")
        let bin = (Repository.wardenBinary as NSString).deletingLastPathComponent
        let out = try await ProcessRunner.run(
            "/bin/bash", ["-c", script], currentDirectory: Repository.root,
            environment: ["PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")],
            timeout: .seconds(120))
        #expect(out.status == example.status, "\(out.stderr)")
        #expect(!out.stderr.contains("error"), "no error on standard error (warnings may be): \(out.stderr)")
        var printed = out.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if printed.last == "" { printed.removeLast() }
        #expect(printed.map(Self.masked) == example.output.map(Self.masked), "\(out.stdout)")
    }
}
