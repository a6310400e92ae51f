import AuthzPolicy
import DecisionPoint
import PolicyCore
import PolicyLoading
import Testing
import WardenTesting

@Suite struct PolicyLoaderTests {
    @Test func reportsFileLineColumnAndFieldPath() throws {
        let dir = try TemporaryDirectory()
        try dir.write("details.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: details
              namespace: default
            spec:
              rules:
              - from:
                - source:
                    ipBlocks:
                    - 10.0.0.0/8
                    - 10.0.0.0/33
            """)
        let result = PolicyLoader().read([dir.path])
        let error = try #require(result.diagnostics.first)
        #expect(result.diagnostics.count == 1)
        #expect(error.span == SourceSpan(file: dir.path + "/details.yaml", line: 12, column: 11))
        #expect(error.path?.description == "spec.rules[0].from[0].source.ipBlocks[1]")
        #expect(error.message == "invalid CIDR \"10.0.0.0/33\"")
        #expect(error.description == "\(dir.path)/details.yaml:12:11: spec.rules[0].from[0].source.ipBlocks[1]: invalid CIDR \"10.0.0.0/33\"")
        #expect(result.policies.isEmpty, "a set with errors is refused whole")
    }

    @Test func reportsEveryErrorInEveryFile() throws {
        let dir = try TemporaryDirectory()
        try dir.write("a.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: a}
            spec: {action: DENY}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: b}
            spec: {rules: [{to: [{operation: {ports: ["99999"]}}]}]}
            """)
        try dir.write("nested/c.json", """
            {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
             "metadata": {"name": "c"}, "spec": {"rules": [{"when": [{"key": "source.ip"}]}]}}
            """)
        try dir.write("broken.yml", "apiVersion: [\n")
        try dir.write("notes.txt", "ignored: not a policy file")
        let result = PolicyLoader().read([dir.path])
        let errors = result.diagnostics.filter(\.isError)
        #expect(result.files.count == 3)
        #expect(errors.count == 4)
        #expect(errors.map { $0.span!.file.split(separator: "/").last! } == ["a.yaml", "a.yaml", "broken.yml", "c.json"])
        #expect(errors.contains { $0.code == "yaml_parse_error" && $0.span?.line == 2 })
        #expect(errors.contains { $0.path?.description == "spec.rules[0].to[0].operation.ports[0]" && $0.span?.line == 9 })
        #expect(errors.contains { $0.path?.description == "spec.rules[0].when[0]" && $0.span?.line == 2 })
    }

    @Test func readsMultiDocumentFilesAndListsAndSkipsOtherKinds() throws {
        let dir = try TemporaryDirectory()
        try dir.write("all.yaml", """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: security.istio.io/v1
              kind: AuthorizationPolicy
              metadata: {name: one, namespace: ns1}
              spec: {}
            ---
            apiVersion: security.istio.io/v1beta1
            kind: PeerAuthentication
            metadata: {name: default}
            spec: {mtls: {mode: STRICT}}
            ---
            ---
            apiVersion: security.istio.io/v1beta1
            kind: AuthorizationPolicy
            metadata: {name: two}
            spec: {action: DENY, rules: [{}]}
            """)
        let result = PolicyLoader().read([dir.path])
        #expect(!result.hasErrors)
        #expect(result.policies.map(\.id.description) == ["ns1/one", "default/two"])
        let note = try #require(result.diagnostics.first)
        #expect(note.severity == .note)
        #expect(note.message == "skipped a `PeerAuthentication`: not an AuthorizationPolicy")
        #expect(note.span?.line == 9)
    }

    @Test func refusesDuplicatePolicies() throws {
        let dir = try TemporaryDirectory()
        let policy = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: dup, namespace: x}\n"
        try dir.write("a.yaml", policy)
        try dir.write("b.yaml", policy)
        let result = PolicyLoader().read([dir.path])
        let error = try #require(result.diagnostics.first)
        #expect(error.message == "duplicate policy `x/dup` (first defined at \(dir.path)/a.yaml:1:1)")
        #expect(error.span?.file == dir.path + "/b.yaml")
    }

    @Test func missingPathIsAnError() {
        let result = PolicyLoader().read(["/nonexistent/policies"])
        #expect(result.hasErrors)
        #expect(result.diagnostics.first?.message == "cannot read `/nonexistent/policies`: no such file or directory")
    }

    /// What Istio accepts with a warning loads, and the warning is reported with its place; the set decides.
    @Test func aWarnedPolicyLoadsWithTheRestOfTheSet() throws {
        let dir = try TemporaryDirectory()
        try dir.write("deny-deletes.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-deletes, namespace: shop}
            spec:
              selector: {}
              action: DENY
              rules:
              - to:
                - operation: {methods: [DELETE]}
            """)
        try dir.write("allow-get.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-reads, namespace: shop}
            spec: {rules: [{to: [{operation: {methods: [GET, DELETE]}}]}]}
            """)
        let (snapshot, result) = PolicyLoader().load([dir.path])
        #expect(!result.hasErrors)
        #expect(result.policies.count == 2)
        #expect(result.diagnostics.map(\.description) == [
            "\(dir.path)/deny-deletes.yaml:5:13: spec.selector: warning: workload selector specified without labels: it selects every workload",
            "\(dir.path)/deny-deletes.yaml:8:5: spec.rules[0]: warning: a DENY rule with only HTTP attributes denies all traffic to TCP ports under the policy's scope in Istio; set `ports` to say which ports it covers",
        ])
        let set = try #require(snapshot).authorization
        let delete = try AuthzRequest(attributes: [
            "destination.namespace": "shop", "destination.workload_labels": ["app": "cart"], "request.method": "DELETE",
        ])
        #expect(set.decide(delete).decision == .deny)
        #expect(set.decide(delete).decidedBy?.policy.description == "shop/deny-deletes")
        let get = try AuthzRequest(attributes: ["destination.namespace": "shop", "request.method": "GET"])
        #expect(set.decide(get).decision == .allow)
    }

    /// A warning never rescues a set with an error elsewhere: it is refused whole.
    @Test func anErrorBesideAWarningRefusesTheSet() throws {
        let dir = try TemporaryDirectory()
        try dir.write("warned.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: warned, namespace: shop}
            spec: {selector: {}, rules: [{}]}
            """)
        try dir.write("broken.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: broken, namespace: shop}
            spec: {action: DENY, rules: []}
            """)
        let (snapshot, result) = PolicyLoader().load([dir.path])
        #expect(snapshot == nil)
        #expect(result.policies.isEmpty)
        #expect(result.diagnostics.filter(\.isError).map(\.description) == [
            "\(dir.path)/broken.yaml:4:7: spec: DENY action without `rules` is meaningless as it will never be triggered; add an empty rule `{}` to trigger it for every request",
        ])
        #expect(result.diagnostics.filter { $0.severity == .warning }.count == 1)
    }

    @Test func loadsTheShippedPolicies() throws {
        let (snapshot, result) = PolicyLoader().load([Repository.path("policies")])
        #expect(!result.hasErrors, "\(result.diagnostics)")
        #expect(try #require(snapshot).authorization.policies.count >= 4)
    }
}
