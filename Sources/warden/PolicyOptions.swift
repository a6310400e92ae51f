import ArgumentParser
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
