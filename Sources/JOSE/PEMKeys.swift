import Crypto
import Foundation
import SwiftASN1
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
            let spki = try SubjectPublicKeyInfo.spki(certificate: Self.derOfFirstPEMBlock(text, label: label))
            self = try SubjectPublicKeyInfo.key(spki: spki, minimumRSABits: minimumRSABits)
        case "PUBLIC KEY":
            self = try SubjectPublicKeyInfo.key(spki: Self.derOfFirstPEMBlock(text, label: label), minimumRSABits: minimumRSABits)
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

    /// The key of a DER certificate (the first of an `x5c` chain, say).
    public init(certificateDER der: [UInt8], minimumRSABits: Int = VerificationKey.minimumRSABits) throws(JOSEError) {
        self = try SubjectPublicKeyInfo.key(spki: SubjectPublicKeyInfo.spki(certificate: der), minimumRSABits: minimumRSABits)
    }

    /// The DER bytes of the first PEM block labelled `label`.
    static func derOfFirstPEMBlock(_ text: String, label: String) throws(JOSEError) -> [UInt8] {
        do {
            return try PEMDocument(pemString: firstPEMBlock(text)).derBytes
        } catch {
            throw JOSEError(.badPEM, "the `\(label)` PEM block could not be decoded")
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
