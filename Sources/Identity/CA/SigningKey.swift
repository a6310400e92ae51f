import Crypto
import JOSE
import X509
import _CryptoExtras

/// The kinds of key the CA makes, for itself and for the workloads it issues to.
public enum KeyAlgorithm: String, Sendable, Hashable, CaseIterable {
    case ecdsaP256 = "ecdsa-p256"
    case rsa2048 = "rsa-2048"
    case rsa3072 = "rsa-3072"
}

/// A private key that signs certificates, CSRs and bootstrap tokens: ECDSA P-256 or RSA (2048 bits or more).
/// swift-crypto holds the key; swift-certificates signs with it.
public struct SigningKey: Sendable {
    enum Material: Sendable {
        case p256(P256.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)
    }

    let material: Material

    /// A new random key.
    public init(_ algorithm: KeyAlgorithm = .ecdsaP256) throws(CAError) {
        switch algorithm {
        case .ecdsaP256:
            material = .p256(P256.Signing.PrivateKey())
        case .rsa2048, .rsa3072:
            do {
                let bits = algorithm == .rsa2048 ? 2048 : 3072
                material = .rsa(try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits)))
            } catch {
                throw CAError(.badKey, "cannot make an rsa key: \(error)")
            }
        }
    }

    /// Reads a PEM private key: `PRIVATE KEY` (PKCS #8), `EC PRIVATE KEY` (SEC 1) or `RSA PRIVATE KEY` (PKCS #1).
    public init(pem: String) throws(CAError) {
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            material = .p256(key)
        } else if let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) {
            guard key.keySizeInBits >= 2048 else {
                throw CAError(.badKey, "rsa keys must have at least 2048 bits, this one has \(key.keySizeInBits)")
            }
            material = .rsa(key)
        } else {
            throw CAError(.badKey, "not a PEM ecdsa p-256 or rsa private key")
        }
    }

    /// The key in PEM: PKCS #8 (`PRIVATE KEY`) for both kinds, as Istio and OpenSSL 3 write keys.
    public var pem: String {
        switch material {
        case .p256(let key): key.pemRepresentation
        case .rsa(let key): key.pkcs8PEMRepresentation
        }
    }

    /// The key as swift-certificates signs with it.
    public var certificateKey: Certificate.PrivateKey {
        switch material {
        case .p256(let key): Certificate.PrivateKey(key)
        case .rsa(let key): Certificate.PrivateKey(key)
        }
    }

    public var publicKey: Certificate.PublicKey { certificateKey.publicKey }

    /// The signature algorithm this key signs certificates with.
    public var signatureAlgorithm: Certificate.SignatureAlgorithm {
        switch material {
        case .p256: .ecdsaWithSHA256
        case .rsa: .sha256WithRSAEncryption
        }
    }

    /// The JWS algorithm this key signs tokens with.
    var jwsAlgorithm: JWSAlgorithm {
        switch material {
        case .p256: .es256
        case .rsa: .rs256
        }
    }

    /// A JWS signature over `input` (raw `r || s` for ECDSA, as RFC 7518 has it).
    func signJWS(_ input: [UInt8]) throws(CAError) -> [UInt8] {
        do {
            switch material {
            case .p256(let key):
                return Array(try key.signature(for: input).rawRepresentation)
            case .rsa(let key):
                return Array(try key.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
            }
        } catch {
            throw CAError(.badKey, "cannot sign: \(error)")
        }
    }
}
