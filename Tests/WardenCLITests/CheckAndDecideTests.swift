import Foundation
import PolicyCore
import Testing
import WardenTesting

/// The real `warden` binary, run as a user runs it.
@Suite struct CheckAndDecideTests {
    /// The paper cuts a new user meets first: documents of other kinds are named, a missing file is said one way
    /// with its reason, and a near-miss flag or command gets a suggestion.
    @Test func firstHourMessages() async throws {
        let dir = try TemporaryDirectory()
        let deployment = try dir.write("deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")
        let skipped = try await ProcessRunner.warden(["check", deployment])
        #expect(skipped.status == 0)
        #expect(skipped.stdout.contains("\(deployment):1:1: note: skipped a `Deployment`: not an AuthorizationPolicy"))

        for arguments in [["check", "nosuch"], ["eval", "-d", "nosuch", "data"], ["test", "nosuch"],
                          ["decide", "--policies", "nosuch", "--request", "nosuch.yaml"]] {
            let out = try await ProcessRunner.warden(arguments)
            #expect(out.status != 0, "\(arguments)")
            #expect((out.stdout + out.stderr).contains("cannot read `nosuch`: no such file or directory"), "\(arguments): \(out.stdout)\(out.stderr)")
        }

        let flag = try await ProcessRunner.warden(["decide", "--policy", "policies", "--request", "x.yaml"])
        #expect(flag.status == 2)
        #expect(flag.stderr.contains("Did you mean '--policies'?"))
        let command = try await ProcessRunner.warden(["chek", "policies"])
        #expect(command.status == 2)
        #expect(command.stderr.contains("Did you mean 'check'?"))
        let nested = try await ProcessRunner.warden(["jwt", "verfy", "x"])
        #expect(nested.stderr.contains("Did you mean 'verify'?"))
    }

    @Test func checkAcceptsTheShippedPolicies() async throws {
        let out = try await ProcessRunner.warden(["check", "policies"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("ok: "))
    }

    @Test func checkListsEveryErrorWithItsPlaceAndExitsOne() async throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("details.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: details
            spec:
              action: DENNY
              rules:
              - to:
                - operation:
                    methods: [GET]
                    ports: [80]
            """)
        let out = try await ProcessRunner.warden(["check", dir.path])
        #expect(out.status == 1)
        #expect(out.stdout.contains("\(file):6:11: spec.action: unknown action `DENNY`; expected one of ALLOW, DENY, AUDIT, CUSTOM"))
        #expect(out.stdout.contains("\(file):11:17: spec.rules[0].to[0].operation.ports[0]: expected a string, found an integer; quote it: \"80\""))
        #expect(out.stdout.contains("  action: DENNY\n"), "the source line is shown")
        #expect(out.stdout.contains("2 errors in 1 file"))
    }

    /// Warnings are listed as `file:line:col: field.path: warning: message` and do not fail the check.
    @Test func checkShowsWarningsAndExitsZero() async throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("deny-deletes.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-deletes, namespace: shop}
            spec:
              action: DENY
              rules:
              - from: []
                to:
                - operation: {methods: [DELETE]}
            """)
        let out = try await ProcessRunner.warden(["check", dir.path])
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("""
            \(file):7:5: spec.rules[0]: warning: a DENY rule with only HTTP attributes denies all traffic to TCP ports \
            under the policy's scope in Istio; set `ports` to say which ports it covers
            """), "\(out.stdout)")
        #expect(out.stdout.contains("""
            \(file):7:11: spec.rules[0].from: warning: an empty `from` is no `from`, as Istio decodes it: the rule matches \
            any source; remove it, or list the sources
            """))
        #expect(out.stdout.contains("  - from: []\n"), "the source line is shown")
        #expect(out.stdout.contains("ok: 1 policy in 1 file, 2 warnings"))

        let json = try await ProcessRunner.warden(["check", "--format", "json", dir.path])
        #expect(json.status == 0)
        let report = try JSONReader.parse(json.stdout)
        #expect(report["valid"] == true)
        #expect(report["warnings"] == 2)
        #expect(report["diagnostics"]?.arrayValue?.map { $0["severity"] } == ["warning", "warning"])

        // One error beside the warnings fails the check, and both are listed.
        try dir.write("broken.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: broken, namespace: shop}
            spec: {action: DENY, rules: []}
            """)
        let failed = try await ProcessRunner.warden(["check", dir.path])
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("broken.yaml:4:7: spec: DENY action without `rules` is meaningless"))
        #expect(failed.stdout.contains("1 error in 2 files, 2 warnings"))
    }

    @Test func checkValidatesPeerAndRequestAuthentication() async throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("authn.yaml", """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: foo}
            spec:
              mtls: {mode: STRICTER}
              portLevelMtls:
                8080: {mode: DISABLE}
            ---
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: jwt, namespace: foo}
            spec:
              jwtRules:
              - issuer: ""
            """)
        let out = try await ProcessRunner.warden(["check", dir.path])
        #expect(out.status == 1)
        #expect(out.stdout.contains(
            "\(file):5:16: spec.mtls.mode: unsupported mode `STRICTER`: must be one of `UNSET`, `DISABLE`, `PERMISSIVE`, `STRICT`"))
        #expect(out.stdout.contains("\(file):7:5: spec.portLevelMtls: mesh/namespace peer authentication cannot have port level mTLS"))
        #expect(out.stdout.contains("\(file):14:13: spec.jwtRules[0].issuer: `issuer` must not be empty"))
        #expect(!out.stdout.contains("skipped"))

        // Valid documents count as policies; a newer namespace-wide policy beside an older one is a warning.
        try dir.write("authn.yaml", """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: older, namespace: foo, creationTimestamp: "2024-01-01T00:00:00Z"}
            spec: {mtls: {mode: STRICT}}
            ---
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: newer, namespace: foo, creationTimestamp: "2024-06-01T00:00:00Z"}
            spec: {mtls: {mode: PERMISSIVE}}
            """)
        let valid = try await ProcessRunner.warden(["check", dir.path])
        #expect(valid.status == 0, "\(valid.stdout)")
        #expect(valid.stdout.contains("PeerAuthentication `foo/newer` is ignored: `foo/older` is an older namespace-wide policy"))
        #expect(valid.stdout.contains("ok: 2 policies in 1 file"))
    }

    @Test func checkJSONReportsDiagnostics() async throws {
        let dir = try TemporaryDirectory()
        try dir.write("p.yaml", "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {action: DENY}\n")
        let out = try await ProcessRunner.warden(["check", "--format", "json", dir.path])
        #expect(out.status == 1)
        let report = try JSONReader.parse(out.stdout)
        #expect(report["valid"] == false)
        #expect(report["diagnostics"]?.arrayValue?.first?["location"]?["row"] == 4)
        #expect(report["diagnostics"]?.arrayValue?.first?["path"] == "spec")
    }

    @Test func decideAllowsTheSeedTokenAndExplainsTheDenial() async throws {
        let allowed = try await ProcessRunner.warden([
            "decide", "--policies", "policies", "--request", "examples/requests/details-with-token.yaml", "--format", "json",
        ])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        let decision = try JSONReader.parse(allowed.stdout)
        #expect(decision["decision"] == "allow")
        #expect(decision["policy"] == "default/details-require-jwt")
        #expect(decision["rule"] == 0)
        #expect(decision["audit"] == false)
        #expect(decision["reason"] == "allow_matched")

        let denied = try await ProcessRunner.warden([
            "decide", "--policies", "policies", "--request", "examples/requests/details-without-token.yaml", "--explain",
        ])
        #expect(denied.status == 0)
        #expect(denied.stdout.contains("decision: deny"))
        #expect(denied.stdout.contains("ALLOW default/details-require-jwt"))
        #expect(denied.stdout.contains(
            "spec.rules[0].from[0].source.requestPrincipals: request.auth.principal is absent (no verified request token)"))
    }

    @Test func decideReadsRequestsFromStandardInput() async throws {
        let out = try await ProcessRunner.warden(
            ["decide", "--policies", "policies", "--request", "-", "--format", "json"],
            stdin: #"{"destination.namespace": "restricted", "request.path": "/"}"#)
        #expect(out.status == 0)
        #expect(try JSONReader.parse(out.stdout)["reason"] == "no_allow_matched")
    }

    @Test func decideExitsTwoForUnusableInput() async throws {
        let dir = try TemporaryDirectory()
        let request = try dir.write("r.json", #"{"request.header": {"a": "b"}}"#)
        let badRequest = try await ProcessRunner.warden(["decide", "--policies", "policies", "--request", request])
        #expect(badRequest.status == 2)
        #expect(badRequest.stderr.contains("`request.header`: unknown attribute; did you mean `request.headers`?"))

        try dir.write("bad/p.yaml", "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {action: NOPE}\n")
        let badPolicies = try await ProcessRunner.warden(["decide", "--policies", dir.path + "/bad", "--request", "examples/requests/details-with-token.yaml"])
        #expect(badPolicies.status == 2)
        #expect(badPolicies.stderr.contains("spec.action: unknown action `NOPE`"))

        let noFlags = try await ProcessRunner.warden(["decide", "--policies", "policies"])
        #expect(noFlags.status == 2)
    }

    @Test func decideBatchKeepsOrderAndReportsBadLines() async throws {
        let dir = try TemporaryDirectory()
        let lines = [
            #"{"destination.namespace": "default", "destination.workload_labels": {"app": "upload"}, "request.path": "/api/v1/profile/picture", "request.method": "POST"}"#,
            #"{"destination.namespace": "default", "destination.workload_labels": {"app": "upload"}, "request.path": "/api/v1/profile/picture", "request.method": "GET"}"#,
            #"{"destination.namespace": "restricted"}"#,
        ]
        let file = try dir.write("requests.jsonl", lines.joined(separator: "\n") + "\n")
        let out = try await ProcessRunner.warden(["decide", "--policies", "policies", "--requests", file, "--format", "json"])
        #expect(out.status == 0, "\(out.stderr)")
        let decisions = try out.stdout.split(separator: "\n").map { try JSONReader.parse(String($0)) }
        #expect(decisions.map { $0["decision"] } == ["deny", "allow", "deny"])
        #expect(decisions[0]["policy"] == "default/block-profile-picture-upload")

        try dir.write("bad.jsonl", lines[0] + "\nnot json\n")
        let bad = try await ProcessRunner.warden(["decide", "--policies", "policies", "--requests", dir.path + "/bad.jsonl"])
        #expect(bad.status == 2)
        #expect(bad.stdout.split(separator: "\n").count == 2)
    }

    @Test func conformanceCommandRunsTheSuite() async throws {
        let out = try await ProcessRunner.warden(["conformance", "--only", "authz"])
        #expect(out.status == 0, "\(out.stdout)")
        #expect(out.stdout.contains(" passed, 0 failed"))
    }
}
