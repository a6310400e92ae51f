import AuthzPolicy
import DecisionPoint
import FuzzSupport
import PolicyCore
import PolicyLoading

/// AuthorizationPolicy documents on any text: decoded and validated as `istioctl validate` would, then, when
/// valid, compiled to indexes and asked to decide a few requests (deciding never throws and never crashes).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAuthorizationPolicy(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let (policies, diagnostics) = loader.readDocuments(FuzzInput(start, count).text, file: "fuzz.yaml")
    guard !diagnostics.hasErrors else { return 0 }
    let snapshot = PolicySnapshot(authorization: CompiledPolicySet(policies: policies))
    for request in requests {
        // No CUSTOM provider is configured, so none asks for an input document.
        let response = snapshot.decide(request) { Value.null }
        fuzzCheck(response.decision == .allow || response.decision == .deny, "no decision")
    }
    return 0
}

let loader = PolicyLoader()

/// Requests that touch every attribute kind a rule can name.
let attributeSets: [Value] = [
    [
        "source.principal": "cluster.local/ns/default/sa/sleep", "source.ip": "10.0.0.5", "remote.ip": "203.0.113.9",
        "destination.ip": "10.0.0.9", "destination.port": 9080, "destination.namespace": "default",
        "destination.workload_labels": ["app": "details", "version": "v1"], "request.host": "details:9080",
        "request.method": "GET", "request.path": "/details/1", "request.headers": ["user-agent": "curl/8.5.0"],
        "request.auth.principal": "testing@secure.istio.io/testing@secure.istio.io",
        "request.auth.audiences": ["bookinfo"], "request.auth.presenter": "mobile-app",
        "request.auth.claims": ["iss": "testing@secure.istio.io", "groups": ["admins"]],
        "connection.sni": "outbound_.9080_._.details.default.svc.cluster.local",
    ],
    ["request.method": "POST", "request.path": "/admin/x", "source.ip": "2001:db8::1"],
    [:],
]
let requests = attributeSets.map { (try? AuthzRequest(attributes: $0)) ?? AuthzRequest() }
