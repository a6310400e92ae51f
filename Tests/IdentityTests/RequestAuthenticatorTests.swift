import Foundation
import Identity
import JOSE
import PolicyCore
import Synchronization
import Testing
import WardenTesting

/// A key source over an in-memory table, counting how often it is asked, to test the authenticator's use of the
/// protocol (the HTTP implementation is tested against a real server in JWKSClientTests).
final class TableKeySource: KeySource {
    struct State {
        var published: [RemoteKeys: KeySnapshot] = [:]
        var held: [RemoteKeys: KeySnapshot] = [:]
        var fetches = 0
        var refreshes = 0
    }

    let state = Mutex(State())

    /// Publishes a set; the source holds it only once fetched.
    func publish(_ location: RemoteKeys, _ keys: JWKSet) {
        state.withLock { state in
            let revision = (state.published[location]?.revision ?? 0) + 1
            state.published[location] = KeySnapshot(keys: keys, revision: revision)
        }
    }

    func cachedKeys(for location: RemoteKeys) -> KeySnapshot? { state.withLock { $0.held[location] } }

    func keys(for location: RemoteKeys, timeout: Duration) async -> Result<KeySnapshot, JOSEError> {
        state.withLock { state in
            state.fetches += 1
            guard let published = state.published[location] else {
                return .failure(JOSEError(.keysUnavailable, "jwks remote fetch failed"))
            }
            state.held[location] = published
            return .success(published)
        }
    }

    func refresh(_ location: RemoteKeys, unknownKeyID: String, timeout: Duration) async -> Result<KeySnapshot, JOSEError> {
        state.withLock { $0.refreshes += 1 }
        return await keys(for: location, timeout: timeout)
    }
}

@Suite("Request authentication")
struct RequestAuthenticatorTests {
    static let issuer = "https://issuer.example.com"
    static let now = 1_750_000_000
    static let key = JWTFactory.SigningKey.p256(keyID: "k1")

    static func rule(
        issuer: String = issuer, keys: [JWTFactory.SigningKey] = [key], configure: (inout JWTRule) -> Void = { _ in }
    ) throws -> JWTRule {
        var rule = JWTRule(issuer: issuer, keys: .inline(try JWKSet.parse(JWTFactory.jwks(keys))))
        configure(&rule)
        return rule
    }

    static func token(_ extra: [String: Any] = [:], key: JWTFactory.SigningKey = key, issuer: String = issuer) -> String {
        JWTFactory.token(JWTFactory.claims(issuer: issuer, now: now, extra: extra), key: key)
    }

    static func bearer(_ token: String, url: String = "https://web.example.com/api/items?page=2") -> AuthenticationRequest {
        AuthenticationRequest(headers: [("Authorization", "Bearer " + token)], url: url)
    }

    // MARK: - The seed walkthrough

    @Test func seedRequestsWithValidBadAndNoToken() async throws {
        let keys = try JWKSet.parse(SeedToken.jwks)
        let authenticator = RequestAuthenticator(rules: [JWTRule(issuer: SeedToken.issuer, keys: .inline(keys))])

        let valid = await authenticator.authenticate(Self.bearer(SeedToken.token), now: Double(Self.now))
        let token = try #require(valid.token)
        #expect(token.principal == SeedToken.principal)
        #expect(valid.requestAuth?.principal == SeedToken.principal)
        #expect(valid.requestAuth?.claims["foo"] == "bar")
        #expect(valid.headersToRemove == ["authorization"])  // the token is not forwarded

        let bad = await authenticator.authenticate(
            AuthenticationRequest(headers: [("authorization", "Bearer badtoken")], url: "http://details:9080/details/1"),
            now: Double(Self.now))
        let failure = try #require(bad.failure)
        #expect(failure.status == 401)
        #expect(failure.wwwAuthenticate == "Bearer realm=\"http://details:9080/details/1\", error=\"invalid_token\"")
        #expect(failure.error.code == .malformed)
        #expect(bad.headersToRemove.isEmpty)

        let none = await authenticator.authenticate(AuthenticationRequest(url: "http://details:9080/details/1"), now: Double(Self.now))
        guard case .anonymous = none.outcome else { Issue.record("expected anonymous"); return }
        #expect(none.requestAuth == nil)
    }

    // MARK: - Token locations

    @Test func defaultLocationsAreTheBearerHeaderAndAccessTokenParameter() throws {
        let authenticator = RequestAuthenticator(rules: [try Self.rule()])
        let now = Double(Self.now)
        #expect(authenticator.authenticateWithoutFetching(Self.bearer(Self.token()), now: now).token != nil)
        let query = AuthenticationRequest(query: "a=1&access_token=" + Self.token(), url: "https://h/p")
        let viaQuery = authenticator.authenticateWithoutFetching(query, now: now)
        #expect(viaQuery.token?.location == .queryParameter("access_token"))
        #expect(viaQuery.queryParametersToRemove == ["access_token"])
        // Another scheme or a lowercase prefix is not a bearer token: no token, so anonymous.
        for value in ["Basic dXNlcjpwdw==", "bearer " + Self.token(), "Token " + Self.token()] {
            let request = AuthenticationRequest(headers: [("authorization", value)])
            guard case .anonymous = authenticator.authenticateWithoutFetching(request, now: now).outcome else {
                Issue.record("expected anonymous for \(value)")
                continue
            }
        }
        // Extra spaces after the prefix are skipped, as Envoy skips them.
        let spaced = AuthenticationRequest(headers: [("AUTHORIZATION", "Bearer   " + Self.token())])
        #expect(authenticator.authenticateWithoutFetching(spaced, now: now).token != nil)
    }

    @Test func customHeaderParamsAndCookies() throws {
        let rule = try Self.rule { rule in
            rule.fromHeaders = [.init(name: "X-Jwt-Assertion", prefix: ""), .init(name: "x-auth", prefix: "JWT ")]
            rule.fromParams = ["tok"]
            rule.fromCookies = ["session"]
        }
        let authenticator = RequestAuthenticator(rules: [rule])
        let now = Double(Self.now)
        let header = authenticator.authenticateWithoutFetching(AuthenticationRequest(headers: [("x-jwt-assertion", Self.token())]), now: now)
        #expect(header.token?.location == .header(name: "x-jwt-assertion", prefix: ""))
        #expect(header.headersToRemove == ["x-jwt-assertion"])
        let prefixed = authenticator.authenticateWithoutFetching(AuthenticationRequest(headers: [("X-Auth", "JWT " + Self.token())]), now: now)
        #expect(prefixed.token != nil)
        let param = authenticator.authenticateWithoutFetching(AuthenticationRequest(query: "tok=" + Self.token()), now: now)
        #expect(param.queryParametersToRemove == ["tok"])
        let cookie = authenticator.authenticateWithoutFetching(
            AuthenticationRequest(headers: [("cookie", "theme=dark; session=\"" + Self.token() + "\"; x=1")]), now: now)
        #expect(cookie.token?.location == .cookie("session"))
        #expect(cookie.cookiesToRemove == ["session"])
        let given = authenticator.authenticateWithoutFetching(AuthenticationRequest(cookies: ["session": Self.token()]), now: now)
        #expect(given.token != nil)
        // The default Authorization header is not read once the rule names its own locations.
        guard case .anonymous = authenticator.authenticateWithoutFetching(Self.bearer(Self.token()), now: now).outcome else {
            Issue.record("expected anonymous")
            return
        }
    }

    @Test func percentEncodedQueryTokens() throws {
        let authenticator = RequestAuthenticator(rules: [try Self.rule()])
        let token = Self.token()
        let encoded = token.replacingOccurrences(of: ".", with: "%2E")
        let result = authenticator.authenticateWithoutFetching(AuthenticationRequest(query: "access_token=" + encoded), now: Double(Self.now))
        #expect(result.token != nil)
    }

    // MARK: - Several rules

    @Test func rulesSharingALocationEachVerifyTheirIssuer() throws {
        let other = JWTFactory.SigningKey.rsa(keyID: "r1")
        let authenticator = RequestAuthenticator(rules: [
            try Self.rule(issuer: "https://a.example.com"), try Self.rule(issuer: "https://b.example.com", keys: [other]),
        ])
        let now = Double(Self.now)
        let a = authenticator.authenticateWithoutFetching(Self.bearer(Self.token(issuer: "https://a.example.com")), now: now)
        #expect(a.token?.issuer == "https://a.example.com")
        #expect(a.token?.ruleIndex == 0)
        let b = authenticator.authenticateWithoutFetching(Self.bearer(Self.token(key: other, issuer: "https://b.example.com")), now: now)
        #expect(b.token?.ruleIndex == 1)
        // Signed by a's key but claiming b's issuer: b's keys do not verify it.
        let crossed = authenticator.authenticateWithoutFetching(Self.bearer(Self.token(issuer: "https://b.example.com")), now: now)
        #expect(crossed.failure?.error.code == .noMatchingKey)
        let unknown = authenticator.authenticateWithoutFetching(Self.bearer(Self.token(issuer: "https://c.example.com")), now: now)
        #expect(unknown.failure?.reason == "jwt issuer is not configured")
        #expect(unknown.failure?.status == 401)
    }

    @Test func aRuleOnlyReadsItsOwnLocations() throws {
        let rule = try Self.rule(issuer: "https://b.example.com") { $0.fromHeaders = [.init(name: "x-b")] }
        let authenticator = RequestAuthenticator(rules: [try Self.rule(issuer: "https://a.example.com"), rule])
        // A token of b's issuer in the Authorization header, which only a reads: unknown issuer there.
        let misplaced = authenticator.authenticateWithoutFetching(Self.bearer(Self.token(issuer: "https://b.example.com")), now: Double(Self.now))
        #expect(misplaced.failure?.error.code == .unknownIssuer)
        let placed = authenticator.authenticateWithoutFetching(
            AuthenticationRequest(headers: [("x-b", Self.token(issuer: "https://b.example.com"))]), now: Double(Self.now))
        #expect(placed.token?.issuer == "https://b.example.com")
    }

    @Test func oneValidTokenAmongSeveralAuthenticates() throws {
        let rule = try Self.rule { $0.fromHeaders = [.init(name: "x-first"), .init(name: "x-second")] }
        let authenticator = RequestAuthenticator(rules: [rule])
        let request = AuthenticationRequest(headers: [("x-first", Self.token(["exp": Self.now - 3600])), ("x-second", Self.token(["sub": "second"]))])
        let result = authenticator.authenticateWithoutFetching(request, now: Double(Self.now))
        #expect(result.token?.subject == "second")
        let bothBad = AuthenticationRequest(headers: [("x-first", Self.token(["exp": Self.now - 3600])), ("x-second", "garbage")])
        #expect(authenticator.authenticateWithoutFetching(bothBad, now: Double(Self.now)).failure?.error.code == .expired)
    }

    // MARK: - Failures

    @Test func everyFailureIsA401WithAChallenge() throws {
        let authenticator = RequestAuthenticator(rules: [try Self.rule()])
        let now = Double(Self.now)
        let cases: [(String, JOSEError.Code)] = [
            (Self.token(["exp": Self.now - 61]), .expired),
            (Self.token(["nbf": Self.now + 61]), .notYetValid),
            (Self.token(issuer: "https://evil.example.com"), .unknownIssuer),
            (JWTFactory.unsignedToken(JWTFactory.claims(issuer: Self.issuer, now: Self.now)), .unsupportedAlgorithm),
            (JWTFactory.tamperedSignature(Self.token()), .signatureInvalid),
            (JWTFactory.tamperedPayload(Self.token(), claims: JWTFactory.claims(issuer: Self.issuer, subject: "admin", now: Self.now)), .signatureInvalid),
            (Self.token(key: JWTFactory.SigningKey.p256(keyID: "k9")), .noMatchingKey),
            ("a.b", .malformed),
            ("e30.e30.#", .badBase64),
            (JWTFactory.token(JWTFactory.claims(issuer: Self.issuer, now: Self.now), key: Self.key, header: ["crit": ["x"], "x": 1]), .unsupportedCritical),
            (Self.token(["pad": String(repeating: "p", count: 17_000)]), .tooLarge),
        ]
        for (token, code) in cases {
            let result = authenticator.authenticateWithoutFetching(Self.bearer(token, url: "https://web.example.com/a\"b?access_token=secret"), now: now)
            let failure = try #require(result.failure, "\(code)")
            #expect(failure.error.code == code)
            #expect(failure.status == 401)
            #expect(failure.wwwAuthenticate == "Bearer realm=\"https://web.example.com/a\\\"b\", error=\"invalid_token\"")
            #expect(!failure.reason.contains(token.prefix(20)))
        }
    }

    @Test func audienceFailuresAre403LikeEnvoyOr401WhenConfigured() throws {
        let rule = try Self.rule { $0.audiences = ["web"] }
        let now = Double(Self.now)
        let wrong = Self.bearer(Self.token(["aud": "api"]))
        #expect(RequestAuthenticator(rules: [rule]).authenticateWithoutFetching(wrong, now: now).failure?.status == 403)
        let strict = RequestAuthenticator(rules: [rule], options: .init(audienceFailureStatus: 401))
        #expect(strict.authenticateWithoutFetching(wrong, now: now).failure?.status == 401)
        #expect(strict.authenticateWithoutFetching(Self.bearer(Self.token()), now: now).failure?.error.code == .audienceNotAllowed)
        #expect(strict.authenticateWithoutFetching(Self.bearer(Self.token(["aud": ["x", "web"]])), now: now).token?.audiences == ["x", "web"])
    }

    @Test func clockSkewIsConfigurable() throws {
        let expiredRecently = Self.bearer(Self.token(["exp": Self.now - 30]))
        #expect(RequestAuthenticator(rules: [try Self.rule()]).authenticateWithoutFetching(expiredRecently, now: Double(Self.now)).token != nil)
        let strict = RequestAuthenticator(rules: [try Self.rule()], options: .init(clockSkew: 0))
        #expect(strict.authenticateWithoutFetching(expiredRecently, now: Double(Self.now)).failure?.error.code == .expired)
    }

    // MARK: - Outputs

    @Test func outputsAndSanitizing() throws {
        let rule = try Self.rule { rule in
            rule.outputPayloadToHeader = "X-Jwt-Payload"
            rule.outputClaimToHeaders = [
                .init(header: "x-sub", claim: "sub"), .init(header: "x-group", claim: "org.group"),
                .init(header: "x-level", claim: "level"), .init(header: "x-admin", claim: "admin"),
                .init(header: "x-object", claim: "org"), .init(header: "x-missing", claim: "nope"),
                .init(header: "x-evil", claim: "evil"),
            ]
        }
        let authenticator = RequestAuthenticator(rules: [rule])
        let token = Self.token(["org": ["group": "eng"], "level": 3, "admin": true, "evil": "a\r\nx-injected: 1"])
        var request = Self.bearer(token)
        request.headers.append(("x-sub", "forged"))
        let result = authenticator.authenticateWithoutFetching(request, now: Double(Self.now))
        #expect(result.token != nil)
        #expect(Set(result.headersToRemove) == ["x-jwt-payload", "x-sub", "x-group", "x-level", "x-admin", "x-object", "x-missing", "x-evil", "authorization"])
        let set = Dictionary(uniqueKeysWithValues: result.headersToSet.map { ($0.name, $0.value) })
        #expect(set == ["x-jwt-payload": String(token.split(separator: ".")[1]), "x-sub": "user-1", "x-group": "eng", "x-level": "3", "x-admin": "true"])
        // Anonymous and denied requests are sanitized too, so a client cannot forge the outputs.
        let anonymous = authenticator.authenticateWithoutFetching(AuthenticationRequest(headers: [("x-sub", "forged")]), now: Double(Self.now))
        #expect(anonymous.headersToRemove.contains("x-sub"))
        #expect(anonymous.headersToSet.isEmpty)
    }

    @Test func forwardOriginalTokenKeepsIt() throws {
        let authenticator = RequestAuthenticator(rules: [try Self.rule { $0.forwardOriginalToken = true }])
        let result = authenticator.authenticateWithoutFetching(Self.bearer(Self.token()), now: Double(Self.now))
        #expect(result.token != nil)
        #expect(result.headersToRemove.isEmpty)
    }

    @Test func requestAuthCarriesNormalizedClaims() throws {
        let authenticator = RequestAuthenticator(rules: [try Self.rule { $0.spaceDelimitedClaims = ["roles"] }])
        let token = Self.token(["scope": "read write", "roles": "admin ops", "other": "a b", "azp": "web-app", "aud": "web"])
        let result = authenticator.authenticateWithoutFetching(Self.bearer(token), now: Double(Self.now))
        let auth = try #require(result.requestAuth)
        #expect(auth.principal == "\(Self.issuer)/user-1")
        #expect(auth.presenter == "web-app")
        #expect(auth.audiences == ["web"])
        #expect(auth.claims["scope"] == ["read", "write"])
        #expect(auth.claims["roles"] == ["admin", "ops"])
        #expect(auth.claims["other"] == "a b")
        #expect(result.token?.claims["scope"] == "read write")
    }

    // MARK: - The verified-token cache

    @Test func repeatedTokensAreServedFromTheCache() throws {
        let authenticator = RequestAuthenticator(rules: [try Self.rule()])
        let token = Self.token(["exp": Self.now + 100])
        let now = Double(Self.now)
        #expect(authenticator.authenticateWithoutFetching(Self.bearer(token), now: now).token != nil)
        #expect(authenticator.cachedTokenCount == 1)
        #expect(authenticator.authenticateWithoutFetching(Self.bearer(token), now: now + 1).token?.subject == "user-1")
        #expect(authenticator.cachedTokenCount == 1)
        // The entry's lifetime is capped by exp (plus the skew): afterwards the token is verified again and fails.
        let late = authenticator.authenticateWithoutFetching(Self.bearer(token), now: now + 161)
        #expect(late.failure?.error.code == .expired)
        #expect(authenticator.cachedTokenCount == 0)
        // Failures are not cached.
        _ = authenticator.authenticateWithoutFetching(Self.bearer(JWTFactory.tamperedSignature(Self.token())), now: now)
        #expect(authenticator.cachedTokenCount == 0)
    }

    @Test func theCacheIsBoundedLeastRecentlyUsedFirst() throws {
        let authenticator = RequestAuthenticator(rules: [try Self.rule()], options: .init(cacheCapacity: 2))
        let now = Double(Self.now)
        let tokens = (0..<3).map { Self.token(["sub": "user-\($0)"]) }
        for token in tokens { _ = authenticator.authenticateWithoutFetching(Self.bearer(token), now: now) }
        #expect(authenticator.cachedTokenCount == 2)
        let disabled = RequestAuthenticator(rules: [try Self.rule()], options: .init(cacheCapacity: 0))
        _ = disabled.authenticateWithoutFetching(Self.bearer(tokens[0]), now: now)
        #expect(disabled.cachedTokenCount == 0)
    }

    @Test func aCachedTokenIsNotTrustedAcrossAKeyRotation() async throws {
        let source = TableKeySource()
        let location = RemoteKeys.uri("https://issuer.example.com/jwks")
        source.publish(location, try JWKSet.parse(JWTFactory.jwks([Self.key])))
        let authenticator = RequestAuthenticator(
            rules: [JWTRule(issuer: Self.issuer, keys: .remote(location))], keySource: source)
        let token = Self.token()
        #expect(await authenticator.authenticate(Self.bearer(token), now: Double(Self.now)).token != nil)
        // The issuer drops the key: the cached verification no longer counts.
        source.publish(location, try JWKSet.parse(JWTFactory.jwks([JWTFactory.SigningKey.p256(keyID: "k2")])))
        _ = await source.keys(for: location, timeout: .seconds(1))
        let after = await authenticator.authenticate(Self.bearer(token), now: Double(Self.now))
        #expect(after.failure?.error.code == .noMatchingKey)
    }

    // MARK: - Remote keys

    @Test func remoteKeysAreFetchedOnFirstUseAndRefreshedForAnUnknownKid() async throws {
        let source = TableKeySource()
        let location = RemoteKeys.uri("https://issuer.example.com/jwks")
        source.publish(location, try JWKSet.parse(JWTFactory.jwks([Self.key])))
        let authenticator = RequestAuthenticator(rules: [JWTRule(issuer: Self.issuer, keys: .remote(location))], keySource: source)
        #expect(await authenticator.authenticate(Self.bearer(Self.token()), now: Double(Self.now)).token != nil)
        #expect(source.state.withLock { ($0.fetches, $0.refreshes) } == (1, 0))

        // Rotation: a token signed by a key published after the first fetch.
        let rotated = JWTFactory.SigningKey.rsa(keyID: "k2")
        source.publish(location, try JWKSet.parse(JWTFactory.jwks([Self.key, rotated])))
        #expect(await authenticator.authenticate(Self.bearer(Self.token(key: rotated)), now: Double(Self.now)).token != nil)
        #expect(source.state.withLock { $0.refreshes } == 1)

        // A kid nobody publishes: one refresh, then a failure.
        let stranger = Self.token(key: JWTFactory.SigningKey.p256(keyID: "k9"))
        #expect(await authenticator.authenticate(Self.bearer(stranger), now: Double(Self.now)).failure?.error.code == .noMatchingKey)
        #expect(source.state.withLock { $0.refreshes } == 2)
        // Without fetching, a never-fetched location fails its tokens.
        let cold = RequestAuthenticator(rules: [JWTRule(issuer: Self.issuer, keys: .remote(.uri("https://x/jwks")))], keySource: source)
        #expect(cold.authenticateWithoutFetching(Self.bearer(Self.token()), now: Double(Self.now)).failure?.error.code == .keysUnavailable)
        #expect(await cold.authenticate(Self.bearer(Self.token()), now: Double(Self.now)).failure?.reason == "jwks remote fetch failed")
    }
}
