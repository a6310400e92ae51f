import AuthzPolicy
import DecisionPoint
import ExtAuthz
import PolicyCore
import PolicyLoading
import Rego

/// The check path of the targets that reach a decision: a `CheckRequest` mapped (one trusted proxy hop, the
/// verified-claims header trusted, Envoy's default path normalization), decided against DENY, CUSTOM (Rego) and
/// ALLOW policies, and rendered as a `CheckResponse`.
public enum FuzzCheckPath {
    public static let mapper = CheckRequestMapper(
        options: .init(trustedProxies: 1, verifiedClaimsHeader: VerifiedClaimsHeader.name))

    public static let snapshot: PolicySnapshot = {
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

    /// The attributes of a check, as the service maps them.
    public static func map(_ check: Envoy_Service_Auth_V3_CheckRequest) -> AuthzRequest {
        let request = mapper.map(check, claimsHeaderTrusted: true)
        _ = request.attributes
        return request
    }

    /// The decision on mapped attributes, as the service answers it.
    public static func decide(_ request: AuthzRequest, _ check: Envoy_Service_Auth_V3_CheckRequest) -> ExtAuthzDecision {
        let response = snapshot.decide(request) { OPAEnvoyInput.document(for: check, normalizedPath: request.http.path) }
        return ExtAuthzDecision(response, decisionID: "fuzz")
    }
}
