import AuthzPolicy
import Foundation
import DecisionPoint
import Documents
import PolicyCore
import Rego

/// Reads rule files into a `PolicySnapshot`, or reports every problem in them.
///
/// A set loads only when every file in it is valid: dropping one broken file could silently remove a DENY
/// policy and open access, so a set with errors is refused as a whole and the caller keeps its last good one.
public struct PolicyLoader: Sendable {
    public struct Options: Sendable {
        /// Policies in this namespace apply to workloads in every namespace.
        public var rootNamespace: String
        /// Stands in for a missing `metadata.namespace`, and for a request that names no namespace.
        public var defaultNamespace: String

        /// CUSTOM providers: name → the Rego rule they evaluate (`envoy/authz/allow`). A provider a CUSTOM policy
        /// names without configuration evaluates `RegoProvider.defaultPath`, as OPA-Envoy does.
        public var providers: [String: String]
        /// Bounds on every file read: its size, how deeply it nests, its YAML aliases.
        public var limits: InputLimits

        public init(
            rootNamespace: String = "istio-system", defaultNamespace: String = "default", providers: [String: String] = [:],
            limits: InputLimits = .default
        ) {
            self.rootNamespace = rootNamespace
            self.defaultNamespace = defaultNamespace
            self.providers = providers
            self.limits = limits
        }
    }

    /// What loading found: the policies (when there were no errors) and every diagnostic, sorted by place.
    public struct Result: Sendable {
        public var policies: [AuthorizationPolicy]
        public var files: [String]
        public var diagnostics: [Diagnostic]
        /// The `.rego` files, compiled (nil when there are none, or when any file had errors).
        public var rego: RegoPolicySet?
        public var moduleCount = 0
        /// Every file read from disk with the text that was compiled (rule files and data files), in reading order.
        public var contents: [(file: String, text: String)] = []

        public var hasErrors: Bool { diagnostics.hasErrors }
    }

    public static let documentExtensions: Set<String> = ["yaml", "yml", "json"]
    public static let regoExtension = "rego"
    /// Every kind of rule file a policies directory holds.
    public static let ruleExtensions: Set<String> = documentExtensions.union([regoExtension])

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Reads and validates every rule file under `paths` (files, or directories searched recursively).
    ///
    /// `overlay` replaces files' text (or, with nil, removes them) without touching the disk, so a change can be
    /// validated together with the rest of the set before it is written.
    public func read(_ paths: [String], overlay: [String: String?] = [:]) -> Result {
        var diagnostics: [Diagnostic] = []
        var files: [String] = []
        for path in paths where !DocumentFiles.exists(path) {
            diagnostics.append(DocumentFiles.unreadable(path))
        }
        files = DocumentFiles.expand(paths.filter(DocumentFiles.exists), extensions: Self.ruleExtensions)
        for (file, text) in overlay {
            if text == nil {
                files.removeAll { $0 == file }
            } else if !files.contains(file), Self.ruleExtensions.contains((file as NSString).pathExtension) {
                files.append(file)
            }
        }
        files.sort()
        var sources: [(file: String, text: String)] = []
        var data: Value = .object([Value: Value]())
        var texts: [(file: String, text: String)] = []
        for file in files {
            let contents: Swift.Result<String, Diagnostic>
            if let replaced = overlay[file], let text = replaced {
                contents = DocumentFiles.checkSize(text.utf8.count, file: file, limits: options.limits).map { .failure($0) }
                    ?? .success(text)
            } else {
                contents = DocumentFiles.read(file, limits: options.limits)
            }
            switch contents {
            case .failure(let error):
                diagnostics.append(error)
            case .success(let text):
                texts.append((file, text))
                if let at = Self.dataPath(of: file, under: paths) {
                    do {
                        data = try BundleData.merge(data, try BundleData.value(Array(text.utf8), path: file), at: at[...], file: file)
                    } catch {
                        diagnostics.append(error)
                    }
                } else {
                    sources.append((file, text))
                }
            }
        }
        var result = read(sources: sources, data: data)
        result.files = files
        result.contents = texts
        result.diagnostics = (diagnostics + result.diagnostics).sortedByPlace()
        if result.hasErrors {
            result.policies = []
            result.rego = nil
        }
        return result
    }

    /// Where a data file (`data.json`, `data.yaml`, `data.yml`) found under one of `paths` goes below `data`: its
    /// directory relative to that path, as OPA places bundle data; nil for any other file.
    static func dataPath(of file: String, under paths: [String]) -> [String]? {
        guard BundleData.names.contains((file as NSString).lastPathComponent) else { return nil }
        for path in paths where DocumentFiles.isDirectory(path) {
            let root = path.hasSuffix("/") ? path : path + "/"
            if file.hasPrefix(root) { return BundleData.dataPath(String(file.dropFirst(root.count))) }
        }
        return []
    }

    /// Reads and validates rule files given as text: AuthorizationPolicy documents (`.yaml`, `.yml`, `.json`) and
    /// Rego modules (`.rego`), compiled with `data` as the base document.
    public func read(sources: [(file: String, text: String)], data: Value = .object([Value: Value]())) -> Result {
        var diagnostics: [Diagnostic] = []
        var policies: [AuthorizationPolicy] = []
        var modules: [RegoModuleSource] = []
        for (file, text) in sources {
            if (file as NSString).pathExtension == Self.regoExtension {
                modules.append(RegoModuleSource(path: file, text: text))
            } else {
                let (found, problems) = readDocuments(text, file: file)
                policies += found
                diagnostics += problems
            }
        }
        diagnostics += duplicates(policies)
        var rego: RegoPolicySet?
        if !modules.isEmpty {
            do {
                rego = try RegoPolicySet.compile(modules: modules, data: data, limits: options.limits)
            } catch {
                diagnostics += error.diagnostics
            }
        }
        diagnostics += providerWarnings(policies, hasRego: rego != nil || !modules.isEmpty)
        let failed = diagnostics.hasErrors
        return Result(
            policies: failed ? [] : policies, files: sources.map(\.file), diagnostics: diagnostics.sortedByPlace(),
            rego: failed ? nil : rego, moduleCount: modules.count)
    }

    /// Reads the policies in one file's text (multi-document YAML, or JSON, or a `kind: List`).
    public func readDocuments(_ text: String, file: String) -> (policies: [AuthorizationPolicy], diagnostics: [Diagnostic]) {
        let parsed = YAMLDocuments.parse(text, file: file, limits: options.limits)
        let (policies, diagnostics) = policies(in: parsed.documents)
        return (policies, parsed.diagnostics + diagnostics)
    }

    /// Decodes the AuthorizationPolicies among parsed documents; other kinds are skipped with a note.
    public func policies(in documents: [DocumentNode]) -> (policies: [AuthorizationPolicy], diagnostics: [Diagnostic]) {
        let decoder = DocumentDecoder()
        var policies: [AuthorizationPolicy] = []
        var diagnostics: [Diagnostic] = []
        func visit(_ node: DocumentNode) {
            guard case .mapping = node.content else {
                diagnostics.append(Diagnostic(
                    code: Diagnostic.Code.typeMismatch, message: "expected a Kubernetes object, found \(node.kindDescription)",
                    span: node.span))
                return
            }
            let kind = node["kind"]?.value.stringValue
            switch kind {
            case AuthorizationPolicy.kind:
                if let policy = AuthorizationPolicy.decode(node, decoder: decoder, defaultNamespace: options.defaultNamespace) {
                    policies.append(policy)
                }
            case "List":
                if case .sequence(let items)? = node["items"]?.content { items.forEach(visit) }
            case nil:
                diagnostics.append(Diagnostic(code: Diagnostic.Code.missingField, message: "missing `kind`", span: node.span))
            case let other?:
                diagnostics.append(Diagnostic(
                    code: Diagnostic.Code.skipped, message: "skipped a `\(other)`: not an AuthorizationPolicy", span: node.span,
                    severity: .note))
            }
        }
        documents.forEach(visit)
        return (policies, diagnostics + decoder.diagnostics)
    }

    /// Loads `paths` into a snapshot ready to install, or returns the diagnostics that prevent it.
    public func load(_ paths: [String], overlay: [String: String?] = [:]) -> (snapshot: PolicySnapshot?, result: Result) {
        let result = read(paths, overlay: overlay)
        return (snapshot(result), result)
    }

    /// Loads a bundle (already verified) into a snapshot: its Rego modules, data and AuthorizationPolicy documents,
    /// validated as a directory is, and within the manifest's roots as OPA requires.
    public func load(bundle: OPABundle) -> (snapshot: PolicySnapshot?, result: Result) {
        let contents: BundleContents
        do throws(Diagnostic) {
            if bundle.manifest.regoVersion == 0 {
                throw OPABundle.error("bundle declares `rego_version` 0; Warden reads Rego v1 only", file: "/" + OPABundle.manifestFile)
            }
            contents = try bundle.contents()
        } catch {
            return (nil, Result(policies: [], files: [], diagnostics: [error]))
        }
        var result = read(sources: contents.sources, data: contents.data)
        result.files = (contents.dataFiles + contents.sources.map(\.file)).sorted()
        let roots = bundle.manifest.effectiveRoots
        var outside: [Diagnostic] = []
        for package in result.rego?.packages ?? [] where !BundleRoots.permit(roots, package.joined(separator: "/")) {
            outside.append(OPABundle.error(
                OPABundle.Code.roots, "manifest roots \(roots) do not permit package `\(package.joined(separator: "."))`"))
        }
        if let path = BundleRoots.dataOutside(roots, contents.data) {
            outside.append(OPABundle.error(OPABundle.Code.roots, "manifest roots \(roots) do not permit data at path `\(path)`"))
        }
        if !outside.isEmpty {
            result.diagnostics += outside
            result.policies = []
            result.rego = nil
            return (nil, result)
        }
        return (snapshot(result, bundleRevision: bundle.manifest.revision), result)
    }

    /// The snapshot a clean result compiles to; nil when it has errors.
    func snapshot(_ result: Result, bundleRevision: String? = nil) -> PolicySnapshot? {
        guard !result.hasErrors else { return nil }
        let compiled = CompiledPolicySet(
            policies: result.policies, rootNamespace: options.rootNamespace, defaultNamespace: options.defaultNamespace)
        var providers: [String: any CustomProvider] = [:]
        if let rego = result.rego {
            var names = Set(options.providers.keys)
            for policy in result.policies { if let name = policy.provider { names.insert(name) } }
            for name in names {
                providers[name] = RegoProvider(name: name, path: options.providers[name] ?? RegoProvider.defaultPath, policies: rego)
            }
        }
        return PolicySnapshot(
            authorization: compiled, providers: providers, sources: result.files, rego: result.rego,
            moduleCount: result.moduleCount, bundleRevision: bundleRevision)
    }

    /// A CUSTOM policy whose provider cannot answer denies what it matches; say so when loading.
    private func providerWarnings(_ policies: [AuthorizationPolicy], hasRego: Bool) -> [Diagnostic] {
        guard !hasRego else { return [] }
        return policies.filter { $0.action == .custom }.map { policy in
            Diagnostic(
                code: "custom_provider_missing",
                message: "CUSTOM policy `\(policy.id)` names provider `\(policy.provider ?? "")`, but no Rego modules are loaded; the requests it matches are denied",
                span: policy.span, path: FieldPath.root / "spec" / "provider", severity: .warning)
        }
    }

    private func duplicates(_ policies: [AuthorizationPolicy]) -> [Diagnostic] {
        var first: [PolicyID: AuthorizationPolicy] = [:]
        var out: [Diagnostic] = []
        for policy in policies {
            if let earlier = first[policy.id] {
                let place = earlier.span.map { " (first defined at \($0))" } ?? ""
                out.append(Diagnostic(
                    code: Diagnostic.Code.invalidValue, message: "duplicate policy `\(policy.id)`\(place)",
                    span: policy.span, path: FieldPath.root / "metadata" / "name"))
            } else {
                first[policy.id] = policy
            }
        }
        return out
    }
}
