import ArgumentParser
import PolicyCore
import PolicyLoading

/// `warden check`: validates rule files as `istioctl validate` would, reporting every problem with its place.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate policy files; exit 0 when clean, 1 with every error listed."
    )

    @Argument(help: "Files or directories of policies (.yaml, .yml, .json).")
    var paths: [String]

    @OptionGroup var policyOptions: PolicyOptions

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Flag(name: .shortAndLong, help: "Also show notes (such as documents of other kinds that were skipped).")
    var verbose = false

    func run() throws {
        let result = policyOptions.loader.read(paths)
        let shown = result.diagnostics.filter { verbose || $0.severity != .note }
        let errors = result.diagnostics.filter(\.isError).count
        switch format {
        case .json:
            let report: Value = [
                "valid": .bool(errors == 0),
                "files": .int(result.files.count),
                "policies": .int(result.policies.count),
                "diagnostics": .array(shown.map(\.json)),
            ]
            writeOutput(JSONWriter.string(report, pretty: true))
        case .text:
            var renderer = DiagnosticRenderer()
            if !shown.isEmpty { writeOutput(renderer.render(shown)) }
            if errors == 0 {
                writeOutput("ok: \(result.policies.count) \(plural(result.policies.count, "policy", "policies")) in \(result.files.count) \(plural(result.files.count, "file", "files"))")
            } else {
                writeOutput("\(errors) \(plural(errors, "error", "errors")) in \(result.files.count) \(plural(result.files.count, "file", "files"))")
            }
        }
        if errors > 0 { throw ExitCode(Warden.Status.failed) }
    }
}

func plural(_ n: Int, _ one: String, _ many: String) -> String { n == 1 ? one : many }
