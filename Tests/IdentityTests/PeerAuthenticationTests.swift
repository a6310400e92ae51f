import Documents
import Identity
import PolicyCore
import Testing

@Suite("PeerAuthentication documents")
struct PeerAuthenticationDecodingTests {
    static func decode(_ yaml: String) -> (policies: [PeerAuthentication], diagnostics: [Diagnostic]) {
        let parsed = YAMLDocuments.parse(yaml, file: "peer.yaml")
        let decoded = PeerAuthentication.decodeAll(parsed.documents)
        return (decoded.policies, parsed.diagnostics + decoded.diagnostics)
    }

    /// Errors as `line: path: message`.
    static func errors(_ yaml: String) -> [String] {
        decode(yaml).diagnostics.filter(\.isError).sortedByPlace().map { "\($0.span?.line ?? 0): \($0.path?.description ?? ""): \($0.message)" }
    }

    @Test func theSeedsPoliciesDecode() throws {
        let (policies, diagnostics) = Self.decode("""
            apiVersion: security.istio.io/v1beta1
            kind: PeerAuthentication
            metadata:
               name: "example-peer-policy"
               namespace: "foo"
            spec:
               selector:
                 matchLabels:
                   app: reviews
               mtls:
                 mode: STRICT
            ---
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: example-workload-policy, namespace: foo, creationTimestamp: "2024-05-01T10:00:00Z"}
            spec:
               selector:
                  matchLabels:
                    app: example-app
               portLevelMtls:
                 80:
                   mode: DISABLE
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: other, namespace: foo}
            spec: {}
            """)
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        #expect(policies.count == 2)
        let strict = try #require(policies.first)
        #expect(strict.id.description == "foo/example-peer-policy")
        #expect(strict.selector == ["app": "reviews"])
        #expect(strict.mode == .strict)
        #expect(strict.portLevelModes.isEmpty)
        #expect(strict.creationTimestamp == nil)
        let ported = try #require(policies.last)
        #expect(ported.mode == .unset)
        #expect(ported.portLevelModes == [80: .disable])
        #expect(ported.creationTimestamp == 1_714_557_600)
        #expect(ported.span?.line == 13)
    }

    @Test func everyModeAndEmptyForms() {
        for mode in PeerAuthentication.Mode.allCases {
            let (policies, diagnostics) = Self.decode("""
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: p, namespace: ns}
                spec: {mtls: {mode: \(mode.rawValue)}}
                """)
            #expect(!diagnostics.hasErrors)
            #expect(policies.first?.mode == mode)
        }
        let (policies, diagnostics) = Self.decode("""
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: p, namespace: ns}
            spec: {mtls: {}}
            """)
        #expect(!diagnostics.hasErrors)
        #expect(policies.first?.mode == .unset)
    }

    @Test func validationErrorsNameTheFieldAndLine() {
        #expect(Self.errors("""
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: p, namespace: ns}
            spec:
              mtls: {mode: strict}
            """) == ["5: spec.mtls.mode: unsupported mode `strict`: must be one of `UNSET`, `DISABLE`, `PERMISSIVE`, `STRICT`"])
        #expect(Self.errors("""
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: p, namespace: ns}
            spec:
              mtls: {mode: STRICT}
              portLevelMtls:
                8080: {mode: DISABLE}
            """) == [
            "7: spec.portLevelMtls: mesh/namespace peer authentication cannot have port level mTLS: portLevelMtls requires a selector",
        ])
        #expect(Self.errors("""
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: p, namespace: ns}
            spec:
              selector: {matchLabels: {app: a}}
              portLevelMtls:
                0: {mode: DISABLE}
                http: {mode: STRICT}
                70000: {mode: STRICT}
            """) == [
            "7: spec.portLevelMtls.0: port `0` must be in range 1..65535",
            "8: spec.portLevelMtls.http: port `http` must be in range 1..65535",
            "9: spec.portLevelMtls.70000: port `70000` must be in range 1..65535",
        ])
        #expect(Self.errors("""
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: p, namespace: ns}
            spec:
              selector: {matchLabels: {app: a}}
              portLevelMtls: {}
            """) == ["6: spec.portLevelMtls: port level mTLS, if defined, must have at least one element"])
        #expect(Self.errors("""
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: p, namespace: ns}
            spec:
              mtls: {mode: STRICT, port: 1}
              selectr: {}
            """) == [
            "5: spec.mtls.port: unknown field `port`",
            "6: spec.selectr: unknown field `selectr`; did you mean `selector`?",
        ])
        #expect(Self.errors("""
            apiVersion: security.istio.io/v1alpha1
            kind: PeerAuthentication
            metadata: {name: p, namespace: ns, creationTimestamp: yesterday}
            spec: {}
            """) == [
            "1: apiVersion: unsupported apiVersion `security.istio.io/v1alpha1` for PeerAuthentication; use `security.istio.io/v1` or `security.istio.io/v1beta1`",
            "3: metadata.creationTimestamp: invalid creationTimestamp `yesterday`: expected RFC 3339, as `2024-05-01T10:00:00Z`",
        ])
    }

    @Test func aNameDefinedTwiceIsAnError() {
        let errors = Self.errors("""
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: p, namespace: ns}
            ---
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: p, namespace: ns}
            """)
        #expect(errors == ["5: metadata.name: duplicate PeerAuthentication `ns/p` (first defined at peer.yaml:1:1)"])
    }

    @Test func anEmptySelectorIsAWarningOnly() {
        let (policies, diagnostics) = Self.decode("""
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: p, namespace: ns}
            spec: {selector: {}, mtls: {mode: STRICT}}
            """)
        #expect(!diagnostics.hasErrors)
        #expect(diagnostics.contains { $0.severity == .warning && $0.path?.description == "spec.selector" })
        #expect(policies.first?.hasWorkloadSelector == false)
    }
}

@Suite("PeerAuthentication precedence")
struct PeerAuthenticationSetTests {
    static func policy(
        _ namespace: String, _ name: String, _ mode: PeerAuthentication.Mode, selector: [String: String]? = nil,
        ports: [Int: PeerAuthentication.Mode] = [:], created: Int64? = nil
    ) -> PeerAuthentication {
        PeerAuthentication(
            id: .init(namespace: namespace, name: name), selector: selector, mode: mode, portLevelModes: ports,
            creationTimestamp: created)
    }

    static let details = ["app": "details", "version": "v1"]

    static func resolve(_ policies: [PeerAuthentication], labels: [String: String] = details, ports: Set<Int> = [9080])
        -> PeerAuthenticationSet.Resolution
    {
        PeerAuthenticationSet(policies: policies).resolve(namespace: "default", labels: labels, declaredPorts: ports)
    }

    @Test func noPolicyMeansPermissive() {
        let resolution = Self.resolve([])
        #expect(resolution.mode == .permissive)
        #expect(resolution.deciding == nil)
    }

    @Test func theNarrowestScopeThatSetsAModeDecides() {
        let mesh = Self.policy("istio-system", "mesh", .strict)
        let namespace = Self.policy("default", "ns", .permissive)
        let workload = Self.policy("default", "details", .disable, selector: ["app": "details"])
        #expect(Self.resolve([mesh]).mode == .strict)
        #expect(Self.resolve([mesh, namespace]).mode == .permissive)
        #expect(Self.resolve([mesh, namespace, workload]).mode == .disable)
        #expect(Self.resolve([mesh, namespace, workload]).deciding?.description == "default/details")
        // Another namespace's policies do not apply.
        #expect(Self.resolve([Self.policy("other", "ns", .disable)]).mode == .permissive)
        // A selector that does not match leaves the namespace's mode.
        let reviews = Self.policy("default", "reviews", .disable, selector: ["app": "reviews"])
        #expect(Self.resolve([namespace, reviews]).mode == .permissive)
    }

    @Test func unsetInheritsFromTheScopeAbove() {
        #expect(Self.resolve([Self.policy("istio-system", "mesh", .unset)]).mode == .permissive)
        let mesh = Self.policy("istio-system", "mesh", .strict)
        #expect(Self.resolve([mesh, Self.policy("default", "ns", .unset)]).mode == .strict)
        let workload = Self.policy("default", "w", .unset, selector: ["app": "details"])
        #expect(Self.resolve([mesh, Self.policy("default", "ns", .disable), workload]).mode == .disable)
    }

    @Test func ofSeveralMeshOrNamespacePoliciesTheNewerAreIgnored() {
        let older = Self.policy("default", "b-older", .strict, created: 100)
        let newer = Self.policy("default", "a-newer", .disable, created: 200)
        let resolution = Self.resolve([newer, older])
        #expect(resolution.mode == .strict)
        #expect(resolution.namespace?.name == "b-older")
        #expect(resolution.warnings.map(\.message) == [
            "PeerAuthentication `default/a-newer` is ignored: `default/b-older` is an older namespace-wide policy of `default`",
        ])
        let meshOld = Self.policy("istio-system", "z", .disable, created: 1)
        let meshNew = Self.policy("istio-system", "a", .strict, created: 2)
        #expect(Self.resolve([meshNew, meshOld]).mode == .disable)
        #expect(PeerAuthenticationSet(policies: [meshNew, meshOld]).warnings.map(\.message) == [
            "PeerAuthentication `istio-system/a` is ignored: `istio-system/z` is an older mesh-wide policy",
        ])
    }

    @Test func ofSeveralWorkloadPoliciesTheOldestWinsThenTheName() {
        let oldest = Self.policy("default", "zeta", .strict, selector: ["app": "details"], created: 10)
        let newer = Self.policy("default", "alpha", .disable, selector: ["version": "v1"], created: 20)
        #expect(Self.resolve([newer, oldest]).mode == .strict)
        #expect(Self.resolve([newer, oldest]).workload?.name == "zeta")
        // Same time: the name decides.
        let b = Self.policy("default", "b", .disable, selector: ["app": "details"], created: 10)
        let a = Self.policy("default", "a", .strict, selector: ["version": "v1"], created: 10)
        #expect(Self.resolve([b, a]).workload?.name == "a")
        // No timestamp counts as the oldest, as Kubernetes' zero time does.
        let undated = Self.policy("default", "undated", .permissive, selector: ["app": "details"])
        #expect(Self.resolve([oldest, undated]).mode == .permissive)
    }

    @Test func portLevelModesApplyToDeclaredPortsOnly() {
        let namespace = Self.policy("default", "ns", .strict)
        let workload = Self.policy(
            "default", "details", .unset, selector: ["app": "details"], ports: [9080: .disable, 9081: .unset, 8000: .permissive])
        let resolution = Self.resolve([namespace, workload], ports: [9080, 9081])
        #expect(resolution.mode == .strict)
        #expect(resolution.mode(forPort: 9080) == .disable)
        #expect(resolution.mode(forPort: 9081) == .strict)  // UNSET inherits the workload's mode
        #expect(resolution.mode(forPort: 8000) == .strict)  // not declared: ignored
        #expect(resolution.warnings.map(\.message) == [
            "portLevelMtls of PeerAuthentication `default/details` for port 8000 is ignored: the workload declares ports 9080, 9081",
        ])
        #expect(resolution.warnings.first?.severity == .warning)
    }

    @Test func aSelectorInTheRootNamespaceIsIgnored() {
        let rootSelector = Self.policy("istio-system", "root-workload", .disable, selector: ["app": "details"])
        #expect(Self.resolve([rootSelector]).mode == .permissive)
        #expect(PeerAuthenticationSet(policies: [rootSelector]).warnings.count == 1)
    }
}
