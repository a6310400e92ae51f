import JOSE
import PolicyCore

extension RequestAuthentication {
    public static let kind = "RequestAuthentication"
    public static let apiVersions = ["security.istio.io/v1", "security.istio.io/v1beta1"]

    /// Decodes one RequestAuthentication document strictly (unknown fields and wrong types are errors) and
    /// validates it as `istioctl validate` and the CRD's own rules do, reporting every problem to `decoder` with its
    /// field path and place: what Istio rejects as an error, what it accepts as a warning. Returns nil when the
    /// document has errors (warnings alone do not stop it).
    ///
    /// `defaultNamespace` stands in for a missing `metadata.namespace`, as `kubectl apply` uses the current one.
    public static func decode(
        _ node: DocumentNode,
        decoder: DocumentDecoder,
        defaultNamespace: String = "default"
    ) -> RequestAuthentication? {
        let errorsBefore = decoder.diagnostics.filter(\.isError).count
        let reader = RequestAuthenticationReader(decoder: decoder)
        let policy = reader.policy(node, defaultNamespace: defaultNamespace)
        return decoder.diagnostics.filter(\.isError).count == errorsBefore ? policy : nil
    }

    /// The RequestAuthentications among parsed documents (a `kind: List` is opened); other kinds are skipped
    /// silently, so one file can hold a RequestAuthentication beside the AuthorizationPolicies that use it.
    public static func decodeAll(
        _ documents: [DocumentNode], defaultNamespace: String = "default"
    ) -> (policies: [RequestAuthentication], diagnostics: [Diagnostic]) {
        decodeEvery(documents, defaultNamespace: defaultNamespace)
    }
}

/// The CRD's bounds.
private let maximumJWTRules = 4096
private let maximumSpaceDelimitedClaims = 64

private let jwtRuleFields = [
    "issuer", "audiences", "jwksUri", "jwks_uri", "jwks", "fromHeaders", "fromParams", "fromCookies",
    "outputPayloadToHeader", "forwardOriginalToken", "outputClaimToHeaders", "timeout", "spaceDelimitedClaims",
]

private struct RequestAuthenticationReader {
    let decoder: DocumentDecoder

    func policy(_ node: DocumentNode, defaultNamespace: String) -> RequestAuthentication? {
        guard
            let resource = decoder.istioResource(
                node, kind: RequestAuthentication.kind, apiVersions: RequestAuthentication.apiVersions,
                specFields: ["selector", "targetRef", "targetRefs", "jwtRules"], defaultNamespace: defaultNamespace)
        else { return nil }
        let (name, namespace, spec) = (resource.name, resource.namespace, resource.spec)
        if spec.has("selector") && (spec.has("targetRef") || spec.has("targetRefs")) {
            decoder.invalid("only one of targetRefs or selector can be set", at: resource.specNode, spec.path)
        }
        let attachedByTarget = decoder.targetRefsNotEnforced(spec)
        let selector = spec["selector"].flatMap { decoder.workloadSelector($0, at: spec.path("selector")) }
        let id = name.map { RequestAuthentication.ID(namespace: namespace, name: $0) }

        var rules: [JWTRule] = []
        if let rulesNode = spec["jwtRules"], let items = decoder.sequence(rulesNode, at: spec.path("jwtRules")) {
            if items.count > maximumJWTRules {
                decoder.invalid("may not have more than \(maximumJWTRules) rules", at: rulesNode, spec.path("jwtRules"))
            }
            rules = items.compactMap { jwtRule($0.node, at: $0.path, policy: id) }
        }
        guard let id, !attachedByTarget else { return nil }
        return RequestAuthentication(id: id, selector: selector, jwtRules: rules, span: node.span)
    }

    func jwtRule(_ node: DocumentNode, at path: FieldPath, policy: RequestAuthentication.ID?) -> JWTRule? {
        guard let fields = decoder.fields(node, at: path, known: jwtRuleFields) else { return nil }
        let errorsBefore = decoder.diagnostics.filter(\.isError).count
        func string(_ key: String) -> Located<String>? {
            fields[key].flatMap { decoder.string($0, at: fields.path(key)) }
        }
        func strings(_ key: String, empty message: String) -> [String] {
            guard let node = fields[key], let values = decoder.strings(node, at: fields.path(key)) else { return [] }
            for value in values where value.value.isEmpty { decoder.invalid(message, at: value) }
            return values.map(\.value)
        }

        let issuer = string("issuer")
        if let issuer, issuer.value.isEmpty { decoder.invalid("`issuer` must not be empty", at: issuer) }
        let audiences = strings("audiences", empty: "audience must be non-empty string")

        var jwksURI = string("jwksUri")
        if let alternate = string("jwks_uri") {
            if jwksURI != nil {
                decoder.invalid("set `jwksUri` or `jwks_uri`, not both", at: alternate)
            } else {
                jwksURI = alternate
            }
        }
        let jwksText = string("jwks")
        if (issuer?.value ?? "").isEmpty && (jwksURI?.value ?? "").isEmpty {
            decoder.report(
                Diagnostic.Code.missingField, "issuer or jwksUri must be non-empty string", span: node.span, path: path)
        }
        if let jwksURI, let jwksText, !jwksURI.value.isEmpty, !jwksText.value.isEmpty {
            decoder.invalid("only one of jwks or jwksUri can be set", at: jwksText)
        }
        if let jwksURI { validateJWKSURI(jwksURI) }
        var inlineKeys: JWKSet?
        if let jwksText, !jwksText.value.isEmpty { inlineKeys = readJWKS(jwksText) }

        var headers: [JWTRule.HeaderLocation] = []
        if let headersNode = fields["fromHeaders"], let items = decoder.sequence(headersNode, at: fields.path("fromHeaders")) {
            for item in items {
                guard let header = decoder.fields(item.node, at: item.path, known: ["name", "prefix"]) else { continue }
                let name = header["name"].flatMap { decoder.string($0, at: header.path("name")) }
                let prefix = header["prefix"].flatMap { decoder.string($0, at: header.path("prefix")) }
                guard let name, !name.value.isEmpty else {
                    decoder.report(
                        Diagnostic.Code.missingField, "location header name must be non-empty string",
                        span: item.node.span, path: item.path / "name")
                    continue
                }
                if !isHeaderName(name.value) {
                    // Istio and Envoy take any name here; no request can carry this one.
                    decoder.warn(
                        Diagnostic.Code.invalidValue,
                        "header name `\(name.value)` is not a valid header name: no request carries it, so no token is read from it",
                        at: name)
                }
                headers.append(JWTRule.HeaderLocation(name: name.value, prefix: prefix?.value ?? ""))
            }
        }
        let params = strings("fromParams", empty: "location query must be non-empty string")
        let cookies = strings("fromCookies", empty: "cookie name must be non-empty string")

        var payloadHeader: String?
        if let header = string("outputPayloadToHeader"), !header.value.isEmpty {
            if isHeaderName(header.value) {
                payloadHeader = header.value
            } else {
                decoder.invalid("header name `\(header.value)` is not a valid header name", at: header)
            }
        }
        var claimHeaders: [JWTRule.ClaimToHeader] = []
        var claimHeaderNames: Set<String> = []
        if let claimsNode = fields["outputClaimToHeaders"],
            let items = decoder.sequence(claimsNode, at: fields.path("outputClaimToHeaders"))
        {
            for item in items {
                guard let entry = decoder.fields(item.node, at: item.path, known: ["header", "claim"]) else { continue }
                let header = entry["header"].flatMap { decoder.string($0, at: entry.path("header")) }
                let claim = entry["claim"].flatMap { decoder.string($0, at: entry.path("claim")) }
                guard let header, let claim, !header.value.isEmpty, !claim.value.isEmpty else {
                    decoder.report(
                        Diagnostic.Code.missingField, "outputClaimToHeaders header and claim value must be non-empty string",
                        span: item.node.span, path: item.path)
                    continue
                }
                guard isStrictHeaderName(header.value) else {
                    decoder.invalid("header name `\(header.value)` is not a valid header name", at: header)
                    continue
                }
                if !claimHeaderNames.insert(Headers.normalize(header.value)).inserted {
                    decoder.warn(
                        Diagnostic.Code.invalidValue, "header `\(header.value)` is already the target of another claim", at: header)
                }
                claimHeaders.append(JWTRule.ClaimToHeader(header: header.value, claim: claim.value))
            }
        }
        let forward = fields["forwardOriginalToken"].flatMap { decoder.bool($0, at: fields.path("forwardOriginalToken")) }
        var timeout = JWTRule.defaultTimeout
        if let text = string("timeout") {
            switch parseDuration(text.value) {
            case nil: decoder.invalid("invalid duration `\(text.value)`; write it like `5s` or `500ms`", at: text)
            case let duration? where duration < .milliseconds(1): decoder.invalid("duration must be greater than 1ms", at: text)
            case let duration? where duration.isSubMillisecond: decoder.invalid("only durations to ms precision are supported", at: text)
            case let duration?: timeout = duration
            }
        }
        let spaceDelimited = strings("spaceDelimitedClaims", empty: "claim name must be non-empty string")
        if spaceDelimited.count > maximumSpaceDelimitedClaims, let node = fields["spaceDelimitedClaims"] {
            decoder.invalid(
                "may not have more than \(maximumSpaceDelimitedClaims) claims", at: node, fields.path("spaceDelimitedClaims"))
        }

        guard decoder.diagnostics.filter(\.isError).count == errorsBefore else { return nil }
        let issuerName = issuer?.value ?? ""
        let keys: JWTRule.Keys
        if let inlineKeys {
            keys = .inline(inlineKeys)
        } else if let uri = jwksURI?.value, !uri.isEmpty {
            keys = .remote(.uri(uri))
        } else {
            keys = .remote(.discovery(issuer: issuerName))
        }
        return JWTRule(
            issuer: issuerName, audiences: audiences, keys: keys, fromHeaders: headers, fromParams: params,
            fromCookies: cookies, outputPayloadToHeader: payloadHeader, outputClaimToHeaders: claimHeaders,
            forwardOriginalToken: forward ?? false, timeout: timeout, spaceDelimitedClaims: spaceDelimited,
            policy: policy, span: node.span)
    }

    func validateJWKSURI(_ uri: Located<String>) {
        guard !uri.value.isEmpty else { return }
        guard uri.value.utf8.count <= 2048 else {
            decoder.invalid("jwksUri is longer than 2048 characters", at: uri)
            return
        }
        switch HTTPURL.parse(uri.value) {
        case .success: break
        case .failure(let problem): decoder.invalid("invalid jwksUri `\(uri.value)`: \(problem.message)", at: uri)
        }
    }

    func readJWKS(_ text: Located<String>) -> JWKSet? {
        let keys: JWKSet
        do {
            keys = try JWKSet.parse(text.value)
        } catch {
            decoder.report(error.code.rawValue, "jwks parse error: \(error.message)", span: text.span, path: text.path)
            return nil
        }
        for rejected in keys.rejected {
            let name = rejected.keyID.map { " `\($0)`" } ?? ""
            decoder.warn(
                rejected.error.code.rawValue, "jwks key\(name) at index \(rejected.index) is not used: \(rejected.error.message)",
                at: text)
        }
        for (index, key) in keys.keys.enumerated() where key.hasPrivateMembers {
            decoder.warn(
                Diagnostic.Code.invalidValue,
                "jwks key at index \(index) contains private key material; only public keys are used for verification", at: text)
        }
        if keys.keys.isEmpty {
            // Istio accepts a key set it can parse, even an empty one; Envoy then refuses every token of the issuer.
            decoder.warn(JOSEError.Code.badKeySet.rawValue, "jwks has no usable key: every token of this issuer is refused", at: text)
        }
        return keys
    }
}

/// An RFC 7230 header name (`token`).
func isHeaderName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// The stricter header names Istio allows for claim headers: letters, digits, `-` and `_`.
func isStrictHeaderName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }
}


extension Duration {
    var isSubMillisecond: Bool { components.attoseconds % 1_000_000_000_000_000 != 0 }
}
