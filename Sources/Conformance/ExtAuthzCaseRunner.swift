import AuthzPolicy
import DecisionPoint
import ExtAuthz
import PolicyCore
import PolicyLoading
import Rego
import SwiftProtobuf

/// Runs `conformance/extauthz/*.yaml`: an Envoy `CheckRequest` (protobuf's JSON mapping) decided against
/// AuthorizationPolicies, and the exact `CheckResponse` expected back (also in the JSON mapping).
///
/// ```yaml
/// cases:
/// - note: a unique name
///   policies: [ {apiVersion: ..., kind: AuthorizationPolicy, ...} ]
///   options: {trusted_proxies: 1, normalize_path: true, merge_slashes: false, strip_path_parameters: true,
///             path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD,   # or decode_escaped_slashes: true
///             verified_claims_header: true, destination_namespace: ns, destination_labels: {app: x}}
///   provider_decisions: {ext: {allowed: false, http_status: 401}}   # what a CUSTOM provider's rule returns
///   modules: ["package envoy.authz ..."]          # or: Rego modules the providers evaluate
///   provider_paths: {ext: team/authz/allow}      # rule per provider (default envoy/authz/allow)
///   check_request: {attributes: {request: {http: {method: GET, path: /admin}}}}
///   want_attributes: {request.path: /admin}      # optional: these flat attributes, exactly
///   want_response: {status: {code: 7}, deniedResponse: {...}}
/// ```
public enum ExtAuthzCaseRunner {
    public static let runner = ConformanceSuite.Runner(directory: "extauthz") { file in run(file) }

    static let caseFields = [
        "note", "policies", "options", "provider_decisions", "modules", "provider_paths", "check_request",
        "want_attributes", "want_response",
    ]
    static let optionFields = [
        "trusted_proxies", "normalize_path", "merge_slashes", "path_with_escaped_slashes_action", "decode_escaped_slashes",
        "strip_path_parameters", "verified_claims_header", "destination_namespace", "destination_labels",
    ]

    public static func run(_ file: CaseFile) -> [CaseResult] {
        var notes: Set<String> = []
        return file.cases.enumerated().map { index, node in
            let note = node["note"]?.value.stringValue ?? "case \(index)"
            var result = runCase(node, file: file.path, note: note)
            if !notes.insert(note).inserted { result.failure = "duplicate note" }
            return result
        }
    }

    /// A provider answering with the decision a Rego rule would have produced.
    struct DecisionProvider: CustomProvider {
        let decision: Value
        func check(_ request: AuthzRequest, input: () -> Value) -> CustomOutcome { OPAEnvoyDecision.decode(decision) }
    }

    static func runCase(_ node: DocumentNode, file: String, note: String) -> CaseResult {
        func fail(_ message: String) -> CaseResult { CaseResult(file: file, note: note, failure: message) }
        let decoder = DocumentDecoder()
        guard let fields = decoder.fields(node, at: .root, known: caseFields) else { return fail("a case must be an object") }
        if let problem = decoder.diagnostics.first { return fail(problem.description) }

        var options = CheckRequestMapper.Options()
        if let o = fields["options"] {
            guard let f = decoder.fields(o, at: .root / "options", known: optionFields) else { return fail("bad options") }
            if let n = f["trusted_proxies"]?.value.numberValue?.intValue { options.trustedProxies = n }
            if let b = f["normalize_path"]?.value.boolValue { options.pathNormalizer.normalizePath = b }
            if let b = f["merge_slashes"]?.value.boolValue { options.pathNormalizer.mergeSlashes = b }
            if let b = f["decode_escaped_slashes"]?.value.boolValue { options.pathNormalizer.decodeEscapedSlashes = b }
            if let b = f["strip_path_parameters"]?.value.boolValue { options.pathNormalizer.stripPathParameters = b }
            if let s = f["path_with_escaped_slashes_action"]?.value.stringValue {
                guard let action = PathNormalizer.EscapedSlashesAction(rawValue: s) else {
                    return fail("unknown path_with_escaped_slashes_action `\(s)`")
                }
                options.pathNormalizer.escapedSlashes = action
            }
            if f["verified_claims_header"]?.value.boolValue == true { options.verifiedClaimsHeader = VerifiedClaimsHeader.name }
            options.destinationNamespace = f["destination_namespace"]?.value.stringValue
            if case .object(let labels)? = f["destination_labels"]?.value {
                for (k, v) in labels { if let k = k.stringValue, let v = v.stringValue { options.destinationLabels[k] = v } }
            }
            if let problem = decoder.diagnostics.first { return fail(problem.description) }
        }

        let documents: [DocumentNode]
        switch fields["policies"]?.content {
        case .sequence(let items)?: documents = items
        case nil: documents = []
        default: return fail("`policies` must be a list")
        }
        let (policies, diagnostics) = PolicyLoader().policies(in: documents)
        if diagnostics.hasErrors { return fail("policies did not load: \(diagnostics.filter(\.isError).map(\.description))") }
        var providers: [String: any CustomProvider] = [:]
        if case .object(let decisions)? = fields["provider_decisions"]?.value {
            for (name, decision) in decisions { providers[name.stringValue ?? ""] = DecisionProvider(decision: decision) }
        }
        if let modulesNode = fields["modules"] {
            guard case .array(let texts) = modulesNode.value else { return fail("`modules` must be a list of Rego texts") }
            let sources = texts.enumerated().map { RegoModuleSource(path: "module\($0.offset).rego", text: $0.element.stringValue ?? "") }
            let rego: RegoPolicySet
            do {
                rego = try RegoPolicySet.compile(modules: sources)
            } catch {
                return fail("modules did not compile: \(error)")
            }
            var paths: [String: String] = [:]
            if case .object(let configured)? = fields["provider_paths"]?.value {
                for (k, v) in configured { paths[k.stringValue ?? ""] = v.stringValue }
            }
            var names = Set(paths.keys)
            for policy in policies { if let name = policy.provider { names.insert(name) } }
            for name in names {
                providers[name] = RegoProvider(name: name, path: paths[name] ?? RegoProvider.defaultPath, policies: rego)
            }
        }

        guard let requestNode = fields["check_request"], let want = fields["want_response"] else {
            return fail("a case needs `check_request` and `want_response`")
        }
        let check: Envoy_Service_Auth_V3_CheckRequest
        do {
            check = try Envoy_Service_Auth_V3_CheckRequest(jsonString: JSONWriter.string(requestNode.value))
        } catch {
            return fail("`check_request` is not a CheckRequest: \(error)")
        }
        // A case's checks come from a trusted proxy: with `verified_claims_header`, its header is read.
        let request = CheckRequestMapper(options: options).map(check, claimsHeaderTrusted: true)
        let snapshot = PolicySnapshot(authorization: CompiledPolicySet(policies: policies), providers: providers)
        let response = ExtAuthzDecision(snapshot.decide(request) {
            OPAEnvoyInput.document(for: check, normalizedPath: request.http.path)
        }).checkResponse

        var mismatches: [String] = []
        if let wantAttributes = fields["want_attributes"]?.value {
            guard case .object(let wanted) = wantAttributes else { return fail("`want_attributes` must be an object") }
            for (key, value) in wanted {
                let got = request.attributes[key.stringValue ?? ""] ?? .null
                if got != value { mismatches.append("attribute \(key.stringValue ?? ""): want \(value), got \(got)") }
            }
        }
        let got: Value
        do {
            got = try JSONReader.parse(response.jsonString())
        } catch {
            return fail("the response did not encode: \(error)")
        }
        if got != want.value { mismatches.append("response: want \(want.value)\n  got  \(got)") }
        return mismatches.isEmpty ? CaseResult(file: file, note: note) : fail(mismatches.joined(separator: "\n"))
    }
}
