import Foundation
import Identity
import JOSE
import PolicyCore

/// Runs `conformance/jwt/*.yaml`: JWT rules (or whole RequestAuthentication documents), a fixed verification time,
/// a request carrying a pre-minted token, and the expected authentication outcome — or the expected validation
/// errors of the documents.
///
/// ```yaml
/// at: 1750000000                   # seconds since the epoch or RFC 3339; a case may override it
/// keys:                            # the private JWKs the file's tokens were signed with, by name
///   ec-256: {kty: EC, crv: P-256, x: ..., y: ..., d: ...}
/// cases:
/// - note: a unique name
///   rule: {issuer: ..., jwks: [ec-256], audiences: [...], fromHeaders: [...], ...}   # one jwtRules entry, or
///   rules: [{...}, {...}]                                                            # several, or
///   policies: [{apiVersion: security.istio.io/v1, kind: RequestAuthentication, ...}]
///   workload: {namespace: default, labels: {app: details}}   # with policies: the rules that apply to it
///   options: {clock_skew: 60, invalid_token_status: 401, audience_failure_status: 403, check_issued_at: false,
///             max_token_size: 16384}
///   token: eyJ...                  # sent as `Authorization: Bearer <token>`, or
///   request: {headers: [[name, value]], query: "a=b", cookies: {name: value}, url: "https://host/path"}
///   want: {outcome: authenticated|anonymous|denied, principal: iss/sub, claims: {subset},
///          request_auth: {principal, audiences, presenter, claims: {subset}}, location: header authorization,
///          status: 401, code: jwt_expired, reason: substring, www_authenticate: ...,
///          headers_to_remove: [...], headers_to_set: {name: value}, query_parameters_to_remove: [...],
///          cookies_to_remove: [...]}
///   want_warnings: [{path: spec.jwtRules[0].jwks, message: substring}]   # every warning of the documents
///   want_errors: [{path: spec.jwtRules[0], message: substring}]   # instead of a request and `want`
/// ```
///
/// In `jwks`, a list names keys of the file's `keys` (or `{ref: name, alg: ..., use: ...}` to add members); the
/// runner writes their public halves as the JWKS JSON text the RequestAuthentication field holds.
public enum JWTCaseRunner {
    public static let runner = ConformanceSuite.Runner(directory: "jwt") { file in run(file) }

    static let fileFields = ["at", "keys", "cases"]
    static let caseFields = [
        "note", "at", "rule", "rules", "policies", "workload", "root_namespace", "options", "token", "request", "want",
        "want_errors", "want_warnings",
    ]
    static let wantFields = [
        "outcome", "principal", "claims", "request_auth", "location", "status", "code", "reason", "www_authenticate",
        "headers_to_remove", "headers_to_set", "query_parameters_to_remove", "cookies_to_remove",
    ]
    static let optionFields = ["clock_skew", "invalid_token_status", "audience_failure_status", "check_issued_at", "max_token_size"]

    public static func run(_ file: CaseFile) -> [CaseResult] {
        guard let root = file.documents.first else { return [] }
        let decoder = DocumentDecoder()
        guard let top = decoder.fields(root, at: .root, known: fileFields), decoder.diagnostics.isEmpty else {
            return [CaseResult(file: file.path, note: "(file)", failure: decoder.diagnostics.map(\.description).joined(separator: "\n"))]
        }
        var keys: [String: Value] = [:]
        if case .mapping(let entries)? = top["keys"]?.content {
            for entry in entries { keys[entry.key] = entry.value.value }
        }
        let defaultTime = top["at"]
        var notes: Set<String> = []
        return file.cases.enumerated().map { index, node in
            let note = node["note"]?.value.stringValue ?? "case \(index)"
            var result = runCase(node, file: file.path, note: note, keys: keys, defaultTime: defaultTime)
            if !notes.insert(note).inserted { result.failure = "duplicate note" }
            return result
        }
    }

    static func runCase(_ node: DocumentNode, file: String, note: String, keys: [String: Value], defaultTime: DocumentNode?) -> CaseResult {
        func fail(_ message: String) -> CaseResult { CaseResult(file: file, note: note, failure: message) }
        let decoder = DocumentDecoder()
        guard let fields = decoder.fields(node, at: .root, known: caseFields) else { return fail("a case must be an object") }
        if let problem = decoder.diagnostics.first { return fail(problem.description) }

        // The documents under test: given whole, or one RequestAuthentication wrapped around the rules.
        var documents: [DocumentNode]
        if let policies = fields["policies"] {
            guard case .sequence(let items) = policies.content else { return fail("`policies` must be a list") }
            documents = items
        } else if let rules = fields["rules"] ?? fields["rule"].map({ DocumentNode(.sequence([$0]), span: $0.span) }) {
            documents = [wrap(rules: rules, at: node.span)]
        } else {
            return fail("a case needs `rule`, `rules` or `policies`")
        }
        do throws(CaseError) {
            var substituted: [DocumentNode] = []
            for document in documents { substituted.append(try substituteKeys(document, keys: keys)) }
            documents = substituted
        } catch {
            return fail(error.message)
        }
        let root = fields["root_namespace"]?.value.stringValue ?? "istio-system"
        let (policies, diagnostics) = RequestAuthentication.decodeAll(documents)
        switch DiagnosticExpectations.check(fields, diagnostics) {
        case .failed(let message): return fail(message)
        case .refusedAsExpected: return CaseResult(file: file, note: note)
        case .loaded: break
        }

        let set = RequestAuthenticationSet(policies: policies, rootNamespace: root)
        let rules: [JWTRule]
        if let workload = fields["workload"] {
            let namespace = workload["namespace"]?.value.stringValue ?? "default"
            var labels: [String: String] = [:]
            if case .object(let members)? = workload["labels"]?.value {
                for (key, value) in members {
                    if let key = key.stringValue, let value = value.stringValue { labels[key] = value }
                }
            }
            rules = set.rules(forNamespace: namespace, labels: labels)
        } else {
            rules = set.policies.flatMap(\.jwtRules).sorted { $0.issuer < $1.issuer }
        }

        var options = RequestAuthenticator.Options()
        if let optionsNode = fields["options"] {
            guard let given = decoder.fields(optionsNode, at: FieldPath.root / "options", known: optionFields) else {
                return fail("`options` must be an object")
            }
            if let problem = decoder.diagnostics.first { return fail(problem.description) }
            if let skew = given["clock_skew"]?.value.numberValue { options.clockSkew = skew.doubleValue }
            if let status = given["invalid_token_status"]?.value.numberValue?.intValue { options.invalidTokenStatus = status }
            if let status = given["audience_failure_status"]?.value.numberValue?.intValue { options.audienceFailureStatus = status }
            if let check = given["check_issued_at"]?.value.boolValue { options.checkIssuedAt = check }
            if let size = given["max_token_size"]?.value.numberValue?.intValue { options.maximumTokenSize = size }
        }
        guard let time = parseTime(fields["at"] ?? defaultTime) else { return fail("`at` must be seconds or RFC 3339") }
        let request: AuthenticationRequest
        switch (fields["token"]?.value.stringValue, fields["request"]) {
        case (let token?, nil):
            request = AuthenticationRequest(headers: [("authorization", "Bearer " + token)], url: "https://workload.example.com/")
        case (nil, let requestNode?):
            guard let parsed = parseRequest(requestNode.value) else { return fail("bad `request`") }
            request = parsed
        default:
            return fail("a case needs exactly one of `token` and `request` (or `want_errors`)")
        }
        guard let want = fields["want"] else { return fail("a case needs `want`") }

        let result = RequestAuthenticator(rules: rules, options: options).authenticateWithoutFetching(request, now: time)
        return compare(want, result, file: file, note: note)
    }

    /// A RequestAuthentication holding `rules`, built as if it had been written around them.
    static func wrap(rules: DocumentNode, at span: SourceSpan) -> DocumentNode {
        func scalar(_ text: String) -> DocumentNode { DocumentNode(.scalar(.init(text: text, kind: .string)), span: span) }
        func mapping(_ entries: [(String, DocumentNode)]) -> DocumentNode {
            DocumentNode(.mapping(entries.map { DocumentNode.MappingEntry(key: $0.0, keySpan: span, value: $0.1) }), span: span)
        }
        return mapping([
            ("apiVersion", scalar("security.istio.io/v1")), ("kind", scalar("RequestAuthentication")),
            ("metadata", mapping([("name", scalar("case")), ("namespace", scalar("default"))])),
            ("spec", mapping([("jwtRules", rules)])),
        ])
    }

    struct CaseError: Error { var message: String }

    /// Replaces every `jwks: [name, ...]` by the JWKS JSON text of those keys' public halves.
    static func substituteKeys(_ node: DocumentNode, keys: [String: Value]) throws(CaseError) -> DocumentNode {
        switch node.content {
        case .scalar:
            return node
        case .sequence(let items):
            var out: [DocumentNode] = []
            for item in items { out.append(try substituteKeys(item, keys: keys)) }
            return DocumentNode(.sequence(out), span: node.span)
        case .mapping(let entries):
            var out: [DocumentNode.MappingEntry] = []
            for entry in entries {
                var copy = entry
                if entry.key == "jwks", case .sequence(let names) = entry.value.content {
                    var jwks: [Value] = []
                    for name in names { jwks.append(try publicKey(name.value, keys: keys)) }
                    let text = JSONWriter.string(["keys": .array(jwks)])
                    copy.value = DocumentNode(.scalar(.init(text: text, kind: .string)), span: entry.value.span)
                } else {
                    copy.value = try substituteKeys(entry.value, keys: keys)
                }
                out.append(copy)
            }
            return DocumentNode(.mapping(out), span: node.span)
        }
    }

    /// The public half of a named key (`name` or `{ref: name, ...extra members}`).
    static func publicKey(_ reference: Value, keys: [String: Value]) throws(CaseError) -> Value {
        var extra: [Value: Value] = [:]
        let name: String
        if let text = reference.stringValue {
            name = text
        } else if case .object(let members) = reference, let ref = reference["ref"]?.stringValue {
            name = ref
            extra = members
            extra.removeValue(forKey: "ref")
        } else {
            throw CaseError(message: "a `jwks` entry must name a key")
        }
        guard case .object(var members)? = keys[name] else { throw CaseError(message: "unknown key `\(name)`") }
        if members[.string("kty")] != .string("oct") {
            for privateMember in ["d", "p", "q", "dp", "dq", "qi", "oth"] { members.removeValue(forKey: .string(privateMember)) }
        }
        for (key, value) in extra { members[key] = value }
        return .object(members)
    }

    static func parseTime(_ node: DocumentNode?) -> Double? {
        guard let node else { return Date().timeIntervalSince1970 }
        switch node.value {
        case .number(let number): return number.doubleValue
        case .string(let text):
            let formatter = ISO8601DateFormatter()
            return formatter.date(from: text)?.timeIntervalSince1970
        default: return nil
        }
    }

    static func parseRequest(_ value: Value) -> AuthenticationRequest? {
        guard case .object = value else { return nil }
        var request = AuthenticationRequest(url: value["url"]?.stringValue ?? "https://workload.example.com/")
        switch value["headers"] {
        case .array(let pairs)?:
            for pair in pairs {
                guard let parts = pair.arrayValue, parts.count == 2, let name = parts[0].stringValue, let text = parts[1].stringValue
                else { return nil }
                request.headers.append((name, text))
            }
        case .object(let members)?:
            for (name, text) in members.sorted(by: { $0.key < $1.key }) {
                guard let name = name.stringValue, let text = text.stringValue else { return nil }
                request.headers.append((name, text))
            }
        case nil: break
        default: return nil
        }
        request.query = value["query"]?.stringValue
        if case .object(let members)? = value["cookies"] {
            var cookies: [String: String] = [:]
            for (name, text) in members { if let name = name.stringValue, let text = text.stringValue { cookies[name] = text } }
            request.cookies = cookies
        }
        return request
    }

    static func compare(_ want: DocumentNode, _ result: AuthenticationResult, file: String, note: String) -> CaseResult {
        guard case .mapping(let entries) = want.content else { return CaseResult(file: file, note: note, failure: "`want` must be an object") }
        let got = describe(result)
        var mismatches: [String] = []
        for entry in entries {
            guard wantFields.contains(entry.key) else {
                mismatches.append("unknown `want` field `\(entry.key)`")
                continue
            }
            let expected = entry.value.value
            let actual = got[entry.key] ?? .null
            let matches: Bool
            switch entry.key {
            case "claims": matches = isSubset(expected, of: actual)
            case "request_auth": matches = isSubset(expected, of: actual)
            case "reason": matches = expected.stringValue.map { actual.stringValue?.contains($0) == true } ?? false
            case "headers_to_remove", "query_parameters_to_remove", "cookies_to_remove":
                matches = Set(expected.arrayValue ?? []) == Set(actual.arrayValue ?? [])
            default: matches = expected == actual
            }
            if !matches { mismatches.append("\(entry.key): want \(expected), got \(actual)") }
        }
        if mismatches.isEmpty { return CaseResult(file: file, note: note) }
        return CaseResult(file: file, note: note, failure: mismatches.joined(separator: "; ") + "\n  result: \(Value.object(got))")
    }

    /// The result as the case file spells it.
    static func describe(_ result: AuthenticationResult) -> [String: Value] {
        var out: [String: Value] = [
            "headers_to_remove": .array(result.headersToRemove.map(Value.string)),
            "headers_to_set": .object(Dictionary(result.headersToSet.map { ($0.name, Value.string($0.value)) }, uniquingKeysWith: { $1 })),
            "query_parameters_to_remove": .array(result.queryParametersToRemove.map(Value.string)),
            "cookies_to_remove": .array(result.cookiesToRemove.map(Value.string)),
        ]
        switch result.outcome {
        case .anonymous:
            out["outcome"] = "anonymous"
        case .authenticated(let token):
            out["outcome"] = "authenticated"
            out["principal"] = token.principal.map(Value.string) ?? .null
            out["claims"] = token.claims
            let auth = token.requestAuth
            out["request_auth"] = [
                "principal": auth.principal.map(Value.string) ?? .null, "audiences": .array(auth.audiences.map(Value.string)),
                "presenter": auth.presenter.map(Value.string) ?? .null, "claims": auth.claims,
            ]
            switch token.location {
            case .header(let name, _): out["location"] = .string("header " + name)
            case .queryParameter(let name): out["location"] = .string("query " + name)
            case .cookie(let name): out["location"] = .string("cookie " + name)
            }
        case .denied(let failure):
            out["outcome"] = "denied"
            out["status"] = .int(failure.status)
            out["code"] = .string(failure.error.code.rawValue)
            out["reason"] = .string(failure.reason)
            out["www_authenticate"] = .string(failure.wwwAuthenticate)
        }
        return out
    }

    /// Objects match when every wanted member matches (recursively); other values must be equal.
    static func isSubset(_ expected: Value, of actual: Value) -> Bool {
        guard case .object(let wanted) = expected else { return expected == actual }
        guard case .object(let members) = actual else { return false }
        return wanted.allSatisfy { key, value in members[key].map { isSubset(value, of: $0) } ?? false }
    }
}
