import ArgumentParser
import Foundation
import PolicyLoading

/// Options shared by the commands that load AuthorizationPolicy files.
struct PolicyOptions: ParsableArguments {
    @Option(name: .customLong("root-namespace"), help: "The mesh root namespace: its policies apply to every namespace.")
    var rootNamespace = "istio-system"

    @Option(
        name: .customLong("default-namespace"),
        help: "The namespace of policies without metadata.namespace, and of requests without destination.namespace.")
    var defaultNamespace = "default"

    @OptionGroup var limits: LimitOptions

    var loader: PolicyLoader {
        PolicyLoader(
            options: .init(rootNamespace: rootNamespace, defaultNamespace: defaultNamespace, limits: limits.applied()))
    }
}

/// Workload labels given as `app=details,version=v1`.
func parseLabels(_ text: String, flag: String) throws -> [String: String] {
    var out: [String: String] = [:]
    for pair in text.split(separator: ",") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else {
            throw ValidationError("\(flag) must be key=value pairs joined by commas, found `\(pair)`")
        }
        out[String(parts[0]).trimmingCharacters(in: .whitespaces)] = String(parts[1]).trimmingCharacters(in: .whitespaces)
    }
    return out
}
