import ExtAuthz
import PolicyCore

/// Checks as an Istio sidecar sends them, for every test that needs one.
public enum CheckFixtures {
    public static let frontend = try! SPIFFEID(parsing: "spiffe://cluster.local/ns/frontend/sa/web")
    public static let backend = try! SPIFFEID(parsing: "spiffe://cluster.local/ns/backend/sa/api")

    /// The `web` workload of `frontend` (10.0.0.5) calls the `api` workload of `backend` (10.0.0.9:8080) through
    /// its sidecar, which names the workload in context extensions.
    public static func sidecar(
        method: String = "GET", path: String, headers: [String: String] = [:], sourcePort: Int = 40000,
        labels: [String: String] = ["app": "api"]
    ) -> CheckRequestParts {
        CheckRequestParts(
            source: .init(identity: frontend, address: "10.0.0.5", port: sourcePort),
            destination: .init(address: "10.0.0.9", port: 8080),
            namespace: "backend", labels: labels, method: method, host: "api.backend", target: path,
            headers: headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) })
    }
}
