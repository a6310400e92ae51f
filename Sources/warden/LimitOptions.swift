import ArgumentParser
import PolicyCore

/// The input bounds (`InputLimits`) every command that reads policy, data or configuration files takes.
struct LimitOptions: ParsableArguments {
    @Option(name: .customLong("max-file-bytes"), help: "The largest policy or data file read (default 8 MiB).")
    var maxFileBytes: Int?

    @Option(
        name: .customLong("max-nesting-depth"),
        help: "The deepest nesting of YAML/JSON collections and of Rego terms, bodies and operator chains (default 128).")
    var maxNestingDepth: Int?

    @Option(name: .customLong("max-yaml-aliases"), help: "The most YAML aliases one file may use (default 1000).")
    var maxYAMLAliases: Int?

    @Option(
        name: .customLong("max-yaml-alias-nodes"),
        help: "The most nodes a file's YAML aliases may add when expanded (default 100000).")
    var maxYAMLAliasNodes: Int?

    func validate() throws {
        for (name, value, least) in [
            ("--max-file-bytes", maxFileBytes, 1), ("--max-nesting-depth", maxNestingDepth, 1),
            ("--max-yaml-aliases", maxYAMLAliases, 0), ("--max-yaml-alias-nodes", maxYAMLAliasNodes, 0),
        ] {
            if let value, value < least { throw ValidationError("\(name) must be at least \(least)") }
        }
        if let maxNestingDepth, maxNestingDepth > InputLimits.maximumNestingDepth {
            throw ValidationError("--max-nesting-depth must be at most \(InputLimits.maximumNestingDepth)")
        }
    }

    /// `base` with the limits given on the command line.
    func applied(to base: InputLimits = .default) -> InputLimits {
        var limits = base
        if let maxFileBytes { limits.maxFileBytes = maxFileBytes }
        if let maxNestingDepth { limits.maxNestingDepth = maxNestingDepth }
        if let maxYAMLAliases { limits.maxYAMLAliases = maxYAMLAliases }
        if let maxYAMLAliasNodes { limits.maxYAMLAliasNodes = maxYAMLAliasNodes }
        return limits
    }
}
