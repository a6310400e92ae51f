import Foundation
import PolicyCore
import Testing
import WardenTesting

/// `warden replay` and `warden bench`, run as a user runs them.
@Suite struct ReplayAndBenchTests {
    /// A day of traffic to three workloads, written as a decision log (`attributes` + the recorded decision).
    static func traffic() -> [Value] {
        var lines: [Value] = []
        for i in 0..<30 {
            let app = ["reviews", "ratings", "details"][i % 3]
            let method = i % 4 == 0 ? "DELETE" : "GET"
            let attributes: Value = .object([
                "destination.namespace": "bookinfo",
                "destination.workload_labels": ["app": .string(app)],
                "source.principal": .string("cluster.local/ns/bookinfo/sa/\(i % 2 == 0 ? "productpage" : "tester")"),
                "request.method": .string(method),
                "request.path": .string("/\(app)/\(i)"),
            ])
            lines.append(["decision_id": .string("d\(i)"), "attributes": attributes, "decision": "allow"])
        }
        return lines
    }

    @Test func replayFlipsExactlyWhatANewDenyTargets() async throws {
        let dir = try TemporaryDirectory()
        let log = try dir.write("decisions.jsonl", Self.traffic().map { JSONWriter.string($0) }.joined(separator: "\n") + "\n")
        try dir.write("new/deny-deletes.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: no-deletes-on-reviews, namespace: bookinfo}
            spec:
              selector: {matchLabels: {app: reviews}}
              action: DENY
              rules: [{to: [{operation: {methods: [DELETE]}}]}]
            """)
        let out = try await ProcessRunner.warden(["replay", "--log", log, "--policies", dir.path + "/new", "--format", "json", "--show", "100"])
        #expect(out.status == 3, "an allow became a deny: \(out.stderr)")
        let report = try JSONReader.parse(out.stdout)
        // Requests 0, 12 and 24 are DELETEs to reviews (i % 3 == 0 and i % 4 == 0).
        #expect(report["total"] == 30)
        #expect(report["changed"] == 3)
        #expect(report["allow_to_deny"] == 3)
        #expect(report["deny_to_allow"] == 0)
        let changed = try #require(report["changes"]?.arrayValue)
        #expect(changed.map { $0["line"] } == [1, 13, 25])
        #expect(changed.allSatisfy { $0["after"]?["policy"] == "bookinfo/no-deletes-on-reviews" })
        #expect(report["by_workload"] == [["key": "bookinfo {app=reviews}", "count": 3]])
        #expect(report["by_policy"] == [["key": "DENY bookinfo/no-deletes-on-reviews", "count": 3]])
        #expect(report["by_source_principal"] == [["key": "cluster.local/ns/bookinfo/sa/productpage", "count": 3]])
    }

    @Test func replayWithoutChangesExitsZeroAndIsStable() async throws {
        let dir = try TemporaryDirectory()
        let log = try dir.write("decisions.jsonl", Self.traffic().map { JSONWriter.string($0) }.joined(separator: "\n"))
        try dir.write("same/deny-other.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-elsewhere, namespace: other}
            spec: {action: DENY, rules: [{}]}
            """)
        let first = try await ProcessRunner.warden(["replay", "--log", log, "--policies", dir.path + "/same"])
        let second = try await ProcessRunner.warden(["replay", "--log", log, "--policies", dir.path + "/same"])
        #expect(first.status == 0)
        #expect(first.stdout == "30 requests replayed: 0 decisions change (0 allow → deny, 0 deny → allow)\n")
        #expect(first.stdout == second.stdout)
    }

    @Test func replayComparesTwoPolicySetsOnPlainRequests() async throws {
        let dir = try TemporaryDirectory()
        let plain = Self.traffic().map { JSONWriter.string($0["attributes"]!) }.joined(separator: "\n")
        let requests = try dir.write("requests.jsonl", plain)
        // Before: everything in bookinfo allowed only for productpage; after: no policy at all.
        try dir.write("before/allow-productpage.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: productpage-only, namespace: bookinfo}
            spec: {rules: [{from: [{source: {principals: ["cluster.local/ns/bookinfo/sa/productpage"]}}]}]}
            """)
        try dir.write("after/README.yaml", "# no policies\n")
        let out = try await ProcessRunner.warden([
            "replay", "--log", requests, "--policies", dir.path + "/after", "--policies-before", dir.path + "/before",
        ])
        #expect(out.status == 0, "only deny → allow changes: \(out.stdout)")
        #expect(out.stdout.hasPrefix("30 requests replayed: 15 decisions change (0 allow → deny, 15 deny → allow)"))
        #expect(out.stdout.contains("by source principal:\n      15  cluster.local/ns/bookinfo/sa/tester"))

        let noEarlier = try await ProcessRunner.warden(["replay", "--log", requests, "--policies", dir.path + "/after"])
        #expect(noEarlier.status == 2)
        #expect(noEarlier.stderr.contains("no recorded decision"))
    }

    @Test func benchReportsItsShape() async throws {
        let dir = try TemporaryDirectory()
        let requests = try dir.write(
            "requests.jsonl", Self.traffic().map { JSONWriter.string($0["attributes"]!) }.joined(separator: "\n"))
        let out = try await ProcessRunner.warden(["bench", "--policies", "policies", "--requests", requests, "--passes", "3", "--format", "json"])
        #expect(out.status == 0, "\(out.stderr)")
        let report = try JSONReader.parse(out.stdout)
        #expect(report["kind"] == "authorization-policy")
        #expect(report["items"] == 30)
        #expect(report["passes"] == 3)
        for key in ["median_ns", "p50_ns", "p99_ns"] {
            #expect((report[key]?.numberValue?.doubleValue ?? 0) > 0, "\(key)")
        }
        #expect((report["per_second"]?.numberValue?.intValue ?? 0) > 0)
        let text = try await ProcessRunner.warden(["bench", "--policies", "policies", "--requests", requests, "--passes", "2"])
        #expect(text.stdout.contains("ns per decision"))
    }

    @Test func benchMeasuresRegoQueries() async throws {
        let dir = try TemporaryDirectory()
        let policy = try dir.write("authz.rego", """
            package envoy.authz

            default allow := false

            allow if input.attributes.request.http.method == "GET"
            """)
        let inputs = try dir.write("inputs.jsonl", ["GET", "POST", "GET"].map {
            #"{"attributes":{"request":{"http":{"method":"\#($0)"}}}}"#
        }.joined(separator: "\n"))
        let out = try await ProcessRunner.warden(["bench", "-d", policy, "--inputs", inputs, "--passes", "3", "--format", "json", "data.envoy.authz.allow"])
        #expect(out.status == 0, "\(out.stderr)")
        let report = try JSONReader.parse(out.stdout)
        #expect(report["kind"] == "rego")
        #expect(report["items"] == 3)
        #expect((report["median_ns"]?.numberValue?.doubleValue ?? 0) > 0)

        let input = try dir.write("input.json", #"{"attributes":{"request":{"http":{"method":"GET"}}}}"#)
        let one = try await ProcessRunner.warden(["bench", "-d", policy, "-i", input, "--passes", "2", "data.envoy.authz.allow"])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(one.stdout.contains("1 per pass"))

        // A query that fails to evaluate is refused before anything is measured; so are mixed modes.
        let conflict = try dir.write("conflict.rego", """
            package conflict

            p := 1 if input.attributes
            p := 2 if input.attributes
            """)
        let failing = try await ProcessRunner.warden(["bench", "-d", conflict, "-i", input, "data.conflict.p"])
        #expect(failing.status == 2, "\(failing.stdout)")
        #expect(failing.stderr.contains("eval_conflict_error"), "\(failing.stderr)")
        let mixed = try await ProcessRunner.warden(["bench", "--policies", "policies", "-d", policy, "-i", input, "data.x"])
        #expect(mixed.status == 2)
        #expect(mixed.stderr.contains("different modes"))
    }
}
