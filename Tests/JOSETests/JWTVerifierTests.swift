import Foundation
import JOSE
import PolicyCore
import Testing
import WardenTesting

@Suite("JWT verification")
struct JWTVerifierTests {
    static let issuer = "https://issuer.example.com"
    static let now = 1_750_000_000

    static let rsa = JWTFactory.SigningKey.rsa(keyID: "rsa-1")
    static let p256 = JWTFactory.SigningKey.p256(keyID: "ec-256")
    static let p384 = JWTFactory.SigningKey.p384(keyID: "ec-384")
    static let p521 = JWTFactory.SigningKey.p521(keyID: "ec-521")
    static let ed = JWTFactory.SigningKey.ed25519(keyID: "ed-1")
    static let secret = JWTFactory.SigningKey.hmac(keyID: "hs-1")
    static let everyKey = [rsa, p256, p384, p521, ed, secret]

    static func keys(_ signing: [JWTFactory.SigningKey] = everyKey) throws -> JWKSet {
        try JWKSet.parse(JWTFactory.jwks(signing))
    }

    static func claims(_ extra: [String: Any] = [:]) -> [String: Any] {
        JWTFactory.claims(issuer: issuer, now: now, extra: extra)
    }

    static func verify(
        _ token: String, keys: JWKSet? = nil, validation: JWTValidation = JWTValidation(issuer: issuer),
        now: Int = now
    ) throws -> VerifiedJWT {
        try JWTVerifier.verify(token, keys: keys ?? Self.keys(), validation: validation, now: Double(now))
    }

    /// The code of the error verifying `token` throws, or nil when it verifies.
    static func failure(
        _ token: String, keys: JWKSet? = nil, validation: JWTValidation = JWTValidation(issuer: issuer),
        now: Int = now
    ) throws -> JOSEError.Code? {
        do {
            _ = try verify(token, keys: keys, validation: validation, now: now)
            return nil
        } catch let error as JOSEError {
            return error.code
        }
    }

    // MARK: - The seed's demo token

    @Test func seedTokenVerifiesWithItsJWKS() throws {
        let keys = try JWKSet.parse(SeedToken.jwks)
        #expect(keys.keys.count == 1)
        #expect(keys.keys[0].keyID == SeedToken.keyID)
        let verified = try JWTVerifier.verify(
            SeedToken.token, keys: keys, validation: JWTValidation(issuer: SeedToken.issuer), now: 1_750_000_000)
        #expect(verified.principal == SeedToken.principal)
        #expect(verified.keyID == SeedToken.keyID)
        #expect(verified.payload["foo"] == "bar")
        #expect(verified.claims.expiresAt == SeedToken.expiresAt)
        #expect(verified.jws.algorithm == .rs256)
    }

    @Test func seedBadTokenIsMalformed() throws {
        let keys = try JWKSet.parse(SeedToken.jwks)
        #expect(throws: JOSEError(.malformed, "jwt is not in the form header.payload.signature (three segments separated by two dots)")) {
            try JWTVerifier.verify("badtoken", keys: keys, validation: JWTValidation(issuer: SeedToken.issuer), now: 0)
        }
    }

    @Test func seedTokenFailsForAnotherIssuerOrAfterExpiry() throws {
        let keys = try JWKSet.parse(SeedToken.jwks)
        #expect(throws: JOSEError.self) {
            try JWTVerifier.verify(SeedToken.token, keys: keys, validation: JWTValidation(issuer: "other"), now: 0)
        }
        #expect(throws: JOSEError(.expired, "jwt is expired")) {
            try JWTVerifier.verify(
                SeedToken.token, keys: keys, validation: JWTValidation(issuer: SeedToken.issuer),
                now: SeedToken.expiresAt + 61)
        }
    }

    // MARK: - Every algorithm

    @Test(arguments: [
        ("RS256", 0), ("RS384", 0), ("RS512", 0), ("PS256", 0), ("PS384", 0), ("PS512", 0),
        ("ES256", 1), ("ES384", 2), ("ES512", 3), ("EdDSA", 4), ("HS256", 5), ("HS384", 5), ("HS512", 5),
    ])
    func everyAlgorithmVerifies(alg: String, keyIndex: Int) throws {
        let key = Self.everyKey[keyIndex]
        let token = JWTFactory.token(Self.claims(), key: key, alg: alg)
        let verified = try Self.verify(token)
        #expect(verified.jws.algorithm?.rawValue == alg)
        #expect(verified.keyID == key.keyID)
        #expect(verified.principal == "\(Self.issuer)/user-1")
    }

    @Test(arguments: ["RS256", "PS384", "ES256", "ES384", "ES512", "EdDSA", "HS512"])
    func everyAlgorithmRefusesATamperedSignature(alg: String) throws {
        let key = Self.everyKey[["RS256": 0, "PS384": 0, "ES256": 1, "ES384": 2, "ES512": 3, "EdDSA": 4, "HS512": 5][alg]!]
        let token = JWTFactory.token(Self.claims(), key: key, alg: alg)
        #expect(try Self.failure(JWTFactory.tamperedSignature(token)) == .signatureInvalid)
        let forged = JWTFactory.tamperedPayload(token, claims: Self.claims(["sub": "admin"]))
        #expect(try Self.failure(forged) == .signatureInvalid)
    }

    @Test func psTokenDoesNotVerifyAsRSAndViceVersa() throws {
        // The same RSA key, but the header's algorithm names the other padding.
        let token = JWTFactory.token(Self.claims(), key: Self.rsa, alg: "RS256")
        let parts = token.split(separator: ".")
        let psHeader = JWTFactory.base64url(JWTFactory.json(["alg": "PS256", "kid": "rsa-1", "typ": "JWT"]))
        #expect(try Self.failure(psHeader + "." + parts[1] + "." + parts[2]) == .signatureInvalid)
    }

    // MARK: - Algorithm confusion

    @Test func algNoneIsRefused() throws {
        let token = JWTFactory.unsignedToken(Self.claims())
        #expect(try Self.failure(token) == .unsupportedAlgorithm)
        for spelling in ["None", "NONE", "nOnE"] {
            let header = JWTFactory.base64url(JWTFactory.json(["alg": spelling]))
            let payload = JWTFactory.base64url(JWTFactory.json(Self.claims()))
            #expect(try Self.failure(header + "." + payload + ".") == .unsupportedAlgorithm)
        }
    }

    @Test func hs256SignedWithTheRSAPublicKeyIsRefused() throws {
        // The classic confusion: the attacker signs HS256 with the RSA public key's bytes as the secret.
        let pem = Self.rsa.publicKeyPEM!
        let jwk = JWTFactory.SigningKey.hmac(pem, keyID: "rsa-1")
        let token = JWTFactory.token(Self.claims(), key: jwk, alg: "HS256")
        #expect(try Self.failure(token, keys: Self.keys([Self.rsa])) == .noMatchingKey)
        let raw = JWTFactory.SigningKey(.hmac(Array(Self.rsa.publicJWK().utf8)), keyID: "rsa-1")
        #expect(try Self.failure(JWTFactory.token(Self.claims(), key: raw, alg: "HS256"), keys: Self.keys([Self.rsa])) == .noMatchingKey)
    }

    @Test func aKeyIsUsedOnlyWithTheAlgorithmsOfItsType() throws {
        // An ES256 header over an EdDSA signature, an RS256 header with an EC key: no key of the right type.
        let ecToken = JWTFactory.token(Self.claims(), key: Self.p256, alg: "ES256")
        #expect(try Self.failure(ecToken, keys: Self.keys([Self.rsa, Self.ed])) == .noMatchingKey)
        // A P-384 key cannot verify ES256 even with a matching kid.
        let mislabelled = JWTFactory.SigningKey(Self.p256.material, keyID: "ec-384")
        #expect(try Self.failure(JWTFactory.token(Self.claims(), key: mislabelled), keys: Self.keys([Self.p384])) == .noMatchingKey)
    }

    @Test func aPinnedAlgorithmRestrictsTheKey() throws {
        let keys = try JWKSet.parse("{\"keys\":[\(Self.rsa.publicJWK(alg: "PS256"))]}")
        #expect(try Self.failure(JWTFactory.token(Self.claims(), key: Self.rsa, alg: "RS256"), keys: keys) == .noMatchingKey)
        #expect(try Self.failure(JWTFactory.token(Self.claims(), key: Self.rsa, alg: "PS256"), keys: keys) == nil)
    }

    @Test func unknownAlgorithmsAreRefused() throws {
        let header = JWTFactory.base64url(JWTFactory.json(["alg": "RS1"]))
        let token = header + "." + JWTFactory.base64url(JWTFactory.json(Self.claims())) + ".AAAA"
        #expect(try Self.failure(token) == .unsupportedAlgorithm)
    }

    // MARK: - Key selection

    @Test func kidSelectsTheKeyAndUnknownKidFails() throws {
        let other = JWTFactory.SigningKey.rsa(keyID: "rsa-2")
        let keys = try Self.keys([Self.rsa, other])
        #expect(try Self.verify(JWTFactory.token(Self.claims(), key: other), keys: keys).keyID == "rsa-2")
        let unknown = JWTFactory.SigningKey(other.material, keyID: "rsa-9")
        #expect(try Self.failure(JWTFactory.token(Self.claims(), key: unknown), keys: keys) == .noMatchingKey)
        // A kid that names the wrong key of the same type: that key alone is tried.
        let wrong = JWTFactory.SigningKey(other.material, keyID: "rsa-1")
        #expect(try Self.failure(JWTFactory.token(Self.claims(), key: wrong), keys: keys) == .signatureInvalid)
    }

    @Test func withoutKidEveryKeyOfTheTypeIsTried() throws {
        let first = JWTFactory.SigningKey.rsa(keyID: "a")
        let second = JWTFactory.SigningKey.rsa(keyID: "b")
        let keys = try Self.keys([first, second, Self.p256])
        let anonymous = JWTFactory.SigningKey(second.material, keyID: nil)
        #expect(try Self.verify(JWTFactory.token(Self.claims(), key: anonymous), keys: keys).keyID == "b")
        let stranger = JWTFactory.SigningKey.rsa(keyID: nil)
        #expect(try Self.failure(JWTFactory.token(Self.claims(), key: stranger), keys: keys) == .signatureInvalid)
    }

    @Test func keysWithoutKidAreCandidatesForAnyKid() throws {
        let unnamed = JWTFactory.SigningKey(Self.rsa.material, keyID: nil)
        let keys = try Self.keys([unnamed])
        #expect(try Self.failure(JWTFactory.token(Self.claims(), key: Self.rsa), keys: keys) == nil)
    }

    // MARK: - Claims

    @Test func expiryWithClockSkew() throws {
        let token = JWTFactory.token(Self.claims(["exp": Self.now]), key: Self.p256)
        #expect(try Self.failure(token, now: Self.now - 1) == nil)
        #expect(try Self.failure(token, now: Self.now + 59) == nil)  // within the 60 s skew
        #expect(try Self.failure(token, now: Self.now + 60) == .expired)
        let strict = JWTValidation(issuer: Self.issuer, clockSkew: 0)
        #expect(try Self.failure(token, validation: strict, now: Self.now) == .expired)
        #expect(try Self.failure(token, validation: strict, now: Self.now - 1) == nil)
    }

    @Test func notBeforeWithClockSkew() throws {
        let token = JWTFactory.token(Self.claims(["nbf": Self.now + 100]), key: Self.p256)
        #expect(try Self.failure(token, now: Self.now) == .notYetValid)
        #expect(try Self.failure(token, now: Self.now + 40) == nil)  // within the skew
        #expect(try Self.failure(token, now: Self.now + 39) == .notYetValid)
        let wide = JWTValidation(issuer: Self.issuer, clockSkew: 120)
        #expect(try Self.failure(token, validation: wide, now: Self.now) == nil)
    }

    @Test func issuedAtIsIgnoredUnlessConfigured() throws {
        let future = JWTFactory.token(Self.claims(["iat": Self.now + 3600]), key: Self.p256)
        #expect(try Self.failure(future) == nil)
        let checking = JWTValidation(issuer: Self.issuer, checkIssuedAt: true)
        #expect(try Self.failure(future, validation: checking) == .issuedInFuture)
        let old = JWTFactory.token(Self.claims(["iat": Self.now - 7200]), key: Self.p256)
        #expect(try Self.failure(old, validation: checking) == nil)
        var aged = checking
        aged.maximumAge = 3600
        #expect(try Self.failure(old, validation: aged) == .tooOld)
        var noIat = Self.claims()
        noIat.removeValue(forKey: "iat")
        #expect(try Self.failure(JWTFactory.token(noIat, key: Self.p256), validation: checking) == .badClaim)
    }

    @Test func wrongIssuerIsRefused() throws {
        let token = JWTFactory.token(JWTFactory.claims(issuer: "https://evil.example.com", now: Self.now), key: Self.p256)
        #expect(try Self.failure(token) == .unknownIssuer)
        var noIssuer = Self.claims()
        noIssuer.removeValue(forKey: "iss")
        #expect(try Self.failure(JWTFactory.token(noIssuer, key: Self.p256)) == .unknownIssuer)
        #expect(try Self.failure(token, validation: JWTValidation()) == nil)
    }

    @Test func audiences() throws {
        let validation = JWTValidation(issuer: Self.issuer, audiences: ["bookstore", "https://api.example.com/"])
        let one = JWTFactory.token(Self.claims(["aud": "bookstore"]), key: Self.p256)
        #expect(try Self.failure(one, validation: validation) == nil)
        let list = JWTFactory.token(Self.claims(["aud": ["other", "api.example.com"]]), key: Self.p256)
        #expect(try Self.failure(list, validation: validation) == nil)  // scheme and trailing slash ignored
        let wrong = JWTFactory.token(Self.claims(["aud": ["other"]]), key: Self.p256)
        #expect(try Self.failure(wrong, validation: validation) == .audienceNotAllowed)
        let missing = JWTFactory.token(Self.claims(), key: Self.p256)
        #expect(try Self.failure(missing, validation: validation) == .audienceNotAllowed)
        #expect(try Self.failure(missing) == nil)  // not checked without configured audiences
        let badType = JWTFactory.token(Self.claims(["aud": 7]), key: Self.p256)
        #expect(try Self.failure(badType, validation: validation) == .badClaim)
    }

    @Test func claimTypesAreChecked() throws {
        for (name, value) in [("exp", "soon" as Any), ("nbf", true), ("iat", [1]), ("iss", 3), ("sub", ["x"]), ("azp", 1)] {
            let token = JWTFactory.token(Self.claims([name: value]), key: Self.p256)
            #expect(try Self.failure(token, validation: JWTValidation()) == .badClaim, "claim \(name)")
        }
    }

    @Test func presenterAndAudiencesAreReported() throws {
        let token = JWTFactory.token(Self.claims(["azp": "web-app", "aud": ["a", "b"]]), key: Self.ed)
        let verified = try Self.verify(token)
        #expect(verified.claims.presenter == "web-app")
        #expect(verified.claims.audiences == ["a", "b"])
        #expect(verified.payload["azp"] == "web-app")
    }
}
