import Crypto
import Foundation
import PolicyCore
import Rego
import Testing
import WardenTesting

/// The `io.jwt.*` builtins on tokens minted here with fresh keys (the compliance cases hold OPA's answers for
/// fixed ones).
@Suite("io.jwt builtins")
struct TokenBuiltinTests {
    static let rsa = JWTFactory.SigningKey.rsa(keyID: nil)
    static let otherRSA = JWTFactory.SigningKey.rsa(keyID: nil)
    static let p256 = JWTFactory.SigningKey.p256(keyID: nil)
    static let p384 = JWTFactory.SigningKey.p384(keyID: nil)
    static let p521 = JWTFactory.SigningKey.p521(keyID: nil)
    static let ed25519 = JWTFactory.SigningKey.ed25519(keyID: nil)
    static let secret = "a-shared-secret"

    /// Seconds of the builtins' test clock (`testContext`).
    static let nowSeconds = Int(testContext.nowNanoseconds / 1_000_000_000)

    static func claims(_ extra: [String: Any] = [:]) -> [String: Any] {
        var claims: [String: Any] = ["iss": "https://issuer.example", "sub": "alice", "aud": "api",
                                     "nbf": nowSeconds - 60, "exp": nowSeconds + 3600]
        for (name, value) in extra { claims[name] = value }
        return claims
    }

    static func key(for algorithm: String) -> JWTFactory.SigningKey {
        switch algorithm {
        case "ES256": p256
        case "ES384": p384
        case "ES512": p521
        case "EdDSA": ed25519
        default: rsa
        }
    }

    static func object(_ members: [String: Value]) -> Value { .object(members) }

    @Test(arguments: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"])
    func everyAlgorithmWithEveryKeyForm(algorithm: String) {
        let key = Self.key(for: algorithm)
        let builtin = "io.jwt.verify_" + algorithm.lowercased()
        let token = JWTFactory.token(Self.claims(), key: key, alg: algorithm)
        let other = key.defaultAlgorithm == "RS256" ? Self.otherRSA : Self.rsa
        for form in [key.publicKeyPEM!, key.publicJWK(), JWTFactory.jwks([other, key])] {
            #expect(call(builtin, .string(token), .string(form)) == .value(true), "\(form)")
        }
        #expect(call(builtin, .string(JWTFactory.tamperedSignature(token)), .string(key.publicKeyPEM!))
            == .value(false))
        let tampered = JWTFactory.tamperedPayload(token, claims: Self.claims(["sub": "mallory"]))
        #expect(call(builtin, .string(tampered), .string(key.publicKeyPEM!)) == .value(false))
        #expect(call(builtin, .string(token), .string(other.publicKeyPEM!)) == .value(false))
        #expect(call(builtin, .string(token), .string(JWTFactory.jwks([other]))) == .value(false))

        let constraints = Self.object(["cert": .string(key.publicJWK()), "aud": "api"])
        guard case .value(.array(let answer)) = call("io.jwt.decode_verify", .string(token), constraints) else {
            Issue.record("decode_verify gave no array")
            return
        }
        #expect(answer.first == .bool(true))
        #expect(answer.last?["sub"] == .string("alice"))
    }

    @Test(arguments: ["HS256", "HS384", "HS512"])
    func hmacAlgorithms(algorithm: String) {
        let key = JWTFactory.SigningKey.hmac(Self.secret, keyID: nil)
        let builtin = "io.jwt.verify_" + algorithm.lowercased()
        let token = JWTFactory.token(Self.claims(), key: key, alg: algorithm)
        #expect(call(builtin, .string(token), .string(Self.secret)) == .value(true))
        #expect(call(builtin, .string(token), .string("another secret")) == .value(false))
        #expect(call(builtin, .string(JWTFactory.tamperedSignature(token)), .string(Self.secret)) == .value(false))
        let other = algorithm == "HS256" ? "io.jwt.verify_hs512" : "io.jwt.verify_hs256"
        #expect(call(other, .string(token), .string(Self.secret)) == .value(false))
        // The secret's bytes key the HMAC: an oct JWK of them verifies under decode_verify.
        let jwk = "{\"kty\":\"oct\",\"k\":\"\(JWTFactory.base64url(Self.secret))\"}"
        let answer = call("io.jwt.decode_verify", .string(token), Self.object(["cert": .string(jwk), "aud": "api"]))
        guard case .value(.array(let parts)) = answer else { Issue.record("\(answer)"); return }
        #expect(parts.first == .bool(true))
    }

    @Test func decodeGivesHeaderClaimsAndSignatureHex() {
        let key = JWTFactory.SigningKey.hmac(Self.secret, keyID: "k1")
        let token = JWTFactory.token(["sub": "alice", "n": 1.5], key: key)
        let signature = JWTFactory.base64urlDecode(String(token.split(separator: ".")[2]))
        let hex = signature.map { String(format: "%02x", $0) }.joined()
        #expect(call("io.jwt.decode", .string(token)) == .value(.array([
            Self.object(["alg": "HS256", "typ": "JWT", "kid": "k1"]),
            Self.object(["sub": "alice", "n": .double(1.5)]),
            .string(hex),
        ])))
        // A token carrying a token (cty JWT) decodes to the inner one.
        let nested = JWTFactory.token([:], key: key, header: ["cty": "JWT"])
        let outer = nested.split(separator: ".")
        let wrapped = outer[0] + "." + JWTFactory.base64url("\"" + token + "\"") + "." + outer[2]
        #expect(call("io.jwt.decode", .string(wrapped)) == call("io.jwt.decode", .string(token)))
    }

    @Test func malformedTokensAreErrors() {
        let header = JWTFactory.base64url("{\"alg\":\"HS256\"}")
        let claims = JWTFactory.base64url("{\"sub\":\"a\"}")
        let cases: [(String, Outcome)] = [
            ("abc", builtinError("encoded JWT had no period separators")),
            ("a.b", builtinError("encoded JWT must have 3 sections, found 2")),
            ("a.b.c.d", builtinError("encoded JWT must have 3 sections, found 4")),
            ("*\(header.dropFirst()).\(claims).",
             builtinError("JWT header had invalid encoding: illegal base64 data at input byte 0")),
            ("*\(header).\(claims).", builtinError("JWT header had invalid encoding: illegal base64url string: *\(header)")),
            ("\(header)x.\(claims).", builtinError("JWT header had invalid encoding: illegal base64url string: \(header)x")),
            ("\(JWTFactory.base64url("[1]")).\(claims).", builtinError("bad JWT header: decoded JSON type was not an Object")),
            ("\(JWTFactory.base64url("{\"enc\":\"A128GCM\"}")).\(claims).",
             builtinError("JWT is a JWE object, which is not supported")),
            ("\(header).\(JWTFactory.base64url("hello")).",
             builtinError("invalid JSON: invalid character 'h' looking for beginning of value")),
            ("\(header).\(claims).a", builtinError("JWT signature had invalid encoding: illegal base64url string: a")),
        ]
        for (token, want) in cases {
            #expect(call("io.jwt.decode", .string(token)) == want, "\(token)")
        }
        #expect(call("io.jwt.decode", 5) == typeError("operand 1 must be string but got number"))
        #expect(call("io.jwt.verify_hs256", "a.b.c", 5) == typeError("operand 2 must be string but got number"))
        #expect(call("io.jwt.decode_verify", "a.b.c", "x") == typeError("operand 2 must be object but got string"))
    }

    @Test func keysOPARefuses() {
        let token = JWTFactory.token(Self.claims(), key: Self.rsa)
        let pem = Self.rsa.publicKeyPEM!
        let jwkPrefix = "failed to parse a JWK key (set): jwk.ParseString: failed to parse string: jwk.Parse: "
        let cases: [(String, Outcome)] = [
            (pem + "\n\n", builtinError("extra data after a PEM certificate block")),
            (pem.replacingOccurrences(of: "PUBLIC KEY", with: "RSA PUBLIC KEY"),
             builtinError("failed to extract a Key from the PEM certificate")),
            ("secret", builtinError(jwkPrefix + "failed to parse sole key: jwk.ParseKey: jwk.Parse: failed to probe "
                + "data: probe: failed to unmarshal data: invalid character 's' looking for beginning of value")),
            ("{\"kty\":\"RSA\"}", builtinError(jwkPrefix + "failed to parse sole key: jwk.ParseKey: failed to unmarshal "
                + "JSON into key (*jwk.rsaPublicKey): failed to unmarshal JSON into key (*jwk.rsaPublicKey): required "
                + "field e is missing")),
            ("{\"keys\":{}}", builtinError(jwkPrefix + "failed to unmarshal JWK set: failed to decode \"keys\": expected "
                + "'[' but got {")),
        ]
        // Twice: the second answer comes from the key cache and must be the same.
        for (key, want) in cases + cases {
            #expect(call("io.jwt.verify_rs256", .string(token), .string(key)) == want, "\(key)")
        }
        // Keys OPA reads but that verify nothing answer false.
        for key in ["{\"keys\":[]}", "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}", JWTFactory.jwks([Self.p256])] {
            #expect(call("io.jwt.verify_rs256", .string(token), .string(key)) == .value(false), "\(key)")
        }
    }

    @Test func oneThousandTwentyFourBitRSAKeysVerify() {
        let weak = JWTFactory.SigningKey.rsa(bits: 1024, keyID: nil)
        let token = JWTFactory.token(Self.claims(), key: weak)
        #expect(call("io.jwt.verify_rs256", .string(token), .string(weak.publicKeyPEM!)) == .value(true))
        #expect(call("io.jwt.verify_rs256", .string(token), .string(weak.publicJWK())) == .value(true))
    }

    @Test func keyIDsChooseTheKey() {
        let signing = JWTFactory.SigningKey.rsa(keyID: "k2")
        guard case .rsa(let privateKey) = signing.material else { return }
        let token = JWTFactory.token(Self.claims(), key: signing)
        let right = JWTFactory.SigningKey(.rsa(privateKey), keyID: "k2").publicJWK()
        let wrong = JWTFactory.SigningKey(.rsa(privateKey), keyID: "k1").publicJWK()
        let other = { (kid: String) in JWTFactory.SigningKey(Self.otherRSA.material, keyID: kid).publicJWK() }
        func verify(_ keys: [String]) -> Outcome {
            call("io.jwt.verify_rs256", .string(token), .string("{\"keys\":[" + keys.joined(separator: ",") + "]}"))
        }
        #expect(verify([other("k1"), right]) == .value(true))
        // The key with the token's kid decides alone, even when another key would verify.
        #expect(verify([wrong, other("k2")]) == .value(false))
        // No key with that kid: every key is tried.
        #expect(verify([other("k1"), wrong]) == .value(true))
    }

    @Test func decodeVerifyTimes() {
        let key = JWTFactory.SigningKey.hmac(Self.secret, keyID: nil)
        let exp = 4_102_444_800, nbf = 1_000_000_000
        let token = JWTFactory.token(Self.claims(["exp": exp, "nbf": nbf]), key: key)
        func valid(_ time: Value?) -> Bool? {
            var constraints: [String: Value] = ["secret": .string(Self.secret), "aud": "api"]
            constraints["time"] = time
            guard case .value(.array(let parts)) = call("io.jwt.decode_verify", .string(token), Self.object(constraints))
            else { return nil }
            return parts.first?.boolValue
        }
        let second: Int64 = 1_000_000_000
        #expect(valid(.number(Number(Int64(exp) * second))) == false)
        #expect(valid(.number(Number(Int64(exp) * second - 1_000_000))) == true)
        #expect(valid(.number(Number(Int64(nbf) * second))) == true)
        #expect(valid(.number(Number(Int64(nbf - 1) * second))) == false)
        // Times are doubles: a nanosecond before not-before rounds to it.
        #expect(valid(.number(Number(Int64(nbf) * second - 1))) == true)
        // Without a time, the query's clock.
        #expect(valid(nil) == true)
        let expired = JWTFactory.token(Self.claims(["exp": Self.nowSeconds]), key: key)
        let answer = call("io.jwt.decode_verify", .string(expired), Self.object(["secret": .string(Self.secret), "aud": "api"]))
        #expect(answer == .value(.array([false, .object([Value: Value]()), .object([Value: Value]())])))

        #expect(valid("soon") == nil)
        #expect(call("io.jwt.decode_verify", .string(token), Self.object(["secret": "s", "time": -1]))
            == builtinError("token time constraint: must not be negative"))
        let badExpiry = JWTFactory.token(Self.claims(["exp": "2100"]), key: key)
        #expect(call("io.jwt.decode_verify", .string(badExpiry), Self.object(["secret": .string(Self.secret), "aud": "api"]))
            == builtinError("exp value must be a number"))
    }

    @Test func decodeVerifyClaimsAndConstraints() {
        let key = JWTFactory.SigningKey.hmac(Self.secret, keyID: nil)
        func valid(_ claims: [String: Any], _ constraints: [String: Value]) -> Bool? {
            let token = JWTFactory.token(Self.claims(claims), key: key)
            var all: [String: Value] = ["secret": .string(Self.secret)]
            for (name, value) in constraints { all[name] = value }
            guard case .value(.array(let parts)) = call("io.jwt.decode_verify", .string(token), Self.object(all))
            else { return nil }
            return parts.first?.boolValue
        }
        #expect(valid([:], ["aud": "api", "iss": "https://issuer.example"]) == true)
        #expect(valid([:], ["aud": "api", "iss": "https://other.example"]) == false)
        #expect(valid([:], [:]) == false)  // an audience claim needs an audience constraint
        #expect(valid(["aud": ["web", "api"]], ["aud": "api"]) == true)
        #expect(valid(["aud": ["web"]], ["aud": "api"]) == false)
        #expect(valid(["aud": 1], ["aud": "1"]) == false)
        #expect(valid([:], ["aud": "api", "alg": "HS256"]) == true)
        #expect(valid([:], ["aud": "api", "alg": "RS256"]) == false)

        let token = JWTFactory.token(Self.claims(), key: key)
        let errors: [([String: Value], String)] = [
            (["secret": "s", "foo": 1], "unknown token validation constraint: foo"),
            (["zzz": 1, "alg": 1], "alg constraint: must be a string"),
            (["cert": 1], "cert constraint: must be a string"),
            (["secret": "s", "cert": .string(Self.rsa.publicKeyPEM!)], "duplicate key constraints"),
            (["secret": ""], "no key constraint"),
        ]
        for (constraints, message) in errors {
            #expect(call("io.jwt.decode_verify", .string(token), Self.object(constraints)) == builtinError(message))
        }
    }

    @Test func signedTokensVerify() throws {
        let oct = "{\"kty\":\"oct\",\"k\":\"\(JWTFactory.base64url(Self.secret))\"}"
        let header = "{\"alg\":\"HS256\"}", payload = "{\"sub\":\"alice\"}"
        let token = call("io.jwt.encode_sign_raw", .string(header), .string(payload), .string(oct))
        let input = JWTFactory.base64url(header) + "." + JWTFactory.base64url(payload)
        let mac = JWTFactory.SigningKey.hmac(Self.secret).sign(Array(input.utf8), alg: "HS256")
        #expect(token == .value(.string(input + "." + JWTFactory.base64url(mac))))

        // An EC private JWK: the public members and `d`.
        guard case .p256(let privateKey) = Self.p256.material else { return }
        let publicJWK = Self.p256.publicJWK()
        let privateJWK = publicJWK.dropLast() + ",\"d\":\"\(JWTFactory.base64url(privateKey.rawRepresentation))\"}"
        let signed = call("io.jwt.encode_sign", Self.object(["alg": "ES256"]), Self.object(["sub": "alice"]),
                          try JSONReader.parse(String(privateJWK)))
        guard case .value(.string(let es256)) = signed else { Issue.record("\(signed)"); return }
        #expect(call("io.jwt.verify_es256", .string(es256), .string(Self.p256.publicKeyPEM!)) == .value(true))
        // A private JWK signs but never verifies through verify_*, as in OPA.
        #expect(call("io.jwt.verify_es256", .string(es256), .string(String(privateJWK))) == .value(false))

        #expect(call("io.jwt.encode_sign_raw", .string(header), .string(payload), .string(publicJWK))
            == builtinError("jwsbb.Sign: invalid key type *jwk.ecdsaPublicKey. []byte is required: keyconv: failed to "
                + "produce []byte from *jwk.ecdsaPublicKey: jwk.Export: no suitable exporter found for key type "
                + "'*jwk.ecdsaPublicKey'"))
        #expect(call("io.jwt.encode_sign_raw", "{\"alg\":\"none\"}", .string(payload), .string(oct))
            == builtinError("unknown JWS algorithm: none"))
    }

    @Test func strictModeDecidesWhetherAFailingCallIsAnError() throws {
        let policy = try compile("""
            package test

            default allow := false

            allow if io.jwt.verify_rs256(input.token, input.key)

            deny if not io.jwt.verify_rs256(input.token, input.key)
            """)
        let token = JWTFactory.token(Self.claims(), key: Self.rsa)
        let input = Self.object(["token": .string(token), "key": "not a key"])
        #expect(try value(policy, "data.test.allow", input: input) == .value(false))
        #expect(try value(policy, "data.test.deny", input: input) == .value(true))
        let strict = RegoEvaluationOptions(strictBuiltinErrors: true)
        guard case .error(let diagnostic) = try value(policy, "data.test.allow", input: input, options: strict) else {
            Issue.record("strict mode gave no error")
            return
        }
        #expect(diagnostic.code == "eval_builtin_error")
        #expect(diagnostic.message.hasPrefix("io.jwt.verify_rs256: failed to parse a JWK key (set)"))
        let good = Self.object(["token": .string(token), "key": .string(Self.rsa.publicKeyPEM!)])
        #expect(try value(policy, "data.test.allow", input: good, options: strict) == .value(true))
    }
}
