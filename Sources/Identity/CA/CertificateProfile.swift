import Foundation
import PolicyCore
import SwiftASN1
import X509

/// The shapes of the certificates the CA signs: a root, an intermediate, a SPIFFE workload leaf, and a TLS server
/// certificate for the CA's own listener. Every one gets a random 20-byte serial, a subject key identifier and (when
/// signed by another) the issuer's key identifier.
enum CertificateProfile {
    /// How far a leaf's `notBefore` is set back for clocks that run behind: a tenth of the lifetime, at most 60 s,
    /// so a short-lived certificate still renews at about half its life.
    static func backdate(forLifetime lifetime: TimeInterval) -> TimeInterval { min(60, lifetime / 10) }

    static func isCA(_ certificate: Certificate) -> Bool {
        guard let constraints = try? certificate.extensions.basicConstraints else { return false }
        if case .isCertificateAuthority = constraints { return true }
        return false
    }

    /// A CA subject: `O=<trust domain>, CN=<name>`.
    static func caSubject(trustDomain: String, commonName: String) throws -> DistinguishedName {
        try DistinguishedName {
            OrganizationName(trustDomain)
            CommonName(commonName)
        }
    }

    /// The extensions of a CA certificate: basicConstraints CA (critical), keyUsage keyCertSign and cRLSign
    /// (critical), the key identifiers, and the trust domain's own SPIFFE ID as URI SAN, as SPIRE names its CAs.
    static func caExtensions(
        trustDomain: String, publicKey: Certificate.PublicKey, issuerKeyIdentifier: ArraySlice<UInt8>?,
        maxPathLength: Int?
    ) throws -> Certificate.Extensions {
        try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: maxPathLength))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: publicKey)
            if let issuerKeyIdentifier {
                AuthorityKeyIdentifier(keyIdentifier: issuerKeyIdentifier)
            }
            SubjectAlternativeNames([.uniformResourceIdentifier(SPIFFEID.scheme + trustDomain)])
        }
    }

    /// The extensions of a workload leaf: not a CA (critical), digitalSignature and keyEncipherment (critical),
    /// serverAuth and clientAuth, and the names (critical: the subject is empty, as in Istio's workload
    /// certificates).
    static func leafExtensions(
        names: [GeneralName], publicKey: Certificate.PublicKey, issuerKeyIdentifier: ArraySlice<UInt8>?,
        usages: [ExtendedKeyUsage.Usage] = [.serverAuth, .clientAuth]
    ) throws -> Certificate.Extensions {
        try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            try ExtendedKeyUsage(usages)
            SubjectKeyIdentifier(hash: publicKey)
            if let issuerKeyIdentifier {
                AuthorityKeyIdentifier(keyIdentifier: issuerKeyIdentifier)
            }
            Critical(SubjectAlternativeNames(names))
        }
    }

    static func keyIdentifier(of certificate: Certificate) -> ArraySlice<UInt8>? {
        (try? certificate.extensions.subjectKeyIdentifier)?.keyIdentifier
    }
}
