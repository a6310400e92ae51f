import ArgumentParser
import PolicyCore
import PolicyLoading

/// `warden check`: validates rule files as `istioctl validate` would, reporting every problem with its place.
/// Errors (what Istio rejects) fail the check; warnings (what Istio accepts and reports) are shown and do not.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate policy files; exit 0 when they load (warnings are shown), 1 with every error listed."
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
        let warnings = result.diagnostics.filter { $0.severity == .warning }.count
        switch format {
        case .json:
            let report: Value = [
                "valid": .bool(errors == 0),
                "files": .int(result.files.count),
                "policies": .int(result.policies.count),
                "errors": .int(errors),
                "warnings": .int(warnings),
                "diagnostics": .array(shown.map(\.json)),
            ]
            writeOutput(JSONWriter.string(report, pretty: true))
        case .text:
            var renderer = DiagnosticRenderer()
            if !shown.isEmpty { writeOutput(renderer.render(shown)) }
            let files = "\(result.files.count) \(plural(result.files.count, "file", "files"))"
            let warned = warnings == 0 ? "" : ", \(warnings) \(plural(warnings, "warning", "warnings"))"
            let policies = "\(result.policies.count) \(plural(result.policies.count, "policy", "policies"))"
            if errors == 0 {
                writeOutput("ok: \(policies) in \(files)\(warned)")
            } else {
                writeOutput("\(errors) \(plural(errors, "error", "errors")) in \(files)\(warned)")
            }
        }
        if errors > 0 { throw ExitCode(Warden.Status.failed) }
    }
}

func plural(_ n: Int, _ one: String, _ many: String) -> String { n == 1 ? one : many }
