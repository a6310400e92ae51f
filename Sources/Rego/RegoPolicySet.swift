import PolicyCore

/// A Rego module to compile: where it came from (used in error locations) and its text.
public struct RegoModuleSource: Sendable, Hashable {
    public var path: String
    public var text: String

    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }
}

/// Rego modules and base data compiled once into an immutable form: shared by any number of concurrent
/// evaluations, which never change it.
public final class RegoPolicySet: Sendable {
    let nodes: [RuleNode]
    let tree: TreeIndex
    /// The base data document.
    public let data: Value
    /// The packages the modules declare, as paths below `data`, sorted.
    public let packages: [[String]]
    /// The bounds the modules were read under; queries prepared on the set are read under them too.
    public let limits: InputLimits

    init(nodes: [RuleNode], tree: TreeIndex, data: Value, packages: [[String]], limits: InputLimits = .default) {
        self.nodes = nodes
        self.tree = tree
        self.data = data
        self.packages = packages
        self.limits = limits
    }

    /// Compiles modules with base data. Errors are OPA's (`rego_parse_error`, `rego_compile_error`,
    /// `rego_unsafe_var_error`, `rego_type_error`, `rego_recursion_error`), every one found, in source order.
    /// Text nested deeper than `limits.maxNestingDepth` is a `rego_parse_error` at the place it goes over.
    public static func compile(
        modules: [RegoModuleSource], data: Value = .object([Value: Value]()), limits: InputLimits = .default
    ) throws(RegoCompileError) -> RegoPolicySet {
        switch PolicyCompiler.compile(modules: modules, data: data, limits: limits) {
        case .success(let policy): return policy
        case .failure(let error): throw error
        }
    }

    /// Prepares a query (`data.envoy.authz.allow`, or any Rego query such as `x := data.a.b[k]; k != "z"`)
    /// for repeated evaluation.
    public func prepare(query: String) throws(RegoCompileError) -> RegoQuery {
        // Any query text may nest up to the limit: parsed and compiled on a stack of its own, as modules are.
        let prepared = DeepStack.run(stackBytes: DeepStack.bytes(forDepth: limits.maxNestingDepth)) {
            Result { () throws(RegoCompileError) in try RegoQuery(policy: self, text: query) }
        }
        return try prepared.get()
    }

    /// Prepares the query for the document at a path below `data` (`["envoy", "authz", "allow"]`).
    public func prepare(path: [String]) throws(RegoCompileError) -> RegoQuery {
        var text = "data"
        for part in path {
            if part.isRegoIdentifier {
                text += "." + part
            } else {
                var quoted = ""
                JSONWriter.writeString(part, to: &quoted)
                text += "[" + quoted + "]"
            }
        }
        // A reference nests one level, so it is prepared on the caller's stack.
        return try RegoQuery(policy: self, text: text)
    }

    /// The test rules `warden test` runs: complete rules named `test_*` (and `todo_test_*`, which are skipped),
    /// by path below `data`, in source order.
    public var testRules: [RegoTestRule] {
        var out: [RegoTestRule] = []
        for node in nodes {
            guard let group = node.group, case .complete = group.kind, case .string(let name)? = node.path.last,
                name.hasPrefix("test_") || name.hasPrefix("todo_test_"),
                let first = group.rules.first ?? group.defaultRule
            else { continue }
            let path = node.path.compactMap(\.stringValue)
            guard path.count == node.path.count else { continue }
            out.append(RegoTestRule(path: path, location: first.location, isSkipped: name.hasPrefix("todo_")))
        }
        return out.sorted { a, b in
            (a.location.file, a.location.line, a.location.column) < (b.location.file, b.location.line, b.location.column)
        }
    }
}

/// A test rule found in a policy set.
public struct RegoTestRule: Sendable {
    /// The path below `data`: package and rule name.
    public var path: [String]
    public var location: Location
    /// `todo_test_*` rules are reported, not run.
    public var isSkipped: Bool

    /// `data.pkg.test_name`.
    public var name: String { "data." + path.joined(separator: ".") }
}

/// What evaluation may use and report besides `input`.
public struct RegoEvaluationOptions: Sendable {
    /// OPA's `--strict-builtin-errors`: a builtin error ends the query with that error (by default the call is
    /// undefined and evaluation goes on).
    public var strictBuiltinErrors: Bool
    /// Receives `print` output; without one, `print` does nothing.
    public var printHandler: (@Sendable (RegoPrint) -> Void)?
    /// The time `time.now_ns` reports, in nanoseconds since the Unix epoch; the current time when nil.
    public var now: Int64?

    public init(strictBuiltinErrors: Bool = false, printHandler: (@Sendable (RegoPrint) -> Void)? = nil, now: Int64? = nil) {
        self.strictBuiltinErrors = strictBuiltinErrors
        self.printHandler = printHandler
        self.now = now
    }
}

/// One line of `print` output and the call that printed it.
public struct RegoPrint: Sendable {
    public var message: String
    public var location: Location
}
