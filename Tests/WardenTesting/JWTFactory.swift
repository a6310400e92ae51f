import Crypto
import Foundation
import _CryptoExtras

/// Makes signing keys and mints JWTs in tests: every JWS algorithm, tokens with arbitrary headers and claims,
/// and the broken tokens (unsigned, tampered, re-signed with the wrong key) a verifier must refuse.
public struct JWTFactory: Sendable {
    /// A private signing key with the JWK of its public half.
    public struct SigningKey: @unchecked Sendable {
        public enum Material {
            case rsa(_RSA.Signing.PrivateKey)
            case p256(P256.Signing.PrivateKey)
            case p384(P384.Signing.PrivateKey)
            case p521(P521.Signing.PrivateKey)
            case ed25519(Curve25519.Signing.PrivateKey)
            case hmac([UInt8])
        }

        public let material: Material
        public let keyID: String?

        public init(_ material: Material, keyID: String?) {
            self.material = material
            self.keyID = keyID
        }

        /// A 2048-bit RSA key (or `bits`, which may be weak on purpose).
        public static func rsa(bits: Int = 2048, keyID: String? = "rsa-1") -> SigningKey {
            let key = bits >= 2048
                ? try! _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits))
                : try! _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: bits))
            return SigningKey(.rsa(key), keyID: keyID)
        }

        public static func p256(keyID: String? = "ec-256") -> SigningKey { SigningKey(.p256(.init()), keyID: keyID) }
        public static func p384(keyID: String? = "ec-384") -> SigningKey { SigningKey(.p384(.init()), keyID: keyID) }
        public static func p521(keyID: String? = "ec-521") -> SigningKey { SigningKey(.p521(.init()), keyID: keyID) }
        public static func ed25519(keyID: String? = "ed-1") -> SigningKey { SigningKey(.ed25519(.init()), keyID: keyID) }

        public static func hmac(_ secret: String = "a-shared-secret-of-at-least-32-bytes!", keyID: String? = "hs-1")
            -> SigningKey
        {
            SigningKey(.hmac(Array(secret.utf8)), keyID: keyID)
        }

        /// The JWK of the public key (the secret itself for HMAC), as JSON text.
        public func publicJWK(alg: String? = nil, use: String? = nil) -> String {
            var members: [(String, String)] = []
            switch material {
            case .rsa(let key):
                let primitives = try! key.publicKey.getKeyPrimitives()
                members = [("kty", "RSA"), ("n", JWTFactory.base64url(primitives.modulus)),
                           ("e", JWTFactory.base64url(primitives.publicExponent))]
            case .p256(let key):
                members = ecMembers("P-256", Array(key.publicKey.x963Representation))
            case .p384(let key):
                members = ecMembers("P-384", Array(key.publicKey.x963Representation))
            case .p521(let key):
                members = ecMembers("P-521", Array(key.publicKey.x963Representation))
            case .ed25519(let key):
                members = [("kty", "OKP"), ("crv", "Ed25519"), ("x", JWTFactory.base64url(key.publicKey.rawRepresentation))]
            case .hmac(let secret):
                members = [("kty", "oct"), ("k", JWTFactory.base64url(secret))]
            }
            if let keyID { members.append(("kid", keyID)) }
            if let alg { members.append(("alg", alg)) }
            if let use { members.append(("use", use)) }
            return "{" + members.map { "\"\($0.0)\":\"\($0.1)\"" }.joined(separator: ",") + "}"
        }

        private func ecMembers(_ curve: String, _ point: [UInt8]) -> [(String, String)] {
            let size = (point.count - 1) / 2
            return [("kty", "EC"), ("crv", curve), ("x", JWTFactory.base64url(point[1...size])),
                    ("y", JWTFactory.base64url(point[(size + 1)...]))]
        }

        /// The PEM of the public key (`PUBLIC KEY`); nil for HMAC.
        public var publicKeyPEM: String? {
            switch material {
            case .rsa(let key): key.publicKey.pemRepresentation
            case .p256(let key): key.publicKey.pemRepresentation
            case .p384(let key): key.publicKey.pemRepresentation
            case .p521(let key): key.publicKey.pemRepresentation
            case .ed25519(let key): Self.ed25519PEM(Array(key.publicKey.rawRepresentation))
            case .hmac: nil
            }
        }

        /// SubjectPublicKeyInfo for Ed25519: a fixed 12-byte DER prefix, then the 32 key bytes (RFC 8410).
        private static func ed25519PEM(_ raw: [UInt8]) -> String {
            let der: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00] + raw
            return "-----BEGIN PUBLIC KEY-----\n" + Data(der).base64EncodedString() + "\n-----END PUBLIC KEY-----\n"
        }

        /// Signs `input` with `alg`.
        public func sign(_ input: [UInt8], alg: String) -> [UInt8] {
            switch material {
            case .rsa(let key):
                let padding: _RSA.Signing.Padding = alg.hasPrefix("PS") ? .PSS : .insecurePKCS1v1_5
                let signature: _RSA.Signing.RSASignature
                switch alg.suffix(3) {
                case "384": signature = try! key.signature(for: SHA384.hash(data: input), padding: padding)
                case "512": signature = try! key.signature(for: SHA512.hash(data: input), padding: padding)
                default: signature = try! key.signature(for: SHA256.hash(data: input), padding: padding)
                }
                return Array(signature.rawRepresentation)
            case .p256(let key): return Array(try! key.signature(for: input).rawRepresentation)
            case .p384(let key): return Array(try! key.signature(for: input).rawRepresentation)
            case .p521(let key): return Array(try! key.signature(for: input).rawRepresentation)
            case .ed25519(let key): return Array(try! key.signature(for: input))
            case .hmac(let secret): return JWTFactory.hmac(input, secret: secret, alg: alg)
            }
        }

        /// The algorithm a token signed with this key uses by default.
        public var defaultAlgorithm: String {
            switch material {
            case .rsa: "RS256"
            case .p256: "ES256"
            case .p384: "ES384"
            case .p521: "ES512"
            case .ed25519: "EdDSA"
            case .hmac: "HS256"
            }
        }
    }

    public init() {}

    /// A signed compact JWS. `header` members are added to `alg` (and `kid` from the key unless overridden);
    /// `claims` is the payload, written as JSON.
    public static func token(
        _ claims: [String: Any],
        key: SigningKey,
        alg: String? = nil,
        header: [String: Any] = [:]
    ) -> String {
        let algorithm = alg ?? key.defaultAlgorithm
        var fullHeader: [String: Any] = ["alg": algorithm, "typ": "JWT"]
        if let kid = key.keyID { fullHeader["kid"] = kid }
        for (name, value) in header { fullHeader[name] = value }
        let input = base64url(json(fullHeader)) + "." + base64url(json(claims))
        return input + "." + base64url(key.sign(Array(input.utf8), alg: algorithm))
    }

    /// A token with `alg: none` and an empty signature.
    public static func unsignedToken(_ claims: [String: Any]) -> String {
        base64url(json(["alg": "none", "typ": "JWT"])) + "." + base64url(json(claims)) + "."
    }

    /// Claims for a token valid around `now`: issuer, subject, and an expiry an hour later.
    public static func claims(
        issuer: String = "https://issuer.example.com",
        subject: String = "user-1",
        now: Int = Int(Date().timeIntervalSince1970),
        extra: [String: Any] = [:]
    ) -> [String: Any] {
        var claims: [String: Any] = ["iss": issuer, "sub": subject, "iat": now, "exp": now + 3600]
        for (name, value) in extra { claims[name] = value }
        return claims
    }

    /// A JWKS document holding the public JWKs of `keys`.
    public static func jwks(_ keys: [SigningKey]) -> String {
        "{\"keys\":[" + keys.map { $0.publicJWK() }.joined(separator: ",") + "]}"
    }

    /// The token with its payload segment replaced by other claims, keeping the original signature.
    public static func tamperedPayload(_ token: String, claims: [String: Any]) -> String {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        return parts[0] + "." + base64url(json(claims)) + "." + parts[2]
    }

    /// The token with one bit of its signature flipped.
    public static func tamperedSignature(_ token: String) -> String {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        var signature = base64urlDecode(String(parts[2]))
        signature[signature.count / 2] ^= 0x01
        return parts[0] + "." + parts[1] + "." + base64url(signature)
    }

    public static func json(_ object: [String: Any]) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    public static func base64url<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func base64url(_ text: String) -> String { base64url(Array(text.utf8)) }

    public static func base64urlDecode(_ text: String) -> [UInt8] {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Array(Data(base64Encoded: standard) ?? Data())
    }

    static func hmac(_ input: [UInt8], secret: [UInt8], alg: String) -> [UInt8] {
        let key = SymmetricKey(data: secret)
        switch alg {
        case "HS384": return Array(HMAC<SHA384>.authenticationCode(for: input, using: key))
        case "HS512": return Array(HMAC<SHA512>.authenticationCode(for: input, using: key))
        default: return Array(HMAC<SHA256>.authenticationCode(for: input, using: key))
        }
    }
}
