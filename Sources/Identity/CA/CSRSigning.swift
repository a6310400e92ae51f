import Foundation
import PolicyCore
import SwiftASN1
import X509
import _CryptoExtras

/// An authenticated caller of the CA and the names it may have in a certificate: its SPIFFE ID, and the DNS
/// names and IP addresses its credential grants (a bootstrap token's, or those of the certificate it holds now).
public struct Entitlement: Sendable, Hashable {
    public let spiffeID: SPIFFEID
    public let dnsNames: Set<String>
    public let ipAddresses: Set<IPAddressBytes>

    public init(spiffeID: SPIFFEID, dnsNames: [String] = [], ipAddresses: [IPAddressBytes] = []) {
        self.spiffeID = spiffeID
        self.dnsNames = Set(dnsNames.map { $0.lowercased() })
        self.ipAddresses = Set(ipAddresses)
    }

    /// What a verified peer certificate entitles its holder to on renewal: the same SPIFFE ID and names.
    public init(peer: VerifiedPeer) {
        let names = (try? CertificateNames(peer.leaf)) ?? CertificateNames()
        self.init(spiffeID: peer.spiffeID, dnsNames: names.dnsNames, ipAddresses: names.ipAddresses)
    }
}

/// How long the certificates signed for CSRs live.
public struct LifetimePolicy: Sendable, Hashable {
    /// Used when a request names no validity.
    public var defaultLifetime: TimeInterval
    /// The cap on any requested validity.
    public var maximumLifetime: TimeInterval

    public init(
        defaultLifetime: TimeInterval = CertificateAuthority.defaultLeafLifetime,
        maximumLifetime: TimeInterval = CertificateAuthority.defaultLeafLifetime
    ) {
        self.defaultLifetime = defaultLifetime
        self.maximumLifetime = maximumLifetime
    }

    /// The lifetime granted for a request of `requested` seconds (zero or less: none requested).
    public func lifetime(requested: TimeInterval) -> TimeInterval {
        min(requested > 0 ? requested : defaultLifetime, maximumLifetime)
    }
}

extension CertificateAuthority {
    /// CSRs longer than this are refused before parsing.
    public static let maximumCSRSize = 32 * 1024

    /// Signs a PEM CSR for an authenticated caller. The certificate's SPIFFE ID is the caller's, never one read
    /// from the CSR: a CSR asking for another URI is refused (`csr_identity_mismatch`), as is one asking for a DNS
    /// name or IP address the caller is not entitled to, or a name of any other kind (`csr_name_not_entitled`).
    /// A CSR that cannot be read, whose signature does not verify, or with an RSA key under 2048 bits is refused
    /// as `csr_invalid`, `csr_signature_invalid` or `csr_weak_key`.
    public func sign(
        csrPEM: String, for caller: Entitlement, requestedLifetime: TimeInterval = 0,
        lifetimes: LifetimePolicy = LifetimePolicy(), now: Date = Date()
    ) throws(CAError) -> IssuedCertificate {
        let csr = try Self.verifiedCSR(csrPEM)
        let asked: CertificateNames
        do {
            let extensions = try csr.attributes.extensionRequest?.extensions
            asked = CertificateNames(try extensions?.subjectAlternativeNames.map { Array($0) } ?? [])
        } catch {
            throw CAError(.badCSR, "the CSR's requested extensions cannot be read: \(error)")
        }
        for uri in asked.uris where uri != caller.spiffeID.uri {
            throw CAError(
                .identityMismatch,
                "the CSR asks for `\(uri)`, but the caller is `\(caller.spiffeID)`")
        }
        for name in asked.dnsNames where !caller.dnsNames.contains(name.lowercased()) {
            throw CAError(.nameNotEntitled, "`\(caller.spiffeID)` is not entitled to the DNS name `\(name)`")
        }
        for address in asked.ipAddresses where !caller.ipAddresses.contains(address) {
            throw CAError(.nameNotEntitled, "`\(caller.spiffeID)` is not entitled to the IP address `\(address)`")
        }
        if let other = asked.others.first {
            throw CAError(.nameNotEntitled, "the CSR asks for a name of a kind the CA never issues: \(other)")
        }
        var dnsNames: [String] = []
        for name in asked.dnsNames where !dnsNames.contains(name.lowercased()) { dnsNames.append(name.lowercased()) }
        var addresses: [IPAddressBytes] = []
        for address in asked.ipAddresses where !addresses.contains(address) { addresses.append(address) }
        let request = try LeafRequest(
            spiffeID: caller.spiffeID, dnsNames: dnsNames, ipAddresses: addresses,
            lifetime: lifetimes.lifetime(requested: requestedLifetime))
        return try issue(request, publicKey: csr.publicKey, now: now)
    }

    /// A CSR read from PEM whose signature verifies with its own key, and whose key is strong enough.
    public static func verifiedCSR(_ pem: String) throws(CAError) -> CertificateSigningRequest {
        guard pem.utf8.count <= maximumCSRSize else {
            throw CAError(.badCSR, "the CSR is larger than \(maximumCSRSize) bytes")
        }
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(pemEncoded: pem)
        } catch {
            throw CAError(.badCSR, "the CSR is not a PEM `CERTIFICATE REQUEST`: \(error)")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw CAError(.csrSignature, "the CSR's signature does not verify with its public key")
        }
        if let rsa = _RSA.Signing.PublicKey(csr.publicKey), rsa.keySizeInBits < 2048 {
            throw CAError(.weakKey, "the CSR's rsa key has \(rsa.keySizeInBits) bits; at least 2048 are needed")
        }
        return csr
    }
}

/// Makes CSRs the way a workload does: a key's public half, its SPIFFE ID and DNS names in the requested SAN.
public enum CSRBuilder {
    public static func pem(key: SigningKey, spiffeID: SPIFFEID?, dnsNames: [String] = []) throws(CAError) -> String {
        do {
            var names: [GeneralName] = []
            if let spiffeID { names.append(.uniformResourceIdentifier(spiffeID.uri)) }
            names += dnsNames.map { .dnsName($0) }
            var attributes = CertificateSigningRequest.Attributes()
            if !names.isEmpty {
                let extensions = try Certificate.Extensions { SubjectAlternativeNames(names) }
                attributes.insert(try .init(ExtensionRequest(extensions: extensions)))
            }
            let csr = try CertificateSigningRequest(
                version: .v1, subject: DistinguishedName(), privateKey: key.certificateKey, attributes: attributes,
                signatureAlgorithm: key.signatureAlgorithm)
            return try csr.serializeAsPEM().pemString + "\n"
        } catch {
            throw CAError(.badKey, "cannot make a CSR: \(error)")
        }
    }
}
