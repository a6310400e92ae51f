import AuthzPolicy
import DecisionPoint
import ExtAuthz
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Networking
import NIOCore
import PolicyCore
import PolicyLoading
import SwiftProtobuf
@testable import WardenServer
import WardenTesting

/// Policies most server tests decide against: `/admin` is denied, the `api` workload only allows GET, and
/// `/ext/*` on the `api` workload asks the CUSTOM provider `ext`.
let serverPolicies = """
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: deny-admin, namespace: backend}
    spec:
      action: DENY
      rules:
      - to: [{operation: {paths: ["/admin", "/admin/*"]}}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: api-get-only, namespace: backend}
    spec:
      selector: {matchLabels: {app: api}}
      action: ALLOW
      rules:
      - to: [{operation: {methods: [GET]}}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: ext, namespace: backend}
    spec:
      selector: {matchLabels: {app: api}}
      action: CUSTOM
      provider: {name: ext}
      rules:
      - to: [{operation: {paths: ["/ext/*"]}}]
    """

/// A CUSTOM provider answering with a fixed OPA-Envoy decision, as a Rego rule would.
struct FixedDecisionProvider: CustomProvider {
    let decision: Value
    func check(_ request: AuthzRequest, input: () -> Value) -> CustomOutcome { OPAEnvoyDecision.decode(decision) }
}

func snapshot(_ yaml: String = serverPolicies, providers: [String: any CustomProvider] = [:]) throws -> PolicySnapshot {
    let (policies, diagnostics) = PolicyLoader().readDocuments(yaml, file: "test.yaml")
    if diagnostics.hasErrors { throw diagnostics.first { $0.isError }! }
    return PolicySnapshot(authorization: CompiledPolicySet(policies: policies), providers: providers)
}

func makeHandler(_ snapshot: PolicySnapshot?, log: DecisionLog? = nil) -> CheckHandler {
    CheckHandler(
        decisionPoint: DecisionPoint(snapshot: snapshot), mapper: CheckRequestMapper(), metrics: ServerMetrics(), log: log)
}

/// A check from the `frontend` namespace to the `api` workload in `backend`.
func apiCheck(method: String = "GET", path: String, headers: [String: String] = [:]) -> Envoy_Service_Auth_V3_CheckRequest {
    CheckFixtures.sidecar(method: method, path: path, headers: headers).checkRequest
}

extension Array where Element == Envoy_Config_Core_V3_HeaderValueOption {
    var dictionary: [String: String] {
        var out: [String: String] = [:]
        for option in self { out[option.header.key] = option.header.value }
        return out
    }
}

/// The gRPC listener as `warden serve` runs it (Check in place, health through `GRPCServer`), on an ephemeral
/// port of 127.0.0.1, called by grpc-swift-2's HTTP/2 client.
func withGRPCListener<T: Sendable>(
    _ snapshot: PolicySnapshot?, maxMessageBytes: Int = 4 << 20,
    _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T
) async throws -> T {
    let ready = snapshot != nil
    let listener = GRPCListener(
        options: .init(host: "127.0.0.1", port: 0, maxMessageBytes: maxMessageBytes), inPlace: [.check(makeHandler(snapshot))])
    let health = HealthService(watchInterval: .milliseconds(50)) { ready }
    return try await withGRPCServer(transport: listener, services: [health]) { _ in
        let port = try await listener.listeningAddress.port!
        return try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext),
            handleClient: body)
    }
}

func withGRPCServices<T: Sendable>(
    _ snapshot: PolicySnapshot?,
    _ body: @Sendable (Envoy_Service_Auth_V3_Authorization.Client<HTTP2ClientTransport.Posix>,
                       Grpc_Health_V1_Health.Client<HTTP2ClientTransport.Posix>) async throws -> T
) async throws -> T {
    try await withGRPCListener(snapshot) { client in
        try await body(Envoy_Service_Auth_V3_Authorization.Client(wrapping: client), Grpc_Health_V1_Health.Client(wrapping: client))
    }
}

/// An OPA-Envoy policy: users named `user-*` may call `/ext/...` (their name is passed upstream); everyone else
/// gets 401 with a challenge and a body.
let extRego = """
    package envoy.authz

    import rego.v1

    default allow := {
    	"allowed": false,
    	"http_status": 401,
    	"body": "sign in first",
    	"headers": {"www-authenticate": "Bearer realm=\\"api\\""},
    }

    allow := {"allowed": true, "headers": {"x-user": user}, "request_headers_to_remove": ["x-user-token"]} if {
    	user := input.attributes.request.http.headers["x-user"]
    	input.parsed_path[0] == "ext"
    	startswith(user, "user-")
    	input.attributes.source.principal == "spiffe://cluster.local/ns/frontend/sa/web"
    }
    """
