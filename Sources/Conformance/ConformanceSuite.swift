import Documents
import PolicyCore

/// The suite under `conformance/`: behaviour written down as data. Each subdirectory holds one kind of case
/// file and has one runner; `warden conformance` and the test targets run the same cases the same way.
public enum ConformanceSuite {
    /// A kind of case file and how to run one.
    public struct Runner: Sendable {
        /// The subdirectory of the suite this runner owns (`authz`, `rego`, ...).
        public var directory: String
        public var run: @Sendable (_ file: CaseFile) -> [CaseResult]

        public init(directory: String, run: @escaping @Sendable (_ file: CaseFile) -> [CaseResult]) {
            self.directory = directory
            self.run = run
        }
    }

    /// Every runner Warden has, by directory.
    public static let runners: [Runner] = [
        AuthzCaseRunner.runner,
        ExtAuthzCaseRunner.runner,
        RegoCaseRunner.runner,
        JWTCaseRunner.runner,
    ]

    /// Runs every case file under `root` (or just `only`, a subdirectory name) and returns the results in a
    /// stable order: by file path, then by the order of cases in the file.
    public static func run(root: String, only: String? = nil) -> [CaseResult] {
        var results: [CaseResult] = []
        for runner in runners where only == nil || only == runner.directory {
            let directory = root + "/" + runner.directory
            for path in DocumentFiles.files(under: directory, extensions: ["yaml", "yml"]) {
                guard let file = CaseFile.load(path: path) else {
                    results.append(CaseResult(file: path, note: "(file)", failure: "cannot read the file"))
                    continue
                }
                if let error = file.diagnostics.first(where: \.isError) {
                    results.append(CaseResult(file: path, note: "(file)", failure: error.description))
                    continue
                }
                results.append(contentsOf: runner.run(file))
            }
        }
        return results
    }
}

/// One case file: its path, its text and its parsed YAML.
public struct CaseFile: Sendable {
    public var path: String
    public var text: String
    public var documents: [DocumentNode]
    public var diagnostics: [Diagnostic]

    /// Case files are the suite's own data, and some of OPA's expectations nest 600 deep: they are read under a
    /// higher nesting bound than policy files.
    public static let limits = InputLimits(maxNestingDepth: 1_000)

    public static func load(path: String) -> CaseFile? {
        guard case .success(let text) = DocumentFiles.read(path, limits: limits) else { return nil }
        let parsed = YAMLDocuments.parse(text, file: path, limits: limits)
        return CaseFile(path: path, text: text, documents: parsed.documents, diagnostics: parsed.diagnostics)
    }

    /// The `cases:` list of the file's first document.
    public var cases: [DocumentNode] {
        guard let root = documents.first, case .sequence(let items)? = root["cases"]?.content else { return [] }
        return items
    }
}

/// The outcome of one case (or scenario).
public struct CaseResult: Sendable, Hashable {
    public var file: String
    public var note: String
    /// Nil when the case passed; otherwise what differed.
    public var failure: String?
    /// Why the case was not run (a scenario needing a command this build lacks); a skipped case never passes.
    public var skipped: String?
    /// The report profiles the case counts towards; empty: the profile of its area.
    public var profiles: [String] = []
    /// The features it covers; empty: the feature named by its file.
    public var features: [String] = []

    public init(file: String, note: String, failure: String? = nil) {
        self.file = file
        self.note = note
        self.failure = failure
    }

    public var passed: Bool { failure == nil && skipped == nil }
    public var failed: Bool { failure != nil }
}
