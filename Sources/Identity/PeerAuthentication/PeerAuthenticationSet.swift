import PolicyCore

/// Every PeerAuthentication of a mesh, answering which mutual TLS mode a workload enforces on each of its ports, as
/// Istio composes them (`ComposePeerAuthentication`):
///
/// - the narrowest scope that sets a mode decides: workload > namespace > mesh; UNSET inherits from the scope above,
///   and with no mode anywhere the workload is PERMISSIVE;
/// - of several mesh-wide (or several namespace-wide) policies only the oldest counts, the newer ones are ignored;
///   of several workload policies selecting the workload the oldest wins (by `creationTimestamp`, then name, then
///   namespace);
/// - a workload policy's `portLevelMtls` applies to the workload's declared ports only (UNSET there inherits the
///   workload's mode); entries for other ports are ignored with a warning;
/// - a policy with a selector in the root namespace is ignored, as Istio ignores it.
public struct PeerAuthenticationSet: Sendable {
    public let policies: [PeerAuthentication]
    public let rootNamespace: String

    public init(policies: [PeerAuthentication], rootNamespace: String = "istio-system") {
        self.policies = policies.sorted(by: PeerAuthentication.precedes)
        self.rootNamespace = rootNamespace
    }

    /// How a workload's mode came about.
    public struct Resolution: Sendable, Hashable {
        /// The workload's mode on any port without a port-level mode.
        public var mode: MutualTLSMode
        /// Port-level modes, for declared ports only, UNSET already resolved.
        public var portModes: [Int: MutualTLSMode]
        /// The policies that were considered, per scope (nil when there was none).
        public var mesh: PeerAuthentication.ID?
        public var namespace: PeerAuthentication.ID?
        public var workload: PeerAuthentication.ID?
        /// What was ignored and why: conflicting policies, port-level modes on undeclared ports.
        public var warnings: [Diagnostic]

        /// The mode on `port`.
        public func mode(forPort port: Int) -> MutualTLSMode { portModes[port] ?? mode }

        /// The policy whose mode decides on `port` (nil when none does and the default PERMISSIVE applies).
        public var deciding: PeerAuthentication.ID? { workload ?? namespace ?? mesh }
    }

    /// Code of the warnings resolution gives.
    public static let ignoredCode = "peer_authentication_ignored"

    /// The mode of a workload of `namespace` with `labels` whose declared ports are `declaredPorts`.
    public func resolve(namespace: String, labels: [String: String], declaredPorts: Set<Int>) -> Resolution {
        var mesh: PeerAuthentication?, namespaceWide: PeerAuthentication?, workload: PeerAuthentication?
        var warnings: [Diagnostic] = []
        func ignore(_ policy: PeerAuthentication, because reason: String) {
            warnings.append(Diagnostic(
                code: Self.ignoredCode, message: "PeerAuthentication `\(policy.id)` is ignored: \(reason)", span: policy.span,
                severity: .warning))
        }
        // `policies` is in precedence order, so the first of each scope is the one that counts.
        for policy in policies {
            let inRoot = policy.id.namespace == rootNamespace
            guard inRoot || policy.id.namespace == namespace else { continue }
            if !policy.hasWorkloadSelector {
                if inRoot {
                    if let chosen = mesh {
                        ignore(policy, because: "`\(chosen.id)` is an older mesh-wide policy")
                    } else {
                        mesh = policy
                    }
                } else if let chosen = namespaceWide {
                    ignore(policy, because: "`\(chosen.id)` is an older namespace-wide policy of `\(namespace)`")
                } else {
                    namespaceWide = policy
                }
            } else if inRoot {
                continue  // Istio ignores workload policies in the root namespace; `warnings(declaredPorts:)` says so.
            } else if policy.selects(labels: labels) {
                if let chosen = workload {
                    ignore(policy, because: "`\(chosen.id)` is an older policy selecting the same workload")
                } else {
                    workload = policy
                }
            }
        }

        var mode = MutualTLSMode.permissive
        if let mesh { mode = mesh.mode.resolved(inheriting: mode) }
        if let namespaceWide { mode = namespaceWide.mode.resolved(inheriting: mode) }
        if let workload { mode = workload.mode.resolved(inheriting: mode) }
        var portModes: [Int: MutualTLSMode] = [:]
        if let workload {
            for (port, portMode) in workload.portLevelModes.sorted(by: { $0.key < $1.key }) {
                if declaredPorts.contains(port) {
                    portModes[port] = portMode.resolved(inheriting: mode)
                } else {
                    warnings.append(Diagnostic(
                        code: Self.ignoredCode,
                        message: "portLevelMtls of PeerAuthentication `\(workload.id)` for port \(port) is ignored: the workload declares "
                            + (declaredPorts.isEmpty ? "no ports" : "ports \(declaredPorts.sorted().map(String.init).joined(separator: ", "))"),
                        span: workload.span, path: FieldPath.root / "spec" / "portLevelMtls" / String(port), severity: .warning))
                }
            }
        }
        return Resolution(
            mode: mode, portModes: portModes, mesh: mesh?.id, namespace: namespaceWide?.id, workload: workload?.id,
            warnings: warnings)
    }

    /// Warnings about the set as a whole, whatever the workload: policies Istio ignores (several mesh-wide or
    /// namespace-wide policies of one scope, workload selectors in the root namespace).
    public var warnings: [Diagnostic] {
        var out: [Diagnostic] = []
        var firstOfScope: [String: PeerAuthentication] = [:]
        for policy in policies {
            let inRoot = policy.id.namespace == rootNamespace
            if policy.hasWorkloadSelector {
                if inRoot {
                    out.append(Diagnostic(
                        code: Self.ignoredCode,
                        message: "PeerAuthentication `\(policy.id)` is ignored: a policy with a selector in the root namespace `\(rootNamespace)` applies to no workload",
                        span: policy.span, path: FieldPath.root / "spec" / "selector", severity: .warning))
                }
                continue
            }
            if let chosen = firstOfScope[policy.id.namespace] {
                let scope = inRoot ? "mesh-wide" : "namespace-wide"
                out.append(Diagnostic(
                    code: Self.ignoredCode,
                    message: "PeerAuthentication `\(policy.id)` is ignored: `\(chosen.id)` is an older \(scope) policy",
                    span: policy.span, severity: .warning))
            } else {
                firstOfScope[policy.id.namespace] = policy
            }
        }
        return out
    }
}
