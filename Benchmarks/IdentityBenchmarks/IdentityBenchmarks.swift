import Benchmark
import Crypto
import Foundation
import Identity
import JOSE
import PolicyCore
import _CryptoExtras

// The cost of verifying a JWT per algorithm (compact parsing, claims, key selection, signature), the raw
// signature primitive underneath it (to compare with `openssl speed`), and a request authenticated from the
// verified-token cache.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 200_000
    )
    let fixture = Fixture()

    for (alg, token) in fixture.tokens {
        Benchmark("jwt verify/\(alg)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try? JWTVerifier.verify(token, keys: fixture.keys, validation: fixture.validation, now: Fixture.now))
            }
        }
    }

    // The stages around the signature: splitting and decoding the compact form, then reading the claims.
    let rs256 = fixture.tokens[0].1
    Benchmark("stage/JWS.parse") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? JWS.parse(rs256)) }
    }
    Benchmark("stage/decode (parse, crit, alg, claims)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? JWTVerifier.decode(rs256)) }
    }

    // The primitive alone, over a precomputed digest, as `openssl speed` measures it.
    Benchmark("primitive/RSA-2048 PKCS#1 v1.5 verify") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(fixture.rsaPublic.isValidSignature(fixture.rsaSignature, for: fixture.digest, padding: .insecurePKCS1v1_5))
        }
    }
    Benchmark("primitive/ECDSA P-256 verify") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(fixture.p256Public.isValidSignature(fixture.p256Signature, for: fixture.digest))
        }
    }

    Benchmark("primitive/Ed25519 verify") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(fixture.edPublic.isValidSignature(fixture.edSignature, for: fixture.message))
        }
    }

    let cached = RequestAuthenticator(rules: [fixture.rule])
    let request = AuthenticationRequest(headers: [("Authorization", "Bearer " + fixture.tokens[0].1)], url: "https://api.example.com/items")
    _ = cached.authenticateWithoutFetching(request, now: Fixture.now)
    Benchmark("authenticate/cache hit (RS256 token)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(cached.authenticateWithoutFetching(request, now: Fixture.now))
        }
    }
    let uncached = RequestAuthenticator(rules: [fixture.rule], options: .init(cacheCapacity: 0))
    Benchmark("authenticate/no cache (RS256 token)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(uncached.authenticateWithoutFetching(request, now: Fixture.now))
        }
    }
}

/// Keys of every type, a token per algorithm with realistic claims, and the raw material for the primitives.
struct Fixture: @unchecked Sendable {
    static let now: Double = 1_750_000_000
    static let issuer = "https://accounts.example.com"

    let keys: JWKSet
    let validation = JWTValidation(issuer: issuer, audiences: ["api.example.com"])
    let tokens: [(String, String)]
    let rule: JWTRule
    let rsaPublic: _RSA.Signing.PublicKey
    let rsaSignature: _RSA.Signing.RSASignature
    let p256Public: P256.Signing.PublicKey
    let p256Signature: P256.Signing.ECDSASignature
    let digest: SHA256Digest
    let message: [UInt8]
    let edPublic: Curve25519.Signing.PublicKey
    let edSignature: Data

    init() {
        let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
        let p256 = P256.Signing.PrivateKey()
        let p384 = P384.Signing.PrivateKey()
        let p521 = P521.Signing.PrivateKey()
        let ed = Curve25519.Signing.PrivateKey()
        let secret = SymmetricKey(size: .bits256)
        let rsaPrimitives = try! rsa.publicKey.getKeyPrimitives()
        func ec(_ kid: String, _ crv: String, _ point: Data) -> String {
            let size = (point.count - 1) / 2
            return #"{"kty":"EC","kid":"\#(kid)","crv":"\#(crv)","x":"\#(Base64URL.encode(point[1...size]))","y":"\#(Base64URL.encode(point[(size + 1)...]))"}"#
        }
        let jwks = "{\"keys\":[" + [
            #"{"kty":"RSA","kid":"rsa","n":"\#(Base64URL.encode(rsaPrimitives.modulus))","e":"\#(Base64URL.encode(rsaPrimitives.publicExponent))"}"#,
            ec("p256", "P-256", p256.publicKey.x963Representation), ec("p384", "P-384", p384.publicKey.x963Representation),
            ec("p521", "P-521", p521.publicKey.x963Representation),
            #"{"kty":"OKP","kid":"ed","crv":"Ed25519","x":"\#(Base64URL.encode(ed.publicKey.rawRepresentation))"}"#,
            #"{"kty":"oct","kid":"hs","k":"\#(Base64URL.encode(secret.withUnsafeBytes { Array($0) }))"}"#,
        ].joined(separator: ",") + "]}"
        keys = try! JWKSet.parse(jwks)
        rule = JWTRule(issuer: Self.issuer, audiences: ["api.example.com"], keys: .inline(keys))

        let claims = #"{"iss":"\#(Self.issuer)","sub":"248289761001","aud":["api.example.com","web"],"azp":"web-app","iat":1749999000,"exp":1750003600,"scope":"openid profile email","email":"jane@example.com","email_verified":true,"name":"Jane Doe"}"#
        func mint(_ alg: String, _ kid: String, _ sign: ([UInt8]) -> [UInt8]) -> (String, String) {
            let input = Base64URL.encode(#"{"alg":"\#(alg)","kid":"\#(kid)","typ":"JWT"}"#) + "." + Base64URL.encode(claims)
            return (alg, input + "." + Base64URL.encode(sign(Array(input.utf8))))
        }
        func rsaSign(_ padding: _RSA.Signing.Padding, _ bits: Int) -> ([UInt8]) -> [UInt8] {
            { input in
                let signature: _RSA.Signing.RSASignature
                switch bits {
                case 384: signature = try! rsa.signature(for: SHA384.hash(data: input), padding: padding)
                case 512: signature = try! rsa.signature(for: SHA512.hash(data: input), padding: padding)
                default: signature = try! rsa.signature(for: SHA256.hash(data: input), padding: padding)
                }
                return Array(signature.rawRepresentation)
            }
        }
        tokens = [
            mint("RS256", "rsa", rsaSign(.insecurePKCS1v1_5, 256)),
            mint("RS384", "rsa", rsaSign(.insecurePKCS1v1_5, 384)),
            mint("RS512", "rsa", rsaSign(.insecurePKCS1v1_5, 512)),
            mint("PS256", "rsa", rsaSign(.PSS, 256)),
            mint("PS384", "rsa", rsaSign(.PSS, 384)),
            mint("PS512", "rsa", rsaSign(.PSS, 512)),
            mint("ES256", "p256") { Array(try! p256.signature(for: $0).rawRepresentation) },
            mint("ES384", "p384") { Array(try! p384.signature(for: $0).rawRepresentation) },
            mint("ES512", "p521") { Array(try! p521.signature(for: $0).rawRepresentation) },
            mint("EdDSA", "ed") { Array(try! ed.signature(for: $0)) },
            mint("HS256", "hs") { Array(HMAC<SHA256>.authenticationCode(for: $0, using: secret)) },
            mint("HS384", "hs") { Array(HMAC<SHA384>.authenticationCode(for: $0, using: secret)) },
            mint("HS512", "hs") { Array(HMAC<SHA512>.authenticationCode(for: $0, using: secret)) },
        ]
        for (alg, token) in tokens {
            precondition((try? JWTVerifier.verify(token, keys: keys, validation: validation, now: Self.now)) != nil, "\(alg) fixture does not verify")
        }

        message = Array("a message of the size of a token's signing input".utf8)
        digest = SHA256.hash(data: message)
        edPublic = ed.publicKey
        edSignature = try! ed.signature(for: message)
        rsaPublic = rsa.publicKey
        rsaSignature = try! rsa.signature(for: digest, padding: .insecurePKCS1v1_5)
        p256Public = p256.publicKey
        p256Signature = try! p256.signature(for: digest)
    }
}
