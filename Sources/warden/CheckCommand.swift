import ArgumentParser
import Documents
import Identity
import PolicyCore
import PolicyLoading

/// `warden check`: validates rule files as `istioctl validate` would, reporting every problem with its place:
/// AuthorizationPolicies and Rego modules, and the PeerAuthentications and RequestAuthentications the proxy reads.
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
        var result = policyOptions.loader.read(paths)
        let authentication = AuthenticationCheck.read(
            paths, rootNamespace: policyOptions.rootNamespace, defaultNamespace: policyOptions.defaultNamespace)
        // Documents of these kinds are validated here, not skipped.
        result.diagnostics = (result.diagnostics.filter { !AuthenticationCheck.isSkipNote($0) } + authentication.diagnostics)
            .sortedByPlace()
        let policyCount = result.policies.count + authentication.count
        let shown = result.diagnostics.filter { verbose || $0.severity != .note }
        let errors = result.diagnostics.filter(\.isError).count
        switch format {
        case .json:
            let report: Value = [
                "valid": .bool(errors == 0),
                "files": .int(result.files.count),
                "policies": .int(policyCount),
                "diagnostics": .array(shown.map(\.json)),
            ]
            writeOutput(JSONWriter.string(report, pretty: true))
        case .text:
            var renderer = DiagnosticRenderer()
            if !shown.isEmpty { writeOutput(renderer.render(shown)) }
            if errors == 0 {
                writeOutput("ok: \(policyCount) \(plural(policyCount, "policy", "policies")) in \(result.files.count) \(plural(result.files.count, "file", "files"))")
            } else {
                writeOutput("\(errors) \(plural(errors, "error", "errors")) in \(result.files.count) \(plural(result.files.count, "file", "files"))")
            }
        }
        if errors > 0 { throw ExitCode(Warden.Status.failed) }
    }
}

func plural(_ n: Int, _ one: String, _ many: String) -> String { n == 1 ? one : many }

/// The PeerAuthentication and RequestAuthentication documents among the files `warden check` reads.
enum AuthenticationCheck {
    static func read(_ paths: [String], rootNamespace: String, defaultNamespace: String) -> (count: Int, diagnostics: [Diagnostic]) {
        var policies = AuthenticationPolicies()
        var parseProblems = false
        for file in DocumentFiles.expand(paths.filter(DocumentFiles.exists), extensions: PolicyLoader.documentExtensions) {
            guard case .success(let text) = DocumentFiles.read(file) else { continue }
            let parsed = YAMLDocuments.parse(text, file: file)
            parseProblems = parseProblems || parsed.diagnostics.hasErrors  // reported by the policy loader already
            policies.append(AuthenticationPolicies.decode(parsed.documents, defaultNamespace: defaultNamespace))
        }
        var diagnostics = policies.diagnostics + policies.duplicateDiagnostics
        if !diagnostics.hasErrors && !parseProblems {
            diagnostics += PeerAuthenticationSet(policies: policies.peer, rootNamespace: rootNamespace).warnings
        }
        return (policies.peer.count + policies.request.count, diagnostics)
    }

    /// The loader's note that it skipped a document of a kind validated here.
    static func isSkipNote(_ diagnostic: Diagnostic) -> Bool {
        diagnostic.code == Diagnostic.Code.skipped
            && (diagnostic.message.contains("`\(PeerAuthentication.kind)`") || diagnostic.message.contains("`\(RequestAuthentication.kind)`"))
    }
}
