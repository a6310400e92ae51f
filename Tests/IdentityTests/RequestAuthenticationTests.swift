import Documents
import Foundation
import Identity
import JOSE
import PolicyCore
import Testing
import WardenTesting

@Suite("RequestAuthentication documents")
struct RequestAuthenticationTests {
    static func decode(_ yaml: String) -> (policies: [RequestAuthentication], diagnostics: [Diagnostic]) {
        let parsed = YAMLDocuments.parse(yaml, file: "test.yaml")
        let decoded = RequestAuthentication.decodeAll(parsed.documents)
        return (decoded.policies, parsed.diagnostics + decoded.diagnostics)
    }

    /// The errors (not warnings) of a document, as `path: message`.
    static func errors(_ yaml: String) -> [String] {
        decode(yaml).diagnostics.filter(\.isError).map { "\($0.path?.description ?? ""): \($0.message)" }
    }

    static func rule(_ body: String) -> String {
        """
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: ra, namespace: foo}
        spec:
          jwtRules:
          - \(body)
        """
    }

    @Test func theSeedPolicyFileDecodes() throws {
        let text = try String(contentsOfFile: Repository.path("policies/details-require-jwt.yaml"), encoding: .utf8)
        let (policies, diagnostics) = Self.decode(text)
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        let policy = try #require(policies.first)
        #expect(policies.count == 1)  // the AuthorizationPolicy beside it is skipped
        #expect(policy.id.description == "default/details-jwt")
        #expect(policy.selector == ["app": "details"])
        let rule = try #require(policy.jwtRules.first)
        #expect(rule.issuer == "testing@secure.istio.io")
        guard case .inline(let keys) = rule.keys else { Issue.record("expected inline keys"); return }
        #expect(keys.keys.first?.keyID == SeedToken.keyID)
        #expect(rule.locations == [.header(name: "authorization", prefix: "Bearer "), .queryParameter("access_token")])
        #expect(rule.forwardOriginalToken == false)
        #expect(rule.timeout == .seconds(5))
        #expect(rule.span?.line == 15)
    }

    @Test func everyFieldDecodes() throws {
        let (policies, diagnostics) = Self.decode("""
            apiVersion: security.istio.io/v1beta1
            kind: RequestAuthentication
            metadata: {name: ra, namespace: foo}
            spec:
              selector: {matchLabels: {app: web}}
              jwtRules:
              - issuer: https://issuer.example.com
                audiences: [web, api]
                jwksUri: https://issuer.example.com/.well-known/jwks.json
                fromHeaders: [{name: X-Token, prefix: "Token "}, {name: x-raw}]
                fromParams: [tok]
                fromCookies: [session]
                outputPayloadToHeader: x-jwt-payload
                outputClaimToHeaders: [{header: x-sub, claim: sub}, {header: x_group, claim: org.group}]
                forwardOriginalToken: true
                timeout: 1500ms
                spaceDelimitedClaims: [roles]
            """)
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        let rule = try #require(policies.first?.jwtRules.first)
        #expect(rule.audiences == ["web", "api"])
        guard case .remote(.uri(let uri)) = rule.keys else { Issue.record("expected a jwksUri"); return }
        #expect(uri == "https://issuer.example.com/.well-known/jwks.json")
        #expect(rule.locations == [
            .header(name: "x-token", prefix: "Token "), .header(name: "x-raw", prefix: ""), .queryParameter("tok"),
            .cookie("session"),
        ])
        #expect(rule.outputPayloadToHeader == "x-jwt-payload")
        #expect(rule.outputClaimToHeaders == [.init(header: "x-sub", claim: "sub"), .init(header: "x_group", claim: "org.group")])
        #expect(rule.forwardOriginalToken)
        #expect(rule.timeout == .milliseconds(1500))
        #expect(rule.spaceDelimitedClaims == ["roles"])
        #expect(policies.first?.selector == ["app": "web"])
    }

    @Test func withoutKeysTheIssuerIsDiscovered() throws {
        let (policies, _) = Self.decode(Self.rule("issuer: https://accounts.example.com"))
        guard case .remote(.discovery(let issuer))? = policies.first?.jwtRules.first?.keys else {
            Issue.record("expected OpenID discovery")
            return
        }
        #expect(issuer == "https://accounts.example.com")
    }

    @Test func istioctlValidations() {
        #expect(Self.errors(Self.rule("audiences: [a]")) == ["spec.jwtRules[0]: issuer or jwksUri must be non-empty string"])
        #expect(Self.errors(Self.rule("{issuer: a, audiences: [\"\"]}")) == ["spec.jwtRules[0].audiences[0]: audience must be non-empty string"])
        #expect(Self.errors(Self.rule("{issuer: a, jwksUri: \"ftp://x/jwks\"}")) == [
            "spec.jwtRules[0].jwksUri: invalid jwksUri `ftp://x/jwks`: URI scheme `ftp` is not supported",
        ])
        #expect(Self.errors(Self.rule("{issuer: a, jwksUri: \"https://:443/x\"}")).first?.contains("missing host") == true)
        #expect(Self.errors(Self.rule("{issuer: a, jwks: \"{not json\"}")).first?.hasPrefix("spec.jwtRules[0].jwks: jwks parse error") == true)
        #expect(Self.errors(Self.rule("{issuer: a, fromHeaders: [{prefix: x}]}")) == [
            "spec.jwtRules[0].fromHeaders[0].name: location header name must be non-empty string",
        ])
        #expect(Self.errors(Self.rule("{issuer: a, fromParams: [\"\"]}")) == ["spec.jwtRules[0].fromParams[0]: location query must be non-empty string"])
        #expect(Self.errors(Self.rule("{issuer: a, fromCookies: [\"\"]}")) == ["spec.jwtRules[0].fromCookies[0]: cookie name must be non-empty string"])
        #expect(Self.errors(Self.rule("{issuer: a, outputClaimToHeaders: [{header: \"x:y\", claim: sub}]}")) == [
            "spec.jwtRules[0].outputClaimToHeaders[0].header: header name `x:y` is not a valid header name",
        ])
        #expect(Self.errors(Self.rule("{issuer: a, outputClaimToHeaders: [{header: x}]}")) == [
            "spec.jwtRules[0].outputClaimToHeaders[0]: outputClaimToHeaders header and claim value must be non-empty string",
        ])
        #expect(Self.errors(Self.rule("{issuer: a, timeout: soon}")) == ["spec.jwtRules[0].timeout: invalid duration `soon`; write it like `5s` or `500ms`"])
        #expect(Self.errors(Self.rule("{issuer: a, timeout: 0s}")) == ["spec.jwtRules[0].timeout: duration must be greater than 1ms"])
        #expect(Self.errors(Self.rule("{issuer: a, timeout: 1500us}")) == ["spec.jwtRules[0].timeout: only durations to ms precision are supported"])
    }

    @Test func crdRules() {
        let both = Self.rule("{issuer: a, jwksUri: \"https://x/jwks\", jwks: '\(SeedToken.jwks.replacingOccurrences(of: "\n", with: ""))'}")
        #expect(Self.errors(both) == ["spec.jwtRules[0].jwks: only one of jwks or jwksUri can be set"])
        #expect(Self.errors("""
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: ra}
            spec:
              selector: {matchLabels: {app: a}}
              targetRefs: [{kind: Gateway, name: g}]
            """) == ["spec: only one of targetRefs or selector can be set"])
        let attached = Self.decode("""
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: ra}
            spec:
              targetRefs: [{kind: Gateway, name: g}]
              jwtRules: [{issuer: a}]
            """)
        #expect(attached.policies.isEmpty && attached.diagnostics.map(\.severity) == [.warning], "validated, not applied")
        #expect(attached.diagnostics.first?.code == "not_enforced")
        let claims = (0...64).map { "c\($0)" }.joined(separator: ", ")
        #expect(Self.errors(Self.rule("{issuer: a, spaceDelimitedClaims: [\(claims)]}")) == [
            "spec.jwtRules[0].spaceDelimitedClaims: may not have more than 64 claims",
        ])
    }

    /// Istio refuses the dry-run annotation on every kind but AuthorizationPolicy, and its internal annotations on all.
    @Test func annotationsIstioRefuses() {
        #expect(Self.errors("""
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: ra, annotations: {istio.io/dry-run: "true", internal.istio.io/parents: x}}
            spec: {jwtRules: [{issuer: a}]}
            """) == [
                "metadata.annotations.internal.istio.io/parents: the annotation `internal.istio.io/parents` is internal to Istio and may not be set",
                "metadata.annotations.istio.io/dry-run: the annotation `istio.io/dry-run` is only supported on AuthorizationPolicy; remove it",
            ])
    }

    @Test func strictDecoding() {
        #expect(Self.errors(Self.rule("{issuer: a, audience: [x]}")) == [
            "spec.jwtRules[0].audience: unknown field `audience`; did you mean `audiences`?",
        ])
        #expect(Self.errors(Self.rule("{issuer: a, forwardOriginalToken: \"yes\"}")) == [
            "spec.jwtRules[0].forwardOriginalToken: expected a boolean, found a string",
        ])
        #expect(Self.errors(Self.rule("{issuer: 42}")).contains("spec.jwtRules[0].issuer: expected a string, found an integer; quote it: \"42\""))
        #expect(Self.errors("""
            apiVersion: security.istio.io/v2
            kind: RequestAuthentication
            metadata: {name: Bad_Name}
            spec: {jwtRules: [{issuer: a}], selector: {matchLabels: {"app": "*"}}}
            """) == [
                "apiVersion: unsupported apiVersion `security.istio.io/v2` for RequestAuthentication; use `security.istio.io/v1` or `security.istio.io/v1beta1`",
                "metadata.name: invalid name `Bad_Name`: must be a lowercase DNS-1123 subdomain",
                "spec.selector.matchLabels.app: wildcard is not supported in selector: `app=*`",
            ])
    }

    /// Istio accepts a JWKS it can parse, even one without a key Envoy can use: the rule loads, with a warning,
    /// and refuses every token of its issuer.
    @Test func aKeySetWithoutUsableKeysIsAWarning() throws {
        let (policies, diagnostics) = Self.decode(Self.rule("{issuer: a, jwks: '{\"keys\":[]}'}"))
        #expect(!diagnostics.hasErrors)
        #expect(diagnostics.map(\.description) == [
            "test.yaml:6:23: spec.jwtRules[0].jwks: warning: jwks has no usable key: every token of this issuer is refused",
        ])
        guard case .inline(let keys)? = policies.first?.jwtRules.first?.keys else {
            Issue.record("expected the inline key set")
            return
        }
        #expect(keys.keys.isEmpty)
    }

    @Test func aHeaderNameNoRequestCarriesIsAWarning() throws {
        let (policies, diagnostics) = Self.decode(Self.rule("{issuer: a, fromHeaders: [{name: \"x jwt\"}, {name: x-jwt}]}"))
        #expect(policies.first?.jwtRules.first?.fromHeaders.map(\.name) == ["x jwt", "x-jwt"])
        #expect(diagnostics.map(\.message) == [
            "header name `x jwt` is not a valid header name: no request carries it, so no token is read from it",
        ])
        #expect(diagnostics.first?.severity == .warning)
    }

    @Test func warningsDoNotRefuseThePolicy() throws {
        let jwks = "{\"keys\":[\(JWTFactory.SigningKey.rsa(bits: 1024, keyID: "old").publicJWK()),\(JWTFactory.SigningKey.p256(keyID: "new").publicJWK())]}"
        let (policies, diagnostics) = Self.decode(Self.rule("{issuer: a, jwks: '\(jwks)'}"))
        #expect(policies.count == 1)
        #expect(diagnostics.filter { $0.severity == .warning }.map(\.message) == [
            "jwks key `old` at index 0 is not used: rsa key is 1024 bits; at least 2048 are required",
        ])
    }

    @Test func duplicatePoliciesAreRefused() {
        let one = Self.rule("issuer: a")
        #expect(Self.errors(one + "\n---\n" + one) == ["metadata.name: duplicate RequestAuthentication `foo/ra` (first defined at test.yaml:1:1)"])
    }

    // MARK: - Scoping and merging

    static let mesh = """
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: mesh, namespace: istio-system}
        spec: {jwtRules: [{issuer: z-mesh, jwksUri: "https://mesh/jwks"}]}
        ---
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: mesh-web, namespace: istio-system}
        spec: {selector: {matchLabels: {app: web}}, jwtRules: [{issuer: m-mesh-web, jwksUri: "https://mesh/jwks"}]}
        ---
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: ns, namespace: foo}
        spec: {jwtRules: [{issuer: b-ns, jwksUri: "https://ns/jwks"}, {issuer: a-ns, jwksUri: "https://ns/jwks"}]}
        ---
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: web, namespace: foo}
        spec: {selector: {matchLabels: {app: web}}, jwtRules: [{issuer: c-web, jwksUri: "https://web/jwks"}]}
        """

    @Test func scopingAndMerging() throws {
        let (policies, diagnostics) = Self.decode(Self.mesh)
        #expect(!diagnostics.hasErrors)
        let set = RequestAuthenticationSet(policies: policies, rootNamespace: "istio-system")
        #expect(set.rules(forNamespace: "foo", labels: ["app": "web"]).map(\.issuer) == ["a-ns", "b-ns", "c-web", "m-mesh-web", "z-mesh"])
        #expect(set.rules(forNamespace: "foo", labels: ["app": "db"]).map(\.issuer) == ["a-ns", "b-ns", "z-mesh"])
        #expect(set.rules(forNamespace: "bar", labels: ["app": "web"]).map(\.issuer) == ["m-mesh-web", "z-mesh"])
        #expect(set.rules(forNamespace: "bar", labels: [:]).map(\.issuer) == ["z-mesh"])
        let authenticators = WorkloadAuthenticators(policies: set)
        let first = try #require(authenticators.authenticator(namespace: "foo", labels: ["app": "web", "v": "1"]))
        let second = try #require(authenticators.authenticator(namespace: "foo", labels: ["app": "web", "v": "2"]))
        #expect(first === second)
        #expect(authenticators.remoteKeyLocations.count == 3)
        let empty = WorkloadAuthenticators(policies: RequestAuthenticationSet(policies: []))
        #expect(empty.authenticator(namespace: "foo", labels: [:]) == nil)
    }

    @Test func durations() {
        #expect(parseDuration("5s") == .seconds(5))
        #expect(parseDuration("1.5s") == .milliseconds(1500))
        #expect(parseDuration("1m30s") == .seconds(90))
        #expect(parseDuration("2h") == .seconds(7200))
        #expect(parseDuration("250ms") == .milliseconds(250))
        #expect(parseDuration("5") == nil)
        #expect(parseDuration("") == nil)
        #expect(parseDuration("-1s") == nil)
        #expect(parseDuration("1d") == nil)
    }

    @Test func httpURLs() throws {
        let url = try HTTPURL.parse("https://Keys.Example.com:8443/a/jwks?x=1#frag").get()
        #expect(url.isSecure && url.host == "keys.example.com" && url.port == 8443 && url.target == "/a/jwks?x=1")
        #expect(url.authority == "keys.example.com:8443")
        let plain = try HTTPURL.parse("http://127.0.0.1").get()
        #expect(plain.port == 80 && plain.target == "/" && plain.authority == "127.0.0.1")
        let v6 = try HTTPURL.parse("http://[::1]:9000/k").get()
        #expect(v6.host == "::1" && v6.port == 9000 && v6.authority == "[::1]:9000")
        for bad in ["keys.example.com/jwks", "https://", "https://user:pw@host/", "https://host:99999/", "https://host/a b", "file:///etc/passwd"] {
            #expect(throws: HTTPURL.ParseError.self, "\(bad)") { try HTTPURL.parse(bad).get() }
        }
    }
}
