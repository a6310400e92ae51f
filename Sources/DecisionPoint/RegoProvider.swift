import PolicyCore
import Rego

/// A CUSTOM provider that evaluates a Rego rule, as OPA-Envoy does: the rule at `path` (default
/// `envoy/authz/allow`, that is `data.envoy.authz.allow`) receives OPA-Envoy's input document and returns
/// `true`/`false` or a decision object (see `OPAEnvoyDecision`). An undefined rule, an evaluation error or a
/// malformed decision fails closed.
public struct RegoProvider: CustomProvider {
    public static let defaultPath = "envoy/authz/allow"

    public let name: String
    /// The rule's path below `data`, slash-separated.
    public let path: String
    private let query: Result<RegoQuery, Diagnostic>

    public init(name: String, path: String = Self.defaultPath, policies: RegoPolicySet) {
        self.name = name
        self.path = path
        let parts = Self.pathParts(path)
        do {
            query = .success(try policies.prepare(path: parts))
        } catch {
            query = .failure(error.diagnostics.first ?? Diagnostic(
                code: "rego_compile_error", message: "cannot query `\(path)` for provider `\(name)`"))
        }
    }

    public func check(_ request: AuthzRequest, input: () -> Value) -> CustomOutcome {
        let prepared: RegoQuery
        switch query {
        case .failure(let problem): return .failed(problem)
        case .success(let q): prepared = q
        }
        switch prepared.evaluateValue(input: input()) {
        case .value(let decision):
            return OPAEnvoyDecision.decode(decision)
        case .undefined:
            return .failed(Diagnostic(
                code: "undefined_decision",
                message: "provider `\(name)`: the rule `data.\(Self.dotted(path))` is undefined for this request"))
        case .error(let problem):
            return .failed(problem)
        }
    }

    /// `envoy/authz/allow`, `envoy.authz.allow` and `data.envoy.authz.allow` all name the same rule.
    public static func pathParts(_ path: String) -> [String] {
        var parts = path.split(whereSeparator: { $0 == "/" || $0 == "." }).map(String.init)
        if parts.first == "data" { parts.removeFirst() }
        return parts
    }

    static func dotted(_ path: String) -> String { pathParts(path).joined(separator: ".") }
}
