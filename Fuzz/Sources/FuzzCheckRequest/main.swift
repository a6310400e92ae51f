import AuthzPolicy
import DecisionPoint
import ExtAuthz
import FuzzSupport
import PolicyCore
import PolicyLoading
import Rego

/// Envoy `CheckRequest`s (protobuf's binary form, or its JSON form when the input starts with `{`) through the
/// whole check path: mapped to attributes and OPA-Envoy's input document, decided against AuthorizationPolicies and
/// a CUSTOM Rego provider, rendered as a `CheckResponse`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckRequest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    let check: Envoy_Service_Auth_V3_CheckRequest
    do {
        if input.bytes.first == UInt8(ascii: "{") {
            check = try Envoy_Service_Auth_V3_CheckRequest(jsonString: input.text)
        } else {
            check = try Envoy_Service_Auth_V3_CheckRequest(serializedBytes: input.array)
        }
    } catch {
        return 0
    }
    let request = mapper.map(check, claimsHeaderTrusted: true)
    _ = request.attributes
    let response = snapshot.decide(request) { OPAEnvoyInput.document(for: check, normalizedPath: request.http.path) }
    _ = ExtAuthzDecision(response, decisionID: "fuzz").checkResponse
    return 0
}

let mapper = CheckRequestMapper(options: .init(trustedProxies: 1, verifiedClaimsHeader: VerifiedClaimsHeader.name))

let snapshot: PolicySnapshot = {
    let policies = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-admin, namespace: default}
        spec: {action: DENY, rules: [{to: [{operation: {paths: ["/admin/*"], notMethods: [GET]}}]}]}
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: ext, namespace: default}
        spec: {action: CUSTOM, provider: {name: opa}, rules: [{to: [{operation: {paths: ["/api/*"]}}]}]}
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: allow, namespace: default}
        spec:
          rules:
          - from: [{source: {principals: ["cluster.local/ns/*"], ipBlocks: [10.0.0.0/8]}}]
            when: [{key: request.auth.claims[groups], values: [admins]}]
          - to: [{operation: {hosts: ["*.example.com"], ports: ["8080"]}}]
        """
    let rego = """
        package envoy.authz

        default allow := false

        allow if {
            input.attributes.request.http.method == "GET"
            startswith(input.parsed_path[0], "api")
            input.parsed_query.v[_] == "1"
        }
        """
    let (decoded, _) = PolicyLoader().readDocuments(policies, file: "fuzz.yaml")
    let modules = try! RegoPolicySet.compile(modules: [RegoModuleSource(path: "authz.rego", text: rego)])
    return PolicySnapshot(
        authorization: CompiledPolicySet(policies: decoded),
        providers: ["opa": RegoProvider(name: "opa", path: RegoProvider.defaultPath, policies: modules)])
}()
