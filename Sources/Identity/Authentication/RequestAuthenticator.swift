import Foundation
import JOSE
import PolicyCore
import Synchronization

/// Authenticates requests against the merged JWT rules of one workload, as Istio's generated Envoy `jwt_authn`
/// configuration does:
///
/// - no token in any location a rule reads: anonymous, the request goes on;
/// - some token verifies under a rule that reads its location and names its issuer: authenticated with that
///   token (the first that verifies);
/// - tokens present but none verifies: denied with the first token's reason, 401 (403 when only the audience
///   failed, as Envoy answers; both configurable).
///
/// Verified tokens are cached (bounded LRU, keyed by the token's SHA-256). Remote key sets are read through a
/// `KeySource`; `authenticate` waits for a first fetch, and refetches once (rate limited by the source) when a token
/// names an unknown `kid`.
public final class RequestAuthenticator: Sendable {
    public struct Options: Sendable, Hashable {
        public var clockSkew: Double
        public var maximumTokenSize: Int
        /// Refuse tokens whose `iat` lies in the future; off by default, as in Envoy.
        public var checkIssuedAt: Bool
        /// The status for a refused token: 401 as Envoy and Istio answer (some walkthroughs show 403).
        public var invalidTokenStatus: Int
        /// The status for a token refused only for its audience: 403 as Envoy, or 401.
        public var audienceFailureStatus: Int
        /// Verified tokens kept; 0 disables the cache.
        public var cacheCapacity: Int
        /// Seconds a verified token stays cached at most (its `exp` caps it sooner).
        public var cacheMaximumLifetime: Double

        public init(
            clockSkew: Double = JWTValidation.defaultClockSkew,
            maximumTokenSize: Int = JWS.defaultMaximumSize,
            checkIssuedAt: Bool = false,
            invalidTokenStatus: Int = 401,
            audienceFailureStatus: Int = 403,
            cacheCapacity: Int = 4096,
            cacheMaximumLifetime: Double = 600
        ) {
            self.clockSkew = clockSkew
            self.maximumTokenSize = maximumTokenSize
            self.checkIssuedAt = checkIssuedAt
            self.invalidTokenStatus = invalidTokenStatus
            self.audienceFailureStatus = audienceFailureStatus
            self.cacheCapacity = cacheCapacity
            self.cacheMaximumLifetime = cacheMaximumLifetime
        }
    }

    /// The rules, ordered by issuer.
    public let rules: [JWTRule]
    public let options: Options
    let keySource: (any KeySource)?
    /// Every distinct token location, in the order rules name them.
    let locations: [TokenLocation]
    /// For each location, the rules that read it.
    let rulesAtLocation: [[Int]]
    let validations: [JWTValidation]
    /// What decoding alone checks (size, `crit`, algorithm, claim types).
    let decoding: JWTValidation
    /// Output headers of every rule, lowercase: always removed from incoming requests.
    let sanitizedHeaders: [String]
    let cache: VerifiedTokenCache?

    public init(rules: [JWTRule], keySource: (any KeySource)? = nil, options: Options = Options()) {
        self.rules = rules
        self.options = options
        self.keySource = keySource
        var locations: [TokenLocation] = []
        var rulesAtLocation: [[Int]] = []
        for (index, rule) in rules.enumerated() {
            for location in rule.locations {
                if let at = locations.firstIndex(of: location) {
                    if !rulesAtLocation[at].contains(index) { rulesAtLocation[at].append(index) }
                } else {
                    locations.append(location)
                    rulesAtLocation.append([index])
                }
            }
        }
        self.locations = locations
        self.rulesAtLocation = rulesAtLocation
        validations = rules.map { rule in
            JWTValidation(
                issuer: rule.issuer.isEmpty ? nil : rule.issuer, audiences: rule.audiences, clockSkew: options.clockSkew,
                checkIssuedAt: options.checkIssuedAt, maximumTokenSize: options.maximumTokenSize)
        }
        decoding = JWTValidation(clockSkew: options.clockSkew, maximumTokenSize: options.maximumTokenSize)
        var sanitized: [String] = []
        for rule in rules {
            for name in [rule.outputPayloadToHeader].compactMap({ $0 }) + rule.outputClaimToHeaders.map(\.header) {
                let lower = Headers.normalize(name)
                if !sanitized.contains(lower) { sanitized.append(lower) }
            }
        }
        sanitizedHeaders = sanitized
        cache = options.cacheCapacity > 0
            ? VerifiedTokenCache(capacity: options.cacheCapacity, maximumLifetime: options.cacheMaximumLifetime) : nil
    }

    /// Authenticates a request, fetching remote key sets when needed. `now` is seconds since the epoch.
    public func authenticate(_ request: AuthenticationRequest, now: Double = Date().timeIntervalSince1970) async
        -> AuthenticationResult
    {
        var context = Context()
        // Each remote location is fetched at most once and refreshed at most once per request.
        for _ in 0..<(2 * rules.count + 2) {
            switch evaluate(request, now: now, context: context, canFetch: keySource != nil) {
            case .done(let result):
                return result
            case .fetch(let location, let timeout):
                switch await keySource!.keys(for: location, timeout: timeout) {
                case .success(let snapshot): context.fetched[location] = snapshot
                case .failure(let error): context.failed[location] = error
                }
            case .refresh(let location, let keyID, let timeout):
                context.refreshed.insert(location)
                switch await keySource!.refresh(location, unknownKeyID: keyID, timeout: timeout) {
                case .success(let snapshot): context.fetched[location] = snapshot
                case .failure: break  // keep the keys already held
                }
            }
        }
        return evaluate(request, now: now, context: context, canFetch: false).result
    }

    /// Authenticates with the keys at hand, never waiting for the network: a rule whose remote keys were never
    /// fetched fails its tokens with `jwks_unavailable`. For inline key sets this is the whole story.
    public func authenticateWithoutFetching(_ request: AuthenticationRequest, now: Double = Date().timeIntervalSince1970)
        -> AuthenticationResult
    {
        evaluate(request, now: now, context: Context(), canFetch: false).result
    }

    /// Authenticates with the keys at hand when they are enough to decide (inline keys, remote keys already fetched,
    /// a cached token, no token at all): nil when a remote key set must be fetched or refetched first, and the caller
    /// should `await authenticate` instead. Lets a proxy answer most requests without leaving its event loop.
    public func authenticateIfReady(_ request: AuthenticationRequest, now: Double = Date().timeIntervalSince1970)
        -> AuthenticationResult?
    {
        if case .done(let result) = evaluate(request, now: now, context: Context(), canFetch: keySource != nil) {
            return result
        }
        return nil
    }

    /// How many verified tokens are cached.
    public var cachedTokenCount: Int { cache?.count ?? 0 }

    // MARK: - Evaluation

    struct Context {
        var fetched: [RemoteKeys: KeySnapshot] = [:]
        var failed: [RemoteKeys: JOSEError] = [:]
        var refreshed: Set<RemoteKeys> = []
    }

    enum Step {
        case done(AuthenticationResult)
        case fetch(RemoteKeys, Duration)
        case refresh(RemoteKeys, keyID: String, Duration)

        var result: AuthenticationResult {
            guard case .done(let result) = self else {
                return AuthenticationResult(
                    outcome: .denied(AuthenticationFailure(error: JOSEError(.keysUnavailable, "jwks is not available"), status: 401, realm: "")),
                    headersToRemove: [])
            }
            return result
        }
    }

    /// The keys of a rule right now, with their revision; nil when a remote set was never fetched.
    private func snapshot(for rule: Int, _ context: Context) -> KeySnapshot? {
        switch rules[rule].keys {
        case .inline(let keys): return KeySnapshot(keys: keys, revision: 0)
        case .remote(let location): return context.fetched[location] ?? keySource?.cachedKeys(for: location)
        }
    }

    private func evaluate(_ request: AuthenticationRequest, now: Double, context: Context, canFetch: Bool) -> Step {
        var sawToken = false
        var firstFailure: JOSEError?
        // Tokens are taken location by location, in order; the first that verifies (or is cached) decides.
        for (index, location) in locations.enumerated() {
            switch location {
            case .header(let name, let prefix):
                for field in request.headers where AuthenticationRequest.equalsIgnoringASCIICase(field.name, lowercased: name) {
                    guard let token = TokenExtractor.token(in: field.value, prefix: prefix) else { continue }
                    sawToken = true
                    if let step = consider(token, location: index, now: now, context: context, canFetch: canFetch, failure: &firstFailure) {
                        return step
                    }
                }
            case .queryParameter(let name):
                guard let token = request.queryParameter(name) else { continue }
                sawToken = true
                if let step = consider(token[...], location: index, now: now, context: context, canFetch: canFetch, failure: &firstFailure) {
                    return step
                }
            case .cookie(let name):
                guard let token = request.cookie(name) else { continue }
                sawToken = true
                if let step = consider(token[...], location: index, now: now, context: context, canFetch: canFetch, failure: &firstFailure) {
                    return step
                }
            }
        }
        guard sawToken else {
            return .done(AuthenticationResult(outcome: .anonymous, headersToRemove: sanitizedHeaders))
        }
        let error = firstFailure ?? JOSEError(.signatureInvalid, "jwt verification fails")
        let status = error.code == .audienceNotAllowed ? options.audienceFailureStatus : options.invalidTokenStatus
        let failure = AuthenticationFailure(error: error, status: status, realm: AuthenticationFailure.realm(for: request.url))
        return .done(AuthenticationResult(outcome: .denied(failure), headersToRemove: sanitizedHeaders))
    }

    /// Verifies one token found at `location` (from the cache when it can): a step that ends the evaluation, or nil
    /// after recording why the token failed.
    private func consider(
        _ token: Substring, location: Int, now: Double, context: Context, canFetch: Bool, failure: inout JOSEError?
    ) -> Step? {
        func fail(_ error: JOSEError) { if failure == nil { failure = error } }
        let cacheKey = cache.map { _ in VerifiedTokenCache.Key(token: token, location: location) }
        if let cache, let cacheKey, let entry = cache.lookup(cacheKey, now: now) {
            if snapshot(for: entry.token.ruleIndex, context)?.revision == entry.keyRevision {
                return .done(entry.result)
            }
            cache.remove(cacheKey)
        }

        let jws: JWS
        let claims: JWTClaims
        do {
            (jws, claims) = try JWTVerifier.decode(String(token), validation: decoding)
        } catch {
            fail(error)
            return nil
        }
        var matchedIssuer = false
        for ruleIndex in rulesAtLocation[location] where rules[ruleIndex].issuer.isEmpty || rules[ruleIndex].issuer == claims.issuer {
            matchedIssuer = true
            let rule = rules[ruleIndex]
            do {
                try JWTVerifier.checkClaims(claims, validation: validations[ruleIndex], now: now)
            } catch {
                fail(error)
                continue
            }
            var remote: RemoteKeys?
            if case .remote(let location) = rule.keys { remote = location }
            guard let keys = snapshot(for: ruleIndex, context) else {
                if let remote, canFetch, context.failed[remote] == nil { return .fetch(remote, rule.timeout) }
                fail(remote.flatMap { context.failed[$0] } ?? JOSEError(.keysUnavailable, "jwks is not available"))
                continue
            }
            if let remote, let keyID = jws.keyID, !keys.keys.contains(keyID: keyID), canFetch, !context.refreshed.contains(remote) {
                return .refresh(remote, keyID: keyID, rule.timeout)
            }
            do {
                try keys.keys.verify(jws)
            } catch {
                fail(error)
                continue
            }
            let verified = authenticatedToken(jws: jws, claims: claims, rule: ruleIndex, location: location)
            let result = success(verified, headersToSet: outputHeaders(rule, jws: jws, claims: claims))
            if let cache, let cacheKey {
                let validUntil = claims.expiresAt.map { $0 + options.clockSkew } ?? .infinity
                cache.insert(
                    cacheKey, VerifiedTokenCache.Entry(result: result, validUntil: validUntil, keyRevision: keys.revision), now: now)
            }
            return .done(result)
        }
        if !matchedIssuer { fail(JOSEError(.unknownIssuer, "jwt issuer is not configured")) }
        return nil
    }

    private func success(_ token: AuthenticatedToken, headersToSet: [(name: String, value: String)]) -> AuthenticationResult {
        let rule = rules[token.ruleIndex]
        var remove = sanitizedHeaders
        var params: [String] = []
        var cookies: [String] = []
        if !rule.forwardOriginalToken {
            switch token.location {
            case .header(let name, _): if !remove.contains(name) { remove.append(name) }
            case .queryParameter(let name): params.append(name)
            case .cookie(let name): cookies.append(name)
            }
        }
        return AuthenticationResult(
            outcome: .authenticated(token), headersToRemove: remove, headersToSet: headersToSet,
            queryParametersToRemove: params, cookiesToRemove: cookies)
    }

    private func authenticatedToken(jws: JWS, claims: JWTClaims, rule: Int, location: Int) -> AuthenticatedToken {
        AuthenticatedToken(
            issuer: claims.issuer ?? "", subject: claims.subject, principal: claims.principal, audiences: claims.audiences,
            presenter: claims.presenter, claims: claims.payload,
            normalizedClaims: Self.normalize(claims.payload, spaceDelimited: JWTRule.defaultSpaceDelimitedClaims + rules[rule].spaceDelimitedClaims),
            header: jws.header, location: locations[location], ruleIndex: rule, expiresAt: claims.expiresAt)
    }

    /// `outputPayloadToHeader` (the payload's base64url, as it was in the token) and `outputClaimToHeaders`.
    private func outputHeaders(_ rule: JWTRule, jws: JWS, claims: JWTClaims) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        if let name = rule.outputPayloadToHeader {
            headers.append((Headers.normalize(name), String(jws.encodedPayload)))
        }
        for mapping in rule.outputClaimToHeaders {
            guard let value = Self.claim(mapping.claim, in: claims.payload), let text = Self.headerValue(value) else { continue }
            headers.append((Headers.normalize(mapping.header), text))
        }
        return headers
    }

    /// A claim by name, or by a `.`-separated path into nested objects when no top-level claim has that name.
    static func claim(_ name: String, in payload: Value) -> Value? {
        if let direct = payload[name] { return direct }
        var current = payload
        for part in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard let next = current[String(part)] else { return nil }
            current = next
        }
        return current
    }

    /// Strings, numbers and booleans become header values; other types, and strings that could split a header
    /// (CR, LF, NUL), are skipped.
    static func headerValue(_ value: Value) -> String? {
        switch value {
        case .string(let text):
            return text.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) ? nil : text
        case .number(let number): return number.description
        case .bool(let flag): return flag ? "true" : "false"
        default: return nil
        }
    }

    /// Space-delimited string claims become lists of their words.
    static func normalize(_ payload: Value, spaceDelimited: [String]) -> Value {
        guard case .object(var members) = payload else { return payload }
        var changed = false
        for name in spaceDelimited {
            guard let value = members[.string(name)], case .string(let text) = value else { continue }
            members[.string(name)] = .array(text.split(separator: " ").map { .string(String($0)) })
            changed = true
        }
        return changed ? .object(members) : payload
    }
}

/// The authenticators of every workload of a mesh, built on first use and shared by the workloads that the same
/// RequestAuthentications select (so they share one verified-token cache).
public final class WorkloadAuthenticators: Sendable {
    public let policies: RequestAuthenticationSet
    let keySource: (any KeySource)?
    let options: RequestAuthenticator.Options
    private let built = Mutex<[[RequestAuthentication.ID]: RequestAuthenticator]>([:])

    public init(policies: RequestAuthenticationSet, keySource: (any KeySource)? = nil, options: RequestAuthenticator.Options = .init()) {
        self.policies = policies
        self.keySource = keySource
        self.options = options
    }

    /// The authenticator of a workload; nil when no RequestAuthentication applies to it (then tokens are ignored).
    public func authenticator(namespace: String, labels: [String: String]) -> RequestAuthenticator? {
        let applicable = policies.policies(forNamespace: namespace, labels: labels)
        guard applicable.contains(where: { !$0.jwtRules.isEmpty }) else { return nil }
        let key = applicable.map(\.id)
        return built.withLock { built in
            if let existing = built[key] { return existing }
            let rules = policies.rules(forNamespace: namespace, labels: labels)
            let made = RequestAuthenticator(rules: rules, keySource: keySource, options: options)
            built[key] = made
            return made
        }
    }

    /// Every remote key location the policies name, so a key source can prefetch them.
    public var remoteKeyLocations: [RemoteKeys] {
        var out: [RemoteKeys] = []
        for policy in policies.policies {
            for rule in policy.jwtRules {
                if case .remote(let location) = rule.keys, !out.contains(location) { out.append(location) }
            }
        }
        return out
    }
}
