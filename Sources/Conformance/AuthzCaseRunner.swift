import AuthzPolicy
import DecisionPoint
import ExtAuthz
import PolicyCore
import PolicyLoading

/// Runs `conformance/authz/*.yaml`: AuthorizationPolicies, a request in the flat attribute form, and the
/// expected decision — or the expected validation errors.
///
/// ```yaml
/// cases:
/// - note: a unique name
///   root_namespace: istio-system      # optional
///   policies: [ {apiVersion: ..., kind: AuthorizationPolicy, ...} ]
///   request: {source.principal: ..., request.path: ...}
///   want: {decision: allow, reason: allow_matched, policy: ns/name, rule: 0, audit: false,
///          audits: [ns/name], dry_run: [{action: DENY, decision: deny, policy: ns/name}]}
///   want_warnings: [{path: spec.rules[0], message: substring, code: http_only_deny_rule}]  # every warning
///   want_errors: [{path: spec.rules[0]..., message: substring, line: 12}]   # instead of request/want
/// ```
///
/// `want_errors` and `want_warnings` are read by `DiagnosticExpectations`.
public enum AuthzCaseRunner {
    public static let runner = ConformanceSuite.Runner(directory: "authz") { file in run(file) }

    static let caseFields = [
        "note", "root_namespace", "default_namespace", "policies", "request", "want", "want_errors", "want_warnings",
    ]
    static let wantFields = ["decision", "reason", "policy", "rule", "action", "audit", "audits", "dry_run"]

    public static func run(_ file: CaseFile) -> [CaseResult] {
        var notes: Set<String> = []
        return file.cases.enumerated().map { index, node in
            let note = node["note"]?.value.stringValue ?? "case \(index)"
            var result = runCase(node, file: file.path, note: note)
            if !notes.insert(note).inserted { result.failure = "duplicate note" }
            return result
        }
    }

    static func runCase(_ node: DocumentNode, file: String, note: String) -> CaseResult {
        func fail(_ message: String) -> CaseResult { CaseResult(file: file, note: note, failure: message) }
        let decoder = DocumentDecoder()
        guard let fields = decoder.fields(node, at: .root, known: caseFields) else { return fail("a case must be an object") }
        if let problem = decoder.diagnostics.first { return fail(problem.description) }

        let options = PolicyLoader.Options(
            rootNamespace: fields["root_namespace"]?.value.stringValue ?? "istio-system",
            defaultNamespace: fields["default_namespace"]?.value.stringValue ?? "default")
        let loader = PolicyLoader(options: options)
        guard case .sequence(let documents)? = fields["policies"]?.content else { return fail("`policies` must be a list") }
        let (policies, diagnostics) = loader.policies(in: documents)
        switch DiagnosticExpectations.check(fields, diagnostics) {
        case .failed(let message): return fail(message)
        case .refusedAsExpected: return CaseResult(file: file, note: note)
        case .loaded: break
        }
        guard let requestNode = fields["request"], let want = fields["want"] else { return fail("a case needs `request` and `want` (or `want_errors`)") }
        let request: AuthzRequest
        do {
            request = try AuthzRequest(attributes: requestNode.value)
        } catch {
            return fail("bad request: \(error)")
        }
        let set = CompiledPolicySet(policies: policies, rootNamespace: options.rootNamespace, defaultNamespace: options.defaultNamespace)
        let response = PolicySnapshot(authorization: set).decide(request) { OPAEnvoyInput.document(forAttributesOf: request) }
        return compareDecision(want, response, file: file, note: note)
    }

    static func compareDecision(_ want: DocumentNode, _ response: DecisionResponse, file: String, note: String) -> CaseResult {
        let got = response.json
        var mismatches: [String] = []
        guard case .mapping(let entries) = want.content else { return CaseResult(file: file, note: note, failure: "`want` must be an object") }
        for entry in entries {
            guard wantFields.contains(entry.key) else {
                mismatches.append("unknown `want` field `\(entry.key)`")
                continue
            }
            let expected = entry.value.value
            let actual: Value
            switch entry.key {
            case "audits":
                actual = .array(response.audits.map { .string($0.policy.description) })
            case "dry_run":
                actual = .array(response.dryRun.map { d in
                    var o: [String: Value] = ["action": .string(d.action.rawValue), "decision": .string(d.decision.rawValue)]
                    if let m = d.match { o["policy"] = .string(m.policy.description) }
                    return .object(o)
                })
            default:
                actual = got[entry.key] ?? .null
            }
            if actual != expected { mismatches.append("\(entry.key): want \(expected), got \(actual)") }
        }
        if mismatches.isEmpty { return CaseResult(file: file, note: note) }
        return CaseResult(file: file, note: note, failure: mismatches.joined(separator: "; ") + "\n  decision: \(got)")
    }
}
