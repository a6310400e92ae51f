import Crypto
import SwiftASN1
import _CryptoExtras

/// The public key of a DER `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7), alone or inside an X.509 certificate.
///
/// JOSE reads keys out of certificates (`x5c`, PEM `CERTIFICATE`) without a certificate library: only the
/// structure up to the key is read, with swift-asn1's DER parser, so the Rego engine that verifies tokens never
/// links X.509 path validation. Validity, chains and extensions are the business of `Identity`.
enum SubjectPublicKeyInfo {
    private static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 1, 1]
    private static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    private static let ed25519: ASN1ObjectIdentifier = [1, 3, 101, 112]
    private static let p256: ASN1ObjectIdentifier = [1, 2, 840, 10045, 3, 1, 7]
    private static let p384: ASN1ObjectIdentifier = [1, 3, 132, 0, 34]
    private static let p521: ASN1ObjectIdentifier = [1, 3, 132, 0, 35]

    /// The key of a DER `SubjectPublicKeyInfo`.
    static func key(spki der: [UInt8], minimumRSABits: Int) throws(JOSEError) -> VerificationKey {
        let algorithm: ASN1ObjectIdentifier, parameters: ASN1ObjectIdentifier?, keyBits: [UInt8]
        do {
            (algorithm, parameters, keyBits) = try DER.sequence(DER.parse(der), identifier: .sequence) { nodes in
                let (algorithm, parameters) = try nextSequence(&nodes) { inner in
                    let oid = try ASN1ObjectIdentifier(derEncoded: &inner)
                    // EC keys name their curve here; RSA has NULL; Ed25519 nothing.
                    let parameters = inner.next().flatMap { try? ASN1ObjectIdentifier(derEncoded: $0) }
                    return (oid, parameters)
                }
                let bits = try ASN1BitString(derEncoded: &nodes)
                return (algorithm, parameters, Array(bits.bytes))
            }
        } catch {
            throw JOSEError(.badPEM, "the public key could not be read")
        }
        do {
            switch (algorithm, parameters) {
            case (rsaEncryption, _):
                // `derRepresentation` takes the SubjectPublicKeyInfo as well as PKCS #1.
                return try VerificationKey(_RSA.Signing.PublicKey(unsafeDERRepresentation: der), minimumBits: minimumRSABits)
            case (ecPublicKey, p256?): return VerificationKey(try P256.Signing.PublicKey(derRepresentation: der))
            case (ecPublicKey, p384?): return VerificationKey(try P384.Signing.PublicKey(derRepresentation: der))
            case (ecPublicKey, p521?): return VerificationKey(try P521.Signing.PublicKey(derRepresentation: der))
            case (ed25519, _): return VerificationKey(try Curve25519.Signing.PublicKey(rawRepresentation: keyBits))
            default: break
            }
        } catch let error as JOSEError {
            throw error
        } catch {
            throw JOSEError(.badPEM, "the public key could not be read")
        }
        throw JOSEError(.unsupportedKey, "the public key's algorithm is not supported")
    }

    /// The DER `SubjectPublicKeyInfo` of a DER X.509 certificate, after checking the certificate's outer shape
    /// (`tbsCertificate`, `signatureAlgorithm`, `signatureValue`; version, serial, names and validity in order).
    static func spki(certificate der: [UInt8]) throws(JOSEError) -> [UInt8] {
        do {
            return try DER.sequence(DER.parse(der), identifier: .sequence) { nodes in
                let spki = try nextSequence(&nodes) { tbs in
                    _ = try DER.optionalExplicitlyTagged(&tbs, tagNumber: 0, tagClass: .contextSpecific) { node in
                        try Int(derEncoded: node)
                    }
                    _ = try ArraySlice<UInt8>(derEncoded: &tbs)  // serialNumber
                    for _ in 0..<4 {  // signature, issuer, validity, subject
                        guard let node = tbs.next(), node.identifier == .sequence else { throw JOSEError.malformedCertificate }
                    }
                    guard let spki = tbs.next(), spki.identifier == .sequence else { throw JOSEError.malformedCertificate }
                    while tbs.next() != nil {}  // issuerUniqueID, subjectUniqueID, extensions
                    return Array(spki.encodedBytes)
                }
                guard let algorithm = nodes.next(), algorithm.identifier == .sequence else { throw JOSEError.malformedCertificate }
                _ = try ASN1BitString(derEncoded: &nodes)
                return spki
            }
        } catch {
            throw JOSEError.malformedCertificate
        }
    }

    /// The next node of a sequence, read as a SEQUENCE.
    private static func nextSequence<T>(
        _ nodes: inout ASN1NodeCollection.Iterator, _ body: (inout ASN1NodeCollection.Iterator) throws -> T
    ) throws -> T {
        guard let node = nodes.next() else { throw JOSEError.malformedCertificate }
        return try DER.sequence(node, identifier: .sequence, body)
    }
}

extension JOSEError {
    static var malformedCertificate: JOSEError { JOSEError(.badPEM, "the certificate could not be read") }
}
