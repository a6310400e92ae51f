import ExtAuthz
import Foundation
import GRPCCore
import PolicyCore
import Testing
import WardenTesting

/// Inputs that used to crash, exhaust or fool the real `warden serve`: deep Rego, YAML alias bombs, path bypasses,
/// and policy files read while half-written. Each is refused (or denied) and the last good set keeps serving.
@Suite(.serialized, .timeLimit(.minutes(3))) struct HardeningTests {
    static let deepRego = HostileInputs.deepRego(open: "(", close: ")", count: 3_000)
    static let billionLaughs = HostileInputs.billionLaughs

    @Test func deepRegoAndAliasBombsAreRefusedOnReloadAndByThePolicyAPI() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("deny-admin.yaml", denyAdminPolicy)
        let server = try await ServerProcess([
            "--policies", directory.path, "--decision-log", "off", "--watch-interval-ms", "100", "--allow-policy-writes",
        ])
        defer { server.stop() }

        // Reload of the watched directory: each file is refused with its place; the first set keeps deciding.
        let deep = try directory.write("deep.rego", Self.deepRego)
        var status = try await waitForStatus(server) { $0["reload_failures"] == 1 }
        #expect(status["revision"] == 1)
        let message = status["last_error_message"]?.stringValue ?? ""
        #expect(message.hasPrefix("\(deep):3:") && message.contains("limits.max_nesting_depth"), "\(message)")
        try directory.remove("deep.rego")
        let laughs = try directory.write("laughs.yaml", Self.billionLaughs)
        status = try await waitForStatus(server) { $0["reload_failures"] == 2 }
        let laughsMessage = status["last_error_message"]?.stringValue ?? ""
        #expect(laughsMessage.hasPrefix("\(laughs):6:8:") && laughsMessage.contains("max_yaml_alias_nodes"), "\(laughsMessage)")
        try directory.remove("laughs.yaml")
        try directory.write("arrays.rego", HostileInputs.deepRego(package: "arrays", open: "[", close: "]", count: 10_000))
        status = try await waitForStatus(server) { $0["reload_failures"] == 3 }
        try directory.remove("arrays.rego")

        // The policy API refuses the same texts before writing anything.
        let put = try await curl([
            "-X", "PUT", "-H", "content-type: text/plain", "--data-binary", Self.deepRego,
            server.adminBase + "/v1/policies/deep",
        ])
        #expect(put.status == 400)
        #expect(put.body.contains("rego_parse_error") && put.body.contains("max_nesting_depth"), "\(put.body)")
        let putYAML = try await curl([
            "-X", "PUT", "-H", "content-type: application/yaml", "--data-binary", Self.billionLaughs,
            server.adminBase + "/v1/policies/laughs",
        ])
        #expect(putYAML.status == 400)
        #expect(putYAML.body.contains("max_yaml_alias_nodes"), "\(putYAML.body)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/deep.rego"))
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/laughs.yaml"))

        #expect(server.launched.isRunning)
        let (denied, allowed) = try await withClient(port: server.grpcPort) { auth, _ in
            (try await auth.check(check(path: "/admin")), try await auth.check(check(path: "/items")))
        }
        #expect(denied.status.code == 7, "the first set still denies")
        #expect(allowed.status.code == 0)
        // Nothing was expanded: the process never grew anywhere near what 9^9 strings would take.
        let peak = try #require(memoryKilobytes(of: server.launched.processIdentifier, "VmHWM"))
        #expect(peak < 1_000_000, "peak RSS \(peak) kB")
    }

    /// `warden eval` and `warden check` end with an error at the place the text goes over, never a crash.
    @Test func evalAndCheckRefuseDeepTextWithItsPlace() async throws {
        let directory = try TemporaryDirectory()
        let texts = [
            "parens.rego": Self.deepRego,
            "sum.rego": "package sum\n\nx := " + Array(repeating: "1", count: 5_000).joined(separator: " + ") + "\n",
            "arrays.rego": HostileInputs.deepRego(package: "arrays", open: "[", close: "]", count: 10_000),
        ]
        for (name, text) in texts.sorted(by: { $0.key < $1.key }) {
            let file = try directory.write(name, text)
            let eval = try await ProcessRunner.warden(["eval", "-d", file, "data"])
            #expect(eval.status == 1, "\(name): \(eval.stderr)")
            #expect(eval.stdout.contains("rego_parse_error") && eval.stdout.contains("max_nesting_depth"), "\(eval.stdout)")
            #expect(eval.stdout.contains("\"row\": 3"), "\(eval.stdout)")
        }
        try directory.write("laughs.yaml", Self.billionLaughs)
        let check = try await ProcessRunner.warden(["check", directory.path])
        #expect(check.status == 1)
        for name in texts.keys {
            #expect(check.stdout.contains("\(directory.path)/\(name):3:") || check.stderr.contains("\(directory.path)/\(name):3:"),
                    "\(name): \(check.stdout) \(check.stderr)")
        }
        #expect((check.stdout + check.stderr).contains("laughs.yaml:6:8: YAML aliases expand to more than 100000 nodes"))
    }

    @Test func aServerStartsOnDeepTextAndServesOnceItIsFixed() async throws {
        let directory = try TemporaryDirectory()
        let deep = try directory.write("deep.rego", Self.deepRego)
        let server = try await ServerProcess(["--policies", directory.path, "--decision-log", "off", "--watch-interval-ms", "0"])
        defer { server.stop() }
        #expect(server.stderr.contains("\(deep):3:"), "\(server.stderr)")
        #expect(try await curl([server.httpBase + "/health"]).status == 503)
        try directory.remove("deep.rego")
        try directory.write("deny-admin.yaml", denyAdminPolicy)
        server.signal(SIGHUP)
        _ = try await waitForStatus(server) { $0["revision"] == 1 }
        #expect(try await curl([server.httpBase + "/health"]).status == 200)
    }

    /// The bypasses of a DENY on `/admin/*`, through gRPC and through ext_authz's HTTP mode.
    @Test func pathsIstioNormalizesToAdminAreDenied() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("deny-admin.yaml", denyAdminPolicy.replacingOccurrences(of: #""/admin""#, with: #""/admin/*""#))
        let server = try await ServerProcess([
            "--policies", directory.path, "--decision-log", "off", "--watch-interval-ms", "0",
            "--destination-namespace", "backend",
        ])
        defer { server.stop() }
        let bypasses = ["\\admin\\x", "/admin\\x", "/public/..\\admin/x", "/public/..;/admin/x", "/admin;v=1/x", "/admin%00/x"]
        let responses = try await withClient(port: server.grpcPort) { auth, _ in
            var out: [Envoy_Service_Auth_V3_CheckResponse] = []
            for path in bypasses + ["/public/x"] { out.append(try await auth.check(check(path: path))) }
            return out
        }
        for (path, response) in zip(bypasses, responses) {
            #expect(response.status.code == 7, "\(path) is denied")
            let expected: Envoy_Type_V3_StatusCode = path.contains("%00") ? .badRequest : .forbidden
            #expect(response.deniedResponse.status.code == expected, "\(path)")
        }
        #expect(responses.last?.status.code == 0, "/public/x is allowed")

        for path in bypasses.dropFirst() {
            let http = try await curl(["--path-as-is", server.httpBase + "/ext_authz" + path])
            #expect(http.status == (path.contains("%00") ? 400 : 403), "\(path): \(http.status) \(http.body)")
        }
        #expect(try await curl([server.httpBase + "/ext_authz/public/x"]).status == 200)
    }

    /// A policy file rewritten in place, with a pause between its two documents, is never served half-written.
    @Test func aPolicyFileWrittenInPlaceIsNeverServedHalfWritten() async throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("set.yaml", Self.policySet(version: 0))
        let server = try await ServerProcess(["--policies", directory.path, "--decision-log", "off", "--watch-interval-ms", "300"])
        defer { server.stop() }

        let rewrites = 4
        // The writer runs on a thread of its own: a task's sleep can stretch by seconds while the shared pool is
        // busy with other suites, and a pause longer than the watch interval is a complete file to any watcher.
        let writer = DedicatedThread {
            for version in 1...rewrites {
                let documents = Self.policySet(version: version).components(separatedBy: "---\n")
                let handle = try #require(FileHandle(forWritingAtPath: file))
                try handle.truncate(atOffset: 0)
                try handle.write(contentsOf: Data(documents[0].utf8))
                try handle.synchronize()
                // Shorter than the watch interval: at most one look can fall inside the pause.
                Thread.sleep(forTimeInterval: 0.12)
                try handle.write(contentsOf: Data(("---\n" + documents.dropFirst().joined(separator: "---\n")).utf8))
                try handle.close()
                Thread.sleep(forTimeInterval: 0.7)
            }
        }
        let (probes, allowed) = try await withClient(port: server.grpcPort) { auth, _ in
            // Probe for as long as the writer writes (each rewrite takes about 0.82 s).
            var probes = 0, allowed = 0
            let deadline = ContinuousClock.now + .milliseconds(850 * rewrites)
            while ContinuousClock.now < deadline {
                if try await auth.check(check(path: "/admin")).status.code == 0 { allowed += 1 }
                probes += 1
                try await Task.sleep(for: .milliseconds(15))
            }
            return (probes, allowed)
        }
        try await writer.value
        #expect(allowed == 0, "/admin was allowed \(allowed) times in \(probes) probes")
        // Enough probes to land in every rewrite's pause several times, even when a loaded machine slows the loop.
        #expect(probes > 20)
        // The last version was loaded in the end, and no load failed.
        let status = try await waitForStatus(server) { _ in true }
        #expect(status["reload_failures"] == 0)
        let lastDenied = try await withClient(port: server.grpcPort) { auth, _ in
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if try await auth.check(check(path: "/v\(rewrites)")).status.code == 7 { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
        #expect(lastDenied, "version \(rewrites) was loaded")
    }

    static func policySet(version: Int) -> String {
        HostileInputs.allowAllThenDenyAdmin(namespace: "backend", version: version)
    }

    /// Polls `/v1/status` until `condition` holds on its `result` (bounded), and returns it.
    func waitForStatus(_ server: ServerProcess, until condition: (Value) -> Bool) async throws -> Value {
        let deadline = ContinuousClock.now + .seconds(30)
        var result: Value = .null
        while ContinuousClock.now < deadline {
            result = try JSONReader.parse(try await curl([server.adminBase + "/v1/status"]).body)["result"] ?? .null
            if condition(result) { return result }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("status never reached the condition: \(result)")
        return result
    }
}
