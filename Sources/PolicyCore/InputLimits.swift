/// Bounds on the work one input may cause, checked before that work is done: a policy, data or configuration
/// file (its size), YAML, JSON and Rego text (how deeply it nests), and YAML aliases (how many, and how much
/// they would add once expanded). An input over a bound is refused with a diagnostic that names the bound and
/// where it was crossed; the reader never runs out of stack or memory on it.
///
/// The defaults are far above what real policies use (Istio resources nest about ten levels deep and use no
/// aliases; OPA-Envoy policies nest a few levels) and far below what would hurt the process.
public struct InputLimits: Sendable, Hashable {
    /// The largest file read as a policy, data or configuration file, in bytes (`limits.max_file_bytes`).
    public var maxFileBytes: Int
    /// The deepest nesting of YAML and JSON collections, and of Rego terms, bodies and operator chains
    /// (`limits.max_nesting_depth`).
    public var maxNestingDepth: Int
    /// The most YAML aliases (`*name`) one file may use (`limits.max_yaml_aliases`).
    public var maxYAMLAliases: Int
    /// The most nodes a file's YAML aliases may add when expanded (`limits.max_yaml_alias_nodes`); a file that
    /// would grow past it (a "billion laughs") is refused before anything is expanded.
    public var maxYAMLAliasNodes: Int

    public init(
        maxFileBytes: Int = 8 << 20,
        maxNestingDepth: Int = 128,
        maxYAMLAliases: Int = 1_000,
        maxYAMLAliasNodes: Int = 100_000
    ) {
        self.maxFileBytes = maxFileBytes
        self.maxNestingDepth = maxNestingDepth
        self.maxYAMLAliases = maxYAMLAliases
        self.maxYAMLAliasNodes = maxYAMLAliasNodes
    }

    public static let `default` = InputLimits()

    /// The largest nesting bound that may be configured. Parsing and compiling run on a stack sized for the bound
    /// (`DeepStack`), but Rego's evaluator recurses once per nested term it runs on the caller's thread: a term
    /// 512 deep is what it evaluates within its stack budget (5 MiB of the 8 MiB threads get by default) in a debug
    /// build; nested deeper, through rules that refer to one another, evaluation stops with `eval_cancel_error`.
    public static let maximumNestingDepth = 512
}

extension Diagnostic.Code {
    /// An input went over one of `InputLimits`.
    public static let limitExceeded = "limit_exceeded"
}
