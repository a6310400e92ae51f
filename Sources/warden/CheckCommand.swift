import ArgumentParser
import AuthzPolicy
import DecisionPoint
import Documents
import Foundation
import Identity
import PolicyCore
import PolicyLoading

/// `warden check`: validates rule files as `istioctl validate` would, reporting every problem with its place:
/// AuthorizationPolicies and Rego modules, and the PeerAuthentications and RequestAuthentications the proxy reads.
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

    @Flag(name: .shortAndLong, help: "Also show every other note (documents of other kinds that were skipped are always shown).")
    var verbose = false

    @Option(name: .customLong("bundle-key"), help: "A PEM public key a bundle (.tar.gz) argument must be signed with.")
    var bundleKey: String?

    func run() throws {
        if let bundle = paths.first, paths.count == 1, bundle.hasSuffix(".tar.gz") || bundle.hasSuffix(".tgz") {
            return try checkBundle(bundle)
        }
        var result = policyOptions.loader.read(paths)
        let authentication = AuthenticationCheck.read(
            paths, rootNamespace: policyOptions.rootNamespace, defaultNamespace: policyOptions.defaultNamespace)
        // Documents of these kinds are validated here, not skipped.
        result.diagnostics = (result.diagnostics.filter { !AuthenticationCheck.isSkipNote($0) } + authentication.diagnostics)
            .sortedByPlace()
        let policyCount = result.policies.count + authentication.count
        // Documents of other kinds are always named: a file that holds no policy should not look like one.
        let shown = result.diagnostics.filter { verbose || $0.severity != .note || $0.code == Diagnostic.Code.skipped }
        let errors = result.diagnostics.filter(\.isError).count
        let warnings = result.diagnostics.filter { $0.severity == .warning }.count
        switch format {
        case .json:
            let report: Value = [
                "valid": .bool(errors == 0),
                "files": .int(result.files.count),
                "policies": .int(policyCount),
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
            let policies = "\(policyCount) \(plural(policyCount, "policy", "policies"))"
            if errors == 0 {
                writeOutput("ok: \(policies) in \(files)\(warned)")
            } else {
                writeOutput("\(errors) \(plural(errors, "error", "errors")) in \(files)\(warned)")
            }
        }
        if errors > 0 { throw ExitCode(Warden.Status.failed) }
    }
}

extension CheckCommand {
    /// A bundle: read within its limits, its signature verified (required with --bundle-key, refused without it),
    /// and its contents validated as `warden serve --bundle` would load them.
    func checkBundle(_ file: String) throws {
        var renderer = DiagnosticRenderer()
        guard let data = FileManager.default.contents(atPath: file) else { throw usage(DocumentFiles.unreadable(file).message) }
        let bundle: OPABundle
        do {
            let verification = try bundleKey.map { key throws(Diagnostic) in
                guard let pem = try? String(contentsOfFile: key, encoding: .utf8) else {
                    throw DocumentFiles.unreadable(key)
                }
                return try BundleVerification.single(pem: pem)
            }
            bundle = try OPABundle.read(Array(data))
            try bundle.verify(verification)
        } catch {
            writeOutput(renderer.render([error]))
            throw ExitCode(Warden.Status.failed)
        }
        let (snapshot, result) = policyOptions.loader.load(bundle: bundle)
        let shown = result.diagnostics.filter { verbose || $0.severity != .note }
        if !shown.isEmpty { writeOutput(renderer.render(shown)) }
        guard let snapshot else { throw ExitCode(Warden.Status.failed) }
        let policies = snapshot.authorization.policies.count
        writeOutput(
            "ok: bundle revision `\(bundle.manifest.revision)`: \(policies) \(plural(policies, "policy", "policies")), \(snapshot.moduleCount) Rego \(plural(snapshot.moduleCount, "module", "modules")), \(bundle.files.count) \(plural(bundle.files.count, "file", "files"))\(bundle.signatures == nil ? "" : ", signature verified")")
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
