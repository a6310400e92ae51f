import Foundation
import PolicyCore

/// One JSON Web Key (RFC 7517) usable for verifying signatures.
public struct JWK: Sendable {
    public let keyType: JWSAlgorithm.KeyType
    public let keyID: String?
    /// The JWK's `alg`, which pins the key to that one algorithm.
    public let algorithm: JWSAlgorithm?
    /// The key material, already restricted to `algorithm` when one is pinned.
    public let key: VerificationKey
    /// Whether the JWK also carried private members (`d`, `p`, ...); only the public part is ever used.
    public let hasPrivateMembers: Bool

    /// A key that did not come from a JWK document (a PEM key, a key made in code).
    public init(key: VerificationKey, keyID: String? = nil) {
        self.init(keyType: key.keyType, keyID: keyID, algorithm: key.pinnedAlgorithm, key: key, hasPrivateMembers: false)
    }

    init(keyType: JWSAlgorithm.KeyType, keyID: String?, algorithm: JWSAlgorithm?, key: VerificationKey, hasPrivateMembers: Bool) {
        self.keyType = keyType
        self.keyID = keyID
        self.algorithm = algorithm
        self.key = key
        self.hasPrivateMembers = hasPrivateMembers
    }

    /// Members that only private keys have.
    static let privateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth"]

    /// Reads a JWK object. Keys whose `use` is not `sig`, whose `key_ops` lack `verify`, or whose `alg` is not a
    /// signature algorithm for their type are refused, as are RSA keys under 2048 bits.
    public static func parse(_ value: Value) throws(JOSEError) -> JWK {
        guard case .object = value else { throw .badKey("a jwk must be a JSON object") }
        guard let ktyValue = value["kty"] else { throw .badKey("jwk has no `kty`") }
        guard let kty = ktyValue.stringValue else { throw .badKey("jwk `kty` is not a string") }
        guard let keyType = JWSAlgorithm.KeyType(rawValue: kty) else {
            throw JOSEError(.unsupportedKey, "jwk type `\(kty)` is not supported")
        }
        let keyID = try optionalString(value, "kid")
        if let use = try optionalString(value, "use"), use != "sig" {
            throw JOSEError(.unsupportedKey, "jwk `use` is `\(use)`; only `sig` keys verify signatures")
        }
        if let ops = value["key_ops"] {
            guard let list = ops.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                throw .badKey("jwk `key_ops` is not a list of strings")
            }
            guard list.contains(.string("verify")) else {
                throw JOSEError(.unsupportedKey, "jwk `key_ops` does not include `verify`")
            }
        }
        var algorithm: JWSAlgorithm?
        if let alg = try optionalString(value, "alg") {
            guard let parsed = JWSAlgorithm(name: alg) else {
                throw JOSEError(.unsupportedKey, "jwk `alg` `\(alg)` is not a supported signature algorithm")
            }
            guard parsed.keyType == keyType else {
                throw .badKey("jwk `alg` `\(alg)` does not suit a key of type `\(kty)`")
            }
            algorithm = parsed
        }

        let key: VerificationKey
        switch keyType {
        case .rsa:
            if value["n"] == nil && value["e"] == nil, let chain = value["x5c"] {
                key = try certificateKey(chain)
                guard key.keyType == .rsa else { throw .badKey("jwk `x5c` certificate does not hold an RSA key") }
            } else {
                key = try VerificationKey.rsa(modulus: bytes(value, "n"), exponent: bytes(value, "e"))
            }
        case .ec:
            guard let curve = try optionalString(value, "crv") else { throw .badKey("ec jwk has no `crv`") }
            key = try VerificationKey.ec(curve: curve, x: bytes(value, "x"), y: bytes(value, "y"))
            if let algorithm, !key.allows(algorithm) {
                throw .badKey("jwk `alg` `\(algorithm)` does not suit curve `\(curve)`")
            }
        case .okp:
            guard let curve = try optionalString(value, "crv") else { throw .badKey("okp jwk has no `crv`") }
            guard curve == "Ed25519" else {
                throw JOSEError(.unsupportedKey, "okp curve `\(curve)` is not supported; only Ed25519 verifies")
            }
            key = try VerificationKey.ed25519(bytes(value, "x"))
        case .oct:
            key = try VerificationKey.hmac(secret: bytes(value, "k"))
        }
        let hasPrivate = keyType != .oct && privateMembers.contains { value[$0] != nil }
        return JWK(
            keyType: keyType, keyID: keyID, algorithm: algorithm, key: key.pinned(to: algorithm),
            hasPrivateMembers: hasPrivate)
    }

    private static func optionalString(_ value: Value, _ member: String) throws(JOSEError) -> String? {
        guard let field = value[member] else { return nil }
        guard let text = field.stringValue else { throw .badKey("jwk `\(member)` is not a string") }
        return text
    }

    /// A base64url member. Padding is tolerated in keys (some issuers publish it); tokens never get that leeway.
    private static func bytes(_ value: Value, _ member: String) throws(JOSEError) -> [UInt8] {
        guard let text = try optionalString(value, member) else { throw .badKey("jwk has no `\(member)`") }
        var trimmed = Substring(text)
        while trimmed.hasSuffix("=") { trimmed = trimmed.dropLast() }
        guard let decoded = Base64URL.decode(trimmed), !decoded.isEmpty else {
            throw .badKey("jwk `\(member)` is not valid base64url")
        }
        return decoded
    }

    /// The key of the first certificate of an `x5c` chain (standard base64 DER, RFC 7517 §4.7).
    private static func certificateKey(_ chain: Value) throws(JOSEError) -> VerificationKey {
        guard let first = chain.arrayValue?.first?.stringValue, let der = Data(base64Encoded: first) else {
            throw .badKey("jwk `x5c` is not a list of base64 certificates")
        }
        do {
            return try VerificationKey(certificateDER: Array(der))
        } catch where error.code == .badPEM {
            throw .badKey("jwk `x5c` certificate could not be read")
        }
    }
}

/// A JSON Web Key Set (RFC 7517 §5): the keys an issuer signs with.
public struct JWKSet: Sendable {
    /// The usable keys, in document order.
    public let keys: [JWK]
    /// Keys of the document that cannot verify anything, with why; they never take part in verification.
    public let rejected: [Rejected]

    public struct Rejected: Sendable, Hashable {
        /// The key's position in `keys`.
        public var index: Int
        public var keyID: String?
        public var error: JOSEError
    }

    public init(keys: [JWK], rejected: [Rejected] = []) {
        self.keys = keys
        self.rejected = rejected
    }

    /// Reads a JWKS document (`{"keys": [...]}`), or a single JWK object as a set of one.
    public static func parse(_ text: String) throws(JOSEError) -> JWKSet {
        let value: Value
        do {
            value = try JSONReader.parse(text)
        } catch {
            throw JOSEError(.badKeySet, "jwks is not valid JSON: \(error.message) at \(error.line):\(error.column)")
        }
        return try parse(json: value)
    }

    public static func parse(json value: Value) throws(JOSEError) -> JWKSet {
        guard case .object = value else { throw JOSEError(.badKeySet, "jwks is not a JSON object") }
        if value["keys"] == nil, value["kty"] != nil {
            let key = try JWK.parse(value)
            return JWKSet(keys: [key])
        }
        guard let keysValue = value["keys"] else { throw JOSEError(.badKeySet, "jwks has no `keys`") }
        guard let items = keysValue.arrayValue else { throw JOSEError(.badKeySet, "jwks `keys` is not a list") }
        var keys: [JWK] = []
        var rejected: [Rejected] = []
        for (index, item) in items.enumerated() {
            do {
                keys.append(try JWK.parse(item))
            } catch {
                rejected.append(Rejected(index: index, keyID: item["kid"]?.stringValue, error: error))
            }
        }
        return JWKSet(keys: keys, rejected: rejected)
    }

    /// Whether some key carries `kid`.
    public func contains(keyID: String) -> Bool { keys.contains { $0.keyID == keyID } }

    /// The keys that may verify a token with this `alg` and `kid`: with a `kid`, the keys with that id (and keys
    /// without an id); without one, every key whose type allows the algorithm.
    public func candidates(algorithm: JWSAlgorithm, keyID: String?) -> [JWK] {
        keys.filter { jwk in
            guard jwk.key.allows(algorithm) else { return false }
            guard let keyID, let own = jwk.keyID else { return true }
            return own == keyID
        }
    }

    /// Whether some key of the set verifies the token's signature with `algorithm`, whatever the token's `kid`
    /// (OPA's `io.jwt.verify_*` builtins try every key they are given). The header must name `algorithm`.
    public func anyKeyVerifies(_ jws: JWS, algorithm: JWSAlgorithm) -> Bool {
        guard jws.algorithm == algorithm else { return false }
        return keys.contains { $0.key.isValidSignature(jws.signature, for: jws.signingInput, algorithm: algorithm) }
    }

    /// Verifies the token's signature with the first key that accepts it and returns that key.
    ///
    /// Throws `unsupportedAlgorithm` for `none` and unknown algorithms, `noMatchingKey` when no key has the
    /// token's `kid` and type, and `signatureInvalid` when candidate keys exist but none verifies.
    @discardableResult
    public func verify(_ jws: JWS) throws(JOSEError) -> JWK {
        let algorithm = try jws.requireAlgorithm()
        var triedAny = false
        for jwk in keys where jwk.key.allows(algorithm) && (jws.keyID == nil || jwk.keyID == nil || jwk.keyID == jws.keyID) {
            triedAny = true
            if jwk.key.isValidSignature(jws.signature, for: jws.signingInput, algorithm: algorithm) { return jwk }
        }
        guard triedAny else {
            if let kid = jws.keyID, !contains(keyID: kid) {
                throw JOSEError(.noMatchingKey, "jwks has no key with the token's `kid`")
            }
            throw JOSEError(.noMatchingKey, "jwks has no key that can verify `\(algorithm)` signatures")
        }
        throw JOSEError(.signatureInvalid, "jwt signature does not verify")
    }
}
