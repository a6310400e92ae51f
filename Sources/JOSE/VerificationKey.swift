import Crypto
import Foundation
import _CryptoExtras

/// Key material that can verify JWS signatures: an RSA, EC (P-256, P-384, P-521) or Ed25519 public key, or an HMAC
/// secret. A key verifies only the algorithms its type allows, so an RSA public key is never usable as an HMAC secret.
public struct VerificationKey: Sendable {
    enum Material: @unchecked Sendable {
        case rsa(_RSA.Signing.PublicKey, bits: Int)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
        case hmac(PreparedHMAC)
    }

    /// An HMAC secret with its inner and outer pads already hashed for each hash, so a verification only hashes
    /// the message.
    struct PreparedHMAC {
        let sha256: HMAC<SHA256>
        let sha384: HMAC<SHA384>
        let sha512: HMAC<SHA512>

        init(_ key: SymmetricKey) {
            sha256 = HMAC(key: key)
            sha384 = HMAC(key: key)
            sha512 = HMAC(key: key)
        }
    }

    let material: Material
    /// The one algorithm this key may be used with, when its JWK pinned one with `alg`.
    public let pinnedAlgorithm: JWSAlgorithm?

    init(_ material: Material, pinnedAlgorithm: JWSAlgorithm? = nil) {
        self.material = material
        self.pinnedAlgorithm = pinnedAlgorithm
    }

    /// RSA keys shorter than this are refused (NIST SP 800-131A; RFC 7518 §3.3 requires 2048 bits for RS*).
    public static let minimumRSABits = 2048

    /// The shortest RSA key any caller may lower the floor to: what swift-crypto (and Go, hence OPA) still verify.
    public static let smallestRSABits = 1024

    /// The key's JWK type.
    public var keyType: JWSAlgorithm.KeyType {
        switch material {
        case .rsa: .rsa
        case .p256, .p384, .p521: .ec
        case .ed25519: .okp
        case .hmac: .oct
        }
    }

    /// The algorithms the key's type allows, narrowed to the pinned one when there is one.
    public var algorithms: [JWSAlgorithm] {
        let byType: [JWSAlgorithm]
        switch material {
        case .rsa: byType = [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512]
        case .p256: byType = [.es256]
        case .p384: byType = [.es384]
        case .p521: byType = [.es512]
        case .ed25519: byType = [.edDSA]
        case .hmac: byType = [.hs256, .hs384, .hs512]
        }
        guard let pinnedAlgorithm else { return byType }
        return byType.filter { $0 == pinnedAlgorithm }
    }

    /// Whether the key may verify `algorithm`.
    public func allows(_ algorithm: JWSAlgorithm) -> Bool {
        if let pinnedAlgorithm, pinnedAlgorithm != algorithm { return false }
        switch (material, algorithm) {
        case (.rsa, .rs256), (.rsa, .rs384), (.rsa, .rs512), (.rsa, .ps256), (.rsa, .ps384), (.rsa, .ps512): return true
        case (.p256, .es256), (.p384, .es384), (.p521, .es512): return true
        case (.ed25519, .edDSA): return true
        case (.hmac, .hs256), (.hmac, .hs384), (.hmac, .hs512): return true
        default: return false
        }
    }

    /// "RSA key", "EC P-256 key", ... for messages (never the key itself).
    public var kindDescription: String {
        switch material {
        case .rsa(_, let bits): "\(bits)-bit RSA key"
        case .p256: "EC P-256 key"
        case .p384: "EC P-384 key"
        case .p521: "EC P-521 key"
        case .ed25519: "Ed25519 key"
        case .hmac: "HMAC secret"
        }
    }

    /// The same key, restricted to one algorithm.
    public func pinned(to algorithm: JWSAlgorithm?) -> VerificationKey {
        VerificationKey(material, pinnedAlgorithm: algorithm)
    }

    // MARK: - Making keys

    /// An RSA public key from its modulus and public exponent (big-endian bytes, as in a JWK's `n` and `e`).
    ///
    /// Keys shorter than `minimumBits` are refused as weak. Callers that must accept what OPA accepts (the Rego
    /// `io.jwt.*` builtins) lower it, never below `smallestRSABits`.
    public static func rsa(
        modulus: [UInt8], exponent: [UInt8], minimumBits: Int = minimumRSABits
    ) throws(JOSEError) -> VerificationKey {
        let n = modulus.drop { $0 == 0 }
        let e = exponent.drop { $0 == 0 }
        guard let top = n.first, !e.isEmpty else { throw .badKey("rsa key has an empty modulus or exponent") }
        let bits = (n.count - 1) * 8 + (8 - top.leadingZeroBitCount)
        let floor = max(minimumBits, smallestRSABits)
        guard bits >= floor else {
            throw JOSEError(.weakKey, "rsa key is \(bits) bits; at least \(floor) are required")
        }
        guard e.count <= 8, e.last! & 1 == 1, !(e.count == 1 && e.first! < 3) else {
            throw .badKey("rsa key has an invalid public exponent")
        }
        do {
            // swift-crypto reads keys under 2048 bits only from DER, so those go through their PKCS #1 encoding.
            let key = bits >= 2048
                ? try _RSA.Signing.PublicKey(n: Array(n), e: Array(e))
                : try _RSA.Signing.PublicKey(unsafeDERRepresentation: pkcs1DER(modulus: Array(n), exponent: Array(e)))
            return VerificationKey(.rsa(key, bits: bits))
        } catch {
            throw .badKey("rsa key could not be read")
        }
    }

    /// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017 §A.1.1) in DER, for
    /// big-endian magnitudes without leading zeros.
    static func pkcs1DER(modulus: [UInt8], exponent: [UInt8]) -> [UInt8] {
        func length(_ count: Int) -> [UInt8] {
            guard count >= 0x80 else { return [UInt8(count)] }
            var bytes: [UInt8] = []
            var rest = count
            while rest > 0 {
                bytes.insert(UInt8(rest & 0xFF), at: 0)
                rest >>= 8
            }
            return [0x80 | UInt8(bytes.count)] + bytes
        }
        func integer(_ magnitude: [UInt8]) -> [UInt8] {
            // A set top bit would read as negative: DER adds a zero byte in front.
            let content = (magnitude.first ?? 0) & 0x80 != 0 ? [0] + magnitude : magnitude
            return [0x02] + length(content.count) + content
        }
        let body = integer(modulus) + integer(exponent)
        return [0x30] + length(body.count) + body
    }

    /// An EC public key from its curve and affine coordinates (big-endian, full length for the curve).
    public static func ec(curve: String, x: [UInt8], y: [UInt8]) throws(JOSEError) -> VerificationKey {
        let size: Int
        switch curve {
        case "P-256": size = 32
        case "P-384": size = 48
        case "P-521": size = 66
        default: throw JOSEError(.unsupportedKey, "ec curve `\(curve)` is not supported")
        }
        guard x.count == size, y.count == size else {
            throw .badKey("ec key coordinates for \(curve) must be \(size) bytes each")
        }
        let point = [0x04] + x + y
        do {
            switch curve {
            case "P-256": return VerificationKey(.p256(try P256.Signing.PublicKey(x963Representation: point)))
            case "P-384": return VerificationKey(.p384(try P384.Signing.PublicKey(x963Representation: point)))
            default: return VerificationKey(.p521(try P521.Signing.PublicKey(x963Representation: point)))
            }
        } catch {
            throw .badKey("ec key is not a point on \(curve)")
        }
    }

    /// An Ed25519 public key from its 32 raw bytes.
    public static func ed25519(_ raw: [UInt8]) throws(JOSEError) -> VerificationKey {
        guard raw.count == 32 else { throw .badKey("ed25519 key must be 32 bytes") }
        do {
            return VerificationKey(.ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: raw)))
        } catch {
            throw .badKey("ed25519 key could not be read")
        }
    }

    /// An HMAC secret (a JWK of type `oct`). Only HS256, HS384 and HS512 tokens can use it.
    public static func hmac(secret: [UInt8]) throws(JOSEError) -> VerificationKey {
        guard !secret.isEmpty else { throw .badKey("hmac secret is empty") }
        return VerificationKey(.hmac(PreparedHMAC(SymmetricKey(data: secret))))
    }

    /// Wraps keys made with swift-crypto (the Rego builtins and tests build keys this way).
    public init(_ key: P256.Signing.PublicKey) { self.init(.p256(key)) }
    public init(_ key: P384.Signing.PublicKey) { self.init(.p384(key)) }
    public init(_ key: P521.Signing.PublicKey) { self.init(.p521(key)) }
    public init(_ key: Curve25519.Signing.PublicKey) { self.init(.ed25519(key)) }

    /// Wraps an RSA key; refused when it is shorter than `minimumBits` (2048 unless the caller lowers it).
    public init(_ key: _RSA.Signing.PublicKey, minimumBits: Int = minimumRSABits) throws(JOSEError) {
        let floor = max(minimumBits, Self.smallestRSABits)
        guard key.keySizeInBits >= floor else {
            throw JOSEError(.weakKey, "rsa key is \(key.keySizeInBits) bits; at least \(floor) are required")
        }
        self.init(.rsa(key, bits: key.keySizeInBits))
    }

    // MARK: - Verifying

    /// Whether `signature` is a valid `algorithm` signature of `message` under this key. False (never a crash) for a
    /// signature of the wrong length or an algorithm the key does not allow.
    public func isValidSignature(_ signature: [UInt8], for message: ArraySlice<UInt8>, algorithm: JWSAlgorithm) -> Bool {
        guard allows(algorithm) else { return false }
        return message.withUnsafeBytes { messageBytes in
            verify(signature, messageBytes, algorithm)
        }
    }

    public func isValidSignature(_ signature: [UInt8], for message: [UInt8], algorithm: JWSAlgorithm) -> Bool {
        isValidSignature(signature, for: message[...], algorithm: algorithm)
    }

    private func verify(_ signature: [UInt8], _ message: UnsafeRawBufferPointer, _ algorithm: JWSAlgorithm) -> Bool {
        switch material {
        case .rsa(let key, _):
            // RSA signatures are exactly as long as the modulus (RFC 8017 §8.2.2 step 1).
            guard signature.count == (key.keySizeInBits + 7) / 8 else { return false }
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            let padding: _RSA.Signing.Padding
            switch algorithm {
            case .rs256, .rs384, .rs512: padding = .insecurePKCS1v1_5
            default: padding = .PSS
            }
            switch algorithm.hash {
            case .sha256: return key.isValidSignature(rsaSignature, for: SHA256.hash(data: message), padding: padding)
            case .sha384: return key.isValidSignature(rsaSignature, for: SHA384.hash(data: message), padding: padding)
            case .sha512: return key.isValidSignature(rsaSignature, for: SHA512.hash(data: message), padding: padding)
            }
        case .p256(let key):
            guard signature.count == 64, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(sig, for: SHA256.hash(data: message))
        case .p384(let key):
            guard signature.count == 96, let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(sig, for: SHA384.hash(data: message))
        case .p521(let key):
            guard signature.count == 132, let sig = try? P521.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(sig, for: SHA512.hash(data: message))
        case .ed25519(let key):
            guard signature.count == 64 else { return false }
            return key.isValidSignature(signature, for: message)
        case .hmac(let prepared):
            // `==` between a MAC and bytes compares in constant time.
            switch algorithm.hash {
            case .sha256:
                var mac = prepared.sha256
                mac.update(data: message)
                return mac.finalize() == signature
            case .sha384:
                var mac = prepared.sha384
                mac.update(data: message)
                return mac.finalize() == signature
            case .sha512:
                var mac = prepared.sha512
                mac.update(data: message)
                return mac.finalize() == signature
            }
        }
    }
}
