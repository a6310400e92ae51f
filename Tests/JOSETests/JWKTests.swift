import Crypto
import Foundation
import JOSE
import PolicyCore
import SwiftASN1
import Testing
import WardenTesting
import X509
import _CryptoExtras

@Suite("JWK, JWKS and PEM keys")
struct JWKTests {
    static func code(_ jwk: String) -> JOSEError.Code? {
        do {
            _ = try JWK.parse(JSONReader.parse(jwk))
            return nil
        } catch let error as JOSEError {
            return error.code
        } catch {
            return .badKeySet
        }
    }

    @Test func everyKeyTypeParses() throws {
        let keys: [(JWTFactory.SigningKey, JWSAlgorithm.KeyType, [JWSAlgorithm])] = [
            (.rsa(), .rsa, [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512]),
            (.p256(), .ec, [.es256]), (.p384(), .ec, [.es384]), (.p521(), .ec, [.es512]),
            (.ed25519(), .okp, [.edDSA]), (.hmac(), .oct, [.hs256, .hs384, .hs512]),
        ]
        for (signing, type, algorithms) in keys {
            let jwk = try JWK.parse(JSONReader.parse(signing.publicJWK()))
            #expect(jwk.keyType == type)
            #expect(jwk.keyID == signing.keyID)
            #expect(jwk.key.algorithms == algorithms)
            #expect(!jwk.hasPrivateMembers)
        }
    }

    @Test func rsaKeysUnder2048BitsAreRefused() throws {
        let weak = JWTFactory.SigningKey.rsa(bits: 1024, keyID: "weak")
        #expect(Self.code(weak.publicJWK()) == .weakKey)
        let set = try JWKSet.parse(JWTFactory.jwks([weak, .p256()]))
        #expect(set.keys.count == 1)
        #expect(set.rejected.map(\.error.code) == [.weakKey])
        #expect(set.rejected.first?.keyID == "weak")
        // A token signed by the weak key finds no usable key.
        let token = JWTFactory.token(JWTFactory.claims(), key: weak)
        #expect(throws: JOSEError.self) { try set.verify(JWS.parse(token)) }
    }

    @Test func callersMayLowerTheRSAFloorTo1024Bits() throws {
        let signing = JWTFactory.SigningKey.rsa(bits: 1024, keyID: nil)
        guard case .rsa(let privateKey) = signing.material else { Issue.record("not an RSA key"); return }
        let primitives = try privateKey.publicKey.getKeyPrimitives()
        let modulus = Array(primitives.modulus), exponent = Array(primitives.publicExponent)
        let token = try JWS.parse(JWTFactory.token(JWTFactory.claims(), key: signing, alg: "PS384"))

        // Refused by default, as a JWK and as PEM.
        #expect(throws: JOSEError(.weakKey, "rsa key is 1024 bits; at least 2048 are required")) {
            try VerificationKey.rsa(modulus: modulus, exponent: exponent)
        }
        // Accepted when the caller allows it, from either form, and it verifies.
        let fromMembers = try VerificationKey.rsa(modulus: modulus, exponent: exponent, minimumBits: 1024)
        let fromPEM = try VerificationKey(pem: signing.publicKeyPEM!, minimumRSABits: 1024)
        for key in [fromMembers, fromPEM] {
            #expect(key.kindDescription == "1024-bit RSA key")
            try token.verifySignature(using: key)
            #expect(!key.isValidSignature(token.signature, for: token.signingInput, algorithm: .ps256))
        }
        // Never below 1024 bits, whatever the caller asks.
        let short = [0xC1] + [UInt8](repeating: 0x5A, count: 62) + [0x01]
        #expect(throws: JOSEError(.weakKey, "rsa key is 512 bits; at least 1024 are required")) {
            try VerificationKey.rsa(modulus: short, exponent: [1, 0, 1], minimumBits: 512)
        }
    }

    @Test func malformedKeys() {
        #expect(Self.code(#"{"kty":"RSA","e":"AQAB"}"#) == .badKey)
        #expect(Self.code(#"{"kty":"RSA","n":"!!","e":"AQAB"}"#) == .badKey)
        #expect(Self.code(#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#) == .badKey)
        #expect(Self.code(#"{"kty":"EC","crv":"secp256k1","x":"AAAA","y":"AAAA"}"#) == .unsupportedKey)
        #expect(Self.code(#"{"kty":"OKP","crv":"X25519","x":"AAAA"}"#) == .unsupportedKey)
        #expect(Self.code(#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#) == .badKey)
        #expect(Self.code(#"{"kty":"oct","k":""}"#) == .badKey)
        #expect(Self.code(#"{"kty":"AKP"}"#) == .unsupportedKey)
        #expect(Self.code(#"{"n":"AQAB"}"#) == .badKey)
        #expect(Self.code(#"{"kty":7}"#) == .badKey)
        #expect(Self.code(#"{"kty":"oct","k":"c2VjcmV0","kid":5}"#) == .badKey)
    }

    @Test func aPointOffTheCurveIsRefused() throws {
        let good = try JSONReader.parse(JWTFactory.SigningKey.p256().publicJWK())
        guard case .object(var members) = good, let y = good["y"]?.stringValue else { Issue.record(); return }
        var bytes = JWTFactory.base64urlDecode(y)
        bytes[31] ^= 0x01
        members[.string("y")] = .string(JWTFactory.base64url(bytes))
        #expect(throws: JOSEError.self) { try JWK.parse(.object(members)) }
    }

    @Test func useKeyOpsAndAlgRestrictTheKey() throws {
        let rsa = JWTFactory.SigningKey.rsa()
        #expect(Self.code(rsa.publicJWK(use: "enc")) == .unsupportedKey)
        #expect(Self.code(rsa.publicJWK(use: "sig")) == nil)
        #expect(Self.code(rsa.publicJWK(alg: "RSA-OAEP")) == .unsupportedKey)
        #expect(Self.code(rsa.publicJWK(alg: "ES256")) == .badKey)
        #expect(Self.code(JWTFactory.SigningKey.p256().publicJWK(alg: "ES384")) == .badKey)
        #expect(Self.code(rsa.publicJWK(alg: "none")) == .unsupportedKey)
        let verifyOnly = #"{"kty":"oct","k":"c2VjcmV0","key_ops":["sign"]}"#
        #expect(Self.code(verifyOnly) == .unsupportedKey)
        #expect(Self.code(#"{"kty":"oct","k":"c2VjcmV0","key_ops":["verify"]}"#) == nil)
        let pinned = try JWK.parse(JSONReader.parse(rsa.publicJWK(alg: "PS512")))
        #expect(pinned.key.algorithms == [.ps512])
        #expect(!pinned.key.allows(.rs256))
    }

    @Test func privateMembersAreNoticedAndIgnored() throws {
        let jwk = #"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cLl4W2kv8iwN6zXNF7D6tE"}"#
        let parsed = try JWK.parse(JSONReader.parse(jwk))
        #expect(parsed.hasPrivateMembers)
        #expect(parsed.key.algorithms == [.es256])
    }

    @Test func keySets() throws {
        #expect(throws: JOSEError.self) { try JWKSet.parse("not json") }
        #expect(throws: JOSEError.self) { try JWKSet.parse("[]") }
        #expect(throws: JOSEError.self) { try JWKSet.parse(#"{"keys":{}}"#) }
        #expect(throws: JOSEError.self) { try JWKSet.parse(#"{"other":[]}"#) }
        #expect(try JWKSet.parse(#"{"keys":[]}"#).keys.isEmpty)
        let single = try JWKSet.parse(JWTFactory.SigningKey.ed25519().publicJWK())
        #expect(single.keys.count == 1)
        let mixed = try JWKSet.parse(#"{"keys":[{"kty":"AKP","kid":"future"},"#
            + JWTFactory.SigningKey.p384(keyID: "p").publicJWK() + "]}")
        #expect(mixed.keys.map(\.keyID) == ["p"])
        #expect(mixed.rejected.map(\.index) == [0])
        #expect(mixed.contains(keyID: "p"))
        #expect(!mixed.contains(keyID: "future"))
    }

    @Test func paddedKeyMembersAreTolerated() throws {
        let jwk = JWTFactory.SigningKey.ed25519(keyID: nil).publicJWK()
        let value = try JSONReader.parse(jwk)
        let x = value["x"]!.stringValue!
        let padded = jwk.replacingOccurrences(of: x, with: x + "=")
        #expect(Self.code(padded) == nil)
    }

    // MARK: - PEM

    @Test func pemPublicKeysOfEveryType() throws {
        for signing in [JWTFactory.SigningKey.rsa(keyID: nil), .p256(keyID: nil), .p384(keyID: nil), .p521(keyID: nil), .ed25519(keyID: nil)] {
            let key = try VerificationKey(pem: signing.publicKeyPEM!)
            let token = JWTFactory.token(JWTFactory.claims(), key: signing)
            try JWS.parse(token).verifySignature(using: key)
        }
    }

    @Test func pkcs1RSAPublicKey() throws {
        let signing = JWTFactory.SigningKey.rsa(keyID: nil)
        guard case .rsa(let key) = signing.material else { return }
        let der = key.publicKey.pkcs1DERRepresentation
        let pem = "-----BEGIN RSA PUBLIC KEY-----\n" + Data(der).base64EncodedString(options: .lineLength64Characters)
            + "\n-----END RSA PUBLIC KEY-----\n"
        let verification = try VerificationKey(pem: pem)
        try JWS.parse(JWTFactory.token(JWTFactory.claims(), key: signing)).verifySignature(using: verification)
    }

    @Test func certificateKeys() throws {
        let signing = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("issuer.example.com") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(signing.publicKey),
            notValidBefore: Date(timeIntervalSinceNow: -60), notValidAfter: Date(timeIntervalSinceNow: 3600),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: .init(),
            issuerPrivateKey: .init(signing))
        let pem = try certificate.serializeAsPEM().pemString
        let key = try VerificationKey(pem: pem + "\ntrailing text is ignored\n")
        #expect(key.keyType == .ec)
        let factoryKey = JWTFactory.SigningKey(.p256(signing), keyID: nil)
        try JWS.parse(JWTFactory.token(JWTFactory.claims(), key: factoryKey)).verifySignature(using: key)
        // The same certificate as an x5c member of a JWK is not an RSA key, so it is refused there.
        let der = try certificate.serializeAsPEM().derBytes
        #expect(Self.code(#"{"kty":"RSA","x5c":[""# + Data(der).base64EncodedString() + #""]}"#) == .badKey)
    }

    @Test func badPEM() {
        #expect(throws: JOSEError.self) { try VerificationKey(pem: "no pem here") }
        #expect(throws: JOSEError.self) { try VerificationKey(pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----") }
        #expect(throws: JOSEError.self) { try VerificationKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----") }
        let weak = JWTFactory.SigningKey.rsa(bits: 1024, keyID: nil)
        #expect(throws: JOSEError(.weakKey, "rsa key is 1024 bits; at least 2048 are required")) {
            try VerificationKey(pem: weak.publicKeyPEM!)
        }
    }

    @Test func keysInAnyFormOPAAccepts() throws {
        let signing = JWTFactory.SigningKey.p256(keyID: "k")
        let token = try JWS.parse(JWTFactory.token(JWTFactory.claims(), key: signing))
        for text in [signing.publicKeyPEM!, signing.publicJWK(), JWTFactory.jwks([signing])] {
            try VerificationKeys.parse(text).verify(token)
        }
    }
}
