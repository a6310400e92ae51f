import ExtAuthz
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PolicyCore
import Testing
import WardenTesting

/// `warden serve` killed with SIGKILL and restarted while a broken file sits in its policies directory serves the
/// last good set it persisted, until the directory loads again.
@Suite(.serialized, .timeLimit(.minutes(3))) struct PersistedPoliciesServeTests {
    static let broken = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: broken, namespace: backend}
        spec: {action: NOPE
        """

    static func status(_ server: ServerProcess) async throws -> Value {
        try JSONReader.parse(try await curl([server.adminBase + "/v1/status"]).body)["result"] ?? .null
    }

    /// The gRPC check codes for `/admin` (denied by the set) and `/items` (allowed).
    static func decisions(_ server: ServerProcess) async throws -> (admin: Int, items: Int) {
        try await withClient(port: server.grpcPort) { auth, _ in
            (Int(try await auth.check(check(path: "/admin")).status.code), Int(try await auth.check(check(path: "/items")).status.code))
        }
    }

    @Test func aRestartAfterSIGKILLWithABrokenFileServesTheLastGoodSet() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("policies/deny-admin.yaml", denyAdminPolicy)
        let arguments = [
            "--policies", directory.path + "/policies", "--persistence-directory", directory.path + "/state",
            "--decision-log", "off", "--watch-interval-ms", "100",
        ]
        let first = try await ServerProcess(arguments)
        #expect(try await Self.decisions(first) == (7, 0))
        let persisted = try await Self.status(first)["persisted"]
        #expect(persisted?["from_persisted"] == false)
        #expect(persisted?["revision"]?.stringValue?.hasPrefix("sha256:") == true, "\(persisted ?? .null)")
        first.launched.kill9()

        let broken = try directory.write("policies/broken.yaml", Self.broken)
        let second = try await ServerProcess(arguments)
        defer { second.stop() }
        #expect(try await curl([second.httpBase + "/health"]).status == 200)
        let status = try await Self.status(second)
        #expect(status["ready"] == true)
        #expect(status["from_persisted"] == true, "\(status)")
        #expect(status["persisted"]?["revision"] == persisted?["revision"])
        #expect(status["last_error_message"]?.stringValue?.hasPrefix("\(broken):5:") == true, "\(status)")
        #expect(try await Self.decisions(second) == (7, 0), "the last good set denies and allows")
        #expect(second.stderr.contains("serving the last good set persisted at"))
        #expect(second.stderr.contains("\(broken):5:"))

        // Fixed, the directory serves again.
        try directory.remove("policies/broken.yaml")
        try directory.write("policies/deny-items.yaml", denyAdminPolicy
            .replacingOccurrences(of: "deny-admin", with: "deny-items").replacingOccurrences(of: "/admin", with: "/items"))
        try await waitUntil { (try? await Self.status(second)["from_persisted"]) == false }
        #expect(try await Self.decisions(second) == (7, 7), "the directory's new set")
    }

    @Test func withoutPersistingARestartWithABrokenFileFailsClosed() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("policies/deny-admin.yaml", denyAdminPolicy)
        let arguments = [
            "--policies", directory.path + "/policies", "--persistence-directory", directory.path + "/state",
            "--decision-log", "off", "--no-persist-policies",
        ]
        let first = try await ServerProcess(arguments)
        #expect(try await Self.decisions(first) == (7, 0))
        first.launched.kill9()
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/state"))

        try directory.write("policies/broken.yaml", Self.broken)
        let second = try await ServerProcess(arguments)
        defer { second.stop() }
        #expect(try await curl([second.httpBase + "/health"]).status == 503)
        #expect(try await Self.decisions(second) == (14, 14), "UNAVAILABLE: no set, fail closed")
    }
}
