import Foundation
import Testing
import WardenTesting

/// `warden upstream`, `warden conformance` with scenarios, and cleaning up after an interrupted run: the real
/// binary, curl, and real processes on 127.0.0.1.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ScenarioCommandTests {
    @Test func upstreamAnswersAndRecordsEveryRequest() async throws {
        let directory = try TemporaryDirectory()
        let record = directory.path + "/requests.jsonl"
        let upstream = try await LaunchedProcess(
            warden: "warden upstream", ["upstream", "--listen", "127.0.0.1:0", "--name", "details", "--record", record],
            readyMarkers: ["upstream listening on "])
        defer { upstream.stop() }
        let port = try #require(upstream.port(after: "upstream listening on "))
        let answer = try await curl([
            "-X", "POST", "-H", "x-test: one", "-H", "X-Test: two", "--data-binary", "abc", "http://127.0.0.1:\(port)/details/1?x=2",
        ])
        #expect(answer.status == 200)
        #expect(answer.body.contains(#""name":"details""#), "\(answer.body)")
        let recorded = try String(contentsOfFile: record, encoding: .utf8)
        #expect(recorded.split(separator: "\n").count == 1)
        #expect(recorded.contains(#""method":"POST""#), "\(recorded)")
        #expect(recorded.contains(#""path":"/details/1?x=2""#))
        #expect(recorded.contains(#""x-test":["one","two"]"#))
        #expect(recorded.contains(#""body_bytes":3"#))
        #expect(upstream.stop() == 0, "graceful exit")
    }

    @Test func conformanceRunsAScenarioAndWritesTheReport() async throws {
        let directory = try TemporaryDirectory()
        let report = directory.path + "/report.yaml"
        let out = try await ProcessRunner.warden([
            "conformance", Repository.path("conformance"), "--only", "scenarios", "--filter", "authz-incident-deny",
            "--report", report,
        ])
        #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
        #expect(out.stdout.hasSuffix("1 passed, 0 failed\n"), "\(out.stdout)")
        #expect(out.stderr.contains("scenarios"), "progress lines on standard error: \(out.stderr)")
        let text = try String(contentsOfFile: report, encoding: .utf8)
        #expect(text.contains("- name: ext-authz-http\n  title: \"ext_authz HTTP\"\n  result: success\n  statistics: {passed: 1, failed: 0, skipped: 0}"), "\(text)")
        #expect(text.contains("mode: \"partial: --only scenarios --filter authz-incident-deny\""))
    }

    @Test func aFailingScenarioFailsTheRunNamingTheStep() async throws {
        let suite = try TemporaryDirectory()
        try suite.write("scenarios/wrong.yaml", """
            title: a deliberately wrong expectation
            profiles: [ext-authz-http]
            files:
              policies/deny.yaml: |
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: deny-all, namespace: default}
                spec: {action: DENY, rules: [{}]}
            components:
            - server: warden
            steps:
            - note: expects an allow where the policy denies
              request: {to: warden, path: /ext_authz/anything}
              expect: {status: 200}
            """)
        let out = try await ProcessRunner.warden(["conformance", suite.path, "--only", "scenarios", "--format", "junit"])
        #expect(out.status == 1, "\(out.stdout)\n\(out.stderr)")
        #expect(out.stdout.contains(#"<testsuite name="scenarios" tests="1" failures="1" skipped="0">"#), "\(out.stdout)")
        #expect(out.stdout.contains("wrong.yaml:12: expects an allow where the policy denies: expected status 200, got 403"), "\(out.stdout)")
    }

    /// SIGINT in the middle of a scenario: every process it started ends with the run.
    @Test func anInterruptedRunLeavesNothingRunning() async throws {
        let run = try await LaunchedProcess(
            "warden conformance", [
                "conformance", Repository.path("conformance"), "--only", "scenarios", "--filter", "live-reload",
            ], isReady: { _ in true })
        var children: [Int32] = []
        for _ in 0..<600 where children.isEmpty {
            children = Self.children(of: run.processIdentifier).filter { Self.commandLine($0).contains("serve") }
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(!children.isEmpty, "the scenario's server never started\n\(run.stderr)")
        run.signal(SIGINT)
        for _ in 0..<200 where run.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!run.isRunning)
        try await Task.sleep(for: .milliseconds(200))
        for child in children {
            #expect(!Self.isRunning(child), "process \(child) (\(Self.commandLine(child))) outlived the run")
        }
    }

    static func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
            return status.split(separator: "\n").contains { $0 == "PPid:\t\(parent)" }
        }
    }

    /// Alive and not a zombie (a process whose parent exited may wait a moment to be reaped).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[close...].hasPrefix(") Z")
    }

    static func commandLine(_ pid: Int32) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
    }
}
