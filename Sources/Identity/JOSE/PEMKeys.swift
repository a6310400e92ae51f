import Crypto
import X509
import _CryptoExtras

extension VerificationKey {
    /// A key from PEM text: a `PUBLIC KEY` (SubjectPublicKeyInfo: RSA, EC P-256/384/521, Ed25519), an
    /// `RSA PUBLIC KEY` (PKCS #1), or a `CERTIFICATE`, whose subject public key is used. Only the first PEM block
    /// is read. RSA keys shorter than `minimumRSABits` are refused as weak.
    public init(pem text: String, minimumRSABits: Int = VerificationKey.minimumRSABits) throws(JOSEError) {
        guard let label = Self.firstPEMLabel(text) else {
            throw JOSEError(.badPEM, "no PEM block (`-----BEGIN ...-----`) found")
        }
        switch label {
        case "CERTIFICATE":
            let certificate: Certificate
            do {
                certificate = try Certificate(pemEncoded: Self.firstPEMBlock(text))
            } catch {
                throw JOSEError(.badPEM, "the certificate could not be read (RSA keys under 2048 bits are refused)")
            }
            self = try VerificationKey(certificate.publicKey)
        case "PUBLIC KEY":
            // RSA first, so a short RSA key is reported as weak rather than unreadable.
            if let rsa = try? _RSA.Signing.PublicKey(unsafePEMRepresentation: Self.firstPEMBlock(text)) {
                self = try VerificationKey(rsa, minimumBits: minimumRSABits)
                return
            }
            do {
                self = try VerificationKey(Certificate.PublicKey(pemEncoded: Self.firstPEMBlock(text)))
            } catch let error as JOSEError {
                throw error
            } catch {
                throw JOSEError(.badPEM, "the public key could not be read")
            }
        case "RSA PUBLIC KEY":
            let rsa: _RSA.Signing.PublicKey
            do {
                rsa = try _RSA.Signing.PublicKey(unsafePEMRepresentation: Self.firstPEMBlock(text))
            } catch {
                throw JOSEError(.badPEM, "the RSA public key could not be read")
            }
            self = try VerificationKey(rsa, minimumBits: minimumRSABits)
        default:
            throw JOSEError(.badPEM, "PEM block `\(label)` is not a public key or certificate")
        }
    }

    /// The key of a certificate's or SubjectPublicKeyInfo's public key.
    public init(_ publicKey: Certificate.PublicKey) throws(JOSEError) {
        if let key = P256.Signing.PublicKey(publicKey) {
            self.init(key)
        } else if let key = P384.Signing.PublicKey(publicKey) {
            self.init(key)
        } else if let key = P521.Signing.PublicKey(publicKey) {
            self.init(key)
        } else if let key = Curve25519.Signing.PublicKey(publicKey) {
            self.init(key)
        } else if let key = _RSA.Signing.PublicKey(publicKey) {
            try self.init(key)
        } else {
            throw JOSEError(.unsupportedKey, "the public key's algorithm is not supported")
        }
    }

    static func firstPEMLabel(_ text: String) -> String? {
        guard let begin = text.range(of: "-----BEGIN ") else { return nil }
        guard let end = text[begin.upperBound...].range(of: "-----") else { return nil }
        return String(text[begin.upperBound..<end.lowerBound])
    }

    /// The first `BEGIN ... END` block, so trailing chain certificates or text do not stop the parser.
    static func firstPEMBlock(_ text: String) -> String {
        guard let label = firstPEMLabel(text), let start = text.range(of: "-----BEGIN \(label)-----"),
            let end = text[start.upperBound...].range(of: "-----END \(label)-----")
        else { return text }
        return String(text[start.lowerBound..<end.upperBound])
    }
}

/// Keys given in any of the forms OPA's `io.jwt.verify_*` builtins accept: PEM (public key or certificate), a JWK,
/// or a JWKS.
public enum VerificationKeys {
    /// Parses `text` as PEM when it holds a PEM block, else as a JWK or JWKS document.
    public static func parse(_ text: String) throws(JOSEError) -> JWKSet {
        if text.contains("-----BEGIN ") {
            let key = try VerificationKey(pem: text)
            return JWKSet(keys: [JWK(key: key)])
        }
        return try JWKSet.parse(text)
    }
}
