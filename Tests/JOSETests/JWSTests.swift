import Foundation
import JOSE
import PolicyCore
import Testing
import WardenTesting

@Suite("JWS compact parsing")
struct JWSTests {
    static let key = JWTFactory.SigningKey.p256(keyID: "k1")
    static var claims: [String: Any] { JWTFactory.claims(issuer: "iss", now: 1_750_000_000) }

    static func code(_ token: String, maximumSize: Int = JWS.defaultMaximumSize) -> JOSEError.Code? {
        do {
            let jws = try JWS.parse(token, maximumSize: maximumSize)
            try jws.checkCritical()
            _ = try jws.payloadJSON()
            return nil
        } catch {
            return error.code
        }
    }

    static func segment(_ object: [String: Any]) -> String { JWTFactory.base64url(JWTFactory.json(object)) }

    @Test func parsesTheParts() throws {
        let token = JWTFactory.token(Self.claims, key: Self.key, header: ["cty": "JWT"])
        let jws = try JWS.parse(token)
        #expect(jws.algorithm == .es256)
        #expect(jws.algorithmName == "ES256")
        #expect(jws.keyID == "k1")
        #expect(jws.header["cty"] == "JWT")
        #expect(jws.signature.count == 64)
        #expect(String(decoding: jws.signingInput, as: UTF8.self) == token.split(separator: ".")[0...1].joined(separator: "."))
        #expect(jws.encodedPayload == token.split(separator: ".")[1])
        #expect(try jws.payloadJSON()["iss"] == "iss")
        #expect(jws.critical.isEmpty)
    }

    @Test func segmentCountMustBeThree() {
        let token = JWTFactory.token(Self.claims, key: Self.key)
        #expect(Self.code("badtoken") == .malformed)
        #expect(Self.code("a.b") == .malformed)
        #expect(Self.code(token + ".extra") == .malformed)
        #expect(Self.code("") == .malformed)
        #expect(Self.code(".." ) == .malformed)  // empty header
        // JWE compact serializations have five segments.
        #expect(Self.code("a.b.c.d.e") == .malformed)
    }

    @Test func base64MustBeCanonicalUnpaddedURLSafe() {
        let token = JWTFactory.token(Self.claims, key: Self.key)
        let parts = token.split(separator: ".").map(String.init)
        #expect(Self.code(parts[0] + "=." + parts[1] + "." + parts[2]) == .badBase64)  // padding
        #expect(Self.code(parts[0] + "." + parts[1] + "." + parts[2] + "==") == .badBase64)
        let standard = parts[2].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        if standard != parts[2] { #expect(Self.code(parts[0] + "." + parts[1] + "." + standard) == .badBase64) }
        #expect(Self.code(parts[0] + "." + parts[1] + ".ab$d") == .badBase64)
        #expect(Self.code(parts[0] + " ." + parts[1] + "." + parts[2]) == .badBase64)
        #expect(Self.code(parts[0] + "." + parts[1] + ".A") == .badBase64)  // a length no encoder produces
        // "QQ" is canonical for "A"; "QR" spells the same byte with non-zero trailing bits.
        #expect(Base64URL.decode("QQ") == [0x41])
        #expect(Base64URL.decode("QR") == nil)
        #expect(Base64URL.decode("QUI") == [0x41, 0x42])
        #expect(Base64URL.decode("QUJ") == nil)
    }

    @Test func base64RoundTrips() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
            #expect(Base64URL.decode(encoded) == bytes)
            #expect(encoded == JWTFactory.base64url(bytes))
        }
    }

    @Test func sizeLimit() {
        let padding = String(repeating: "x", count: 20_000)
        let big = JWTFactory.token(JWTFactory.claims(issuer: "iss", extra: ["pad": padding]), key: Self.key)
        #expect(Self.code(big) == .tooLarge)
        #expect(Self.code(big, maximumSize: 64 * 1024) == nil)
        let small = JWTFactory.token(Self.claims, key: Self.key)
        #expect(Self.code(small, maximumSize: small.utf8.count) == nil)
        #expect(Self.code(small, maximumSize: small.utf8.count - 1) == .tooLarge)
    }

    @Test func headerMustBeAJSONObjectWithAStringAlg() {
        let payload = Self.segment(Self.claims)
        #expect(Self.code(JWTFactory.base64url("not json") + "." + payload + ".") == .badHeader)
        #expect(Self.code(JWTFactory.base64url("[1,2]") + "." + payload + ".") == .badHeader)
        #expect(Self.code(Self.segment(["typ": "JWT"]) + "." + payload + ".") == .badHeader)
        #expect(Self.code(Self.segment(["alg": 256]) + "." + payload + ".") == .badHeader)
        #expect(Self.code(Self.segment(["alg": "ES256", "kid": 7]) + "." + payload + ".") == .badHeader)
    }

    @Test func payloadMustBeAJSONObject() {
        let header = Self.segment(["alg": "ES256"])
        #expect(Self.code(header + "." + JWTFactory.base64url("{\"a\":") + ".") == .badPayload)
        #expect(Self.code(header + "." + JWTFactory.base64url("\"text\"") + ".") == .badPayload)
        #expect(Self.code(header + "." + JWTFactory.base64url("{} trailing") + ".") == .badPayload)
    }

    @Test func criticalHeaders() throws {
        let payload = Self.segment(Self.claims)
        // Well-formed but not understood: refused.
        let understoodLater = Self.segment(["alg": "ES256", "crit": ["exp"], "exp": 1]) + "." + payload + "."
        #expect(Self.code(understoodLater) == .unsupportedCritical)
        let jws = try JWS.parse(understoodLater)
        #expect(jws.critical == ["exp"])
        try jws.checkCritical(understood: ["exp"])
        // b64 (RFC 7797, unencoded payloads) is not supported either.
        #expect(Self.code(Self.segment(["alg": "ES256", "crit": ["b64"], "b64": false]) + "." + payload + ".") == .unsupportedCritical)
        // Malformed crit values.
        #expect(Self.code(Self.segment(["alg": "ES256", "crit": []]) + "." + payload + ".") == .badHeader)
        #expect(Self.code(Self.segment(["alg": "ES256", "crit": "exp", "exp": 1]) + "." + payload + ".") == .badHeader)
        #expect(Self.code(Self.segment(["alg": "ES256", "crit": ["kid"], "kid": "k"]) + "." + payload + ".") == .badHeader)
        #expect(Self.code(Self.segment(["alg": "ES256", "crit": ["missing"]]) + "." + payload + ".") == .badHeader)
    }

    @Test func verifySignatureWithAGivenKey() throws {
        let token = JWTFactory.token(Self.claims, key: Self.key)
        let jws = try JWS.parse(token)
        let keys = try JWKSet.parse(Self.key.publicJWK())
        try jws.verifySignature(using: keys.keys[0].key)
        try jws.verifySignature(using: keys.keys[0].key, algorithm: .es256)
        #expect(throws: JOSEError.self) { try jws.verifySignature(using: keys.keys[0].key, algorithm: .es384) }
        let other = try JWKSet.parse(JWTFactory.SigningKey.p256().publicJWK())
        #expect(throws: JOSEError(.signatureInvalid, "jwt signature does not verify")) {
            try jws.verifySignature(using: other.keys[0].key)
        }
        let rsa = try JWKSet.parse(JWTFactory.SigningKey.rsa().publicJWK())
        #expect(throws: JOSEError.self) { try jws.verifySignature(using: rsa.keys[0].key) }
    }

    @Test func anyKeyOfASetForAFixedAlgorithm() throws {
        let other = JWTFactory.SigningKey.p256(keyID: "other")
        let keys = try JWKSet.parse(JWTFactory.jwks([other, Self.key]))
        // The kid is ignored here: every key is tried, as OPA's io.jwt.verify_es256 does.
        let jws = try JWS.parse(JWTFactory.token(Self.claims, key: JWTFactory.SigningKey(Self.key.material, keyID: "nobody")))
        #expect(keys.anyKeyVerifies(jws, algorithm: .es256))
        #expect(!keys.anyKeyVerifies(jws, algorithm: .es384))
        #expect(!(try JWKSet.parse(JWTFactory.jwks([other]))).anyKeyVerifies(jws, algorithm: .es256))
    }

    @Test func signaturesOfTheWrongLengthAreRefusedNotCrashed() throws {
        let token = JWTFactory.token(Self.claims, key: Self.key)
        let parts = token.split(separator: ".")
        for signature in ["", "AAAA", String(repeating: "A", count: 300)] {
            let jws = try JWS.parse(parts[0] + "." + parts[1] + "." + signature)
            #expect(throws: JOSEError.self) { try JWKSet.parse(Self.key.publicJWK()).verify(jws) }
        }
    }
}
