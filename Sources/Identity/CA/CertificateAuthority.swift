import Foundation
import PolicyCore
import X509

/// A certificate authority for one SPIFFE trust domain: its signing certificate and key (`ca-cert.pem`,
/// `ca-key.pem`), the chain from that certificate to a root (`cert-chain.pem`), and the roots its certificates are
/// verified against (`root-cert.pem`), as Istio lays out a plugged-in CA.
///
/// Pure: it makes and signs certificates in memory; reading and writing the files is the caller's.
public struct CertificateAuthority: Sendable {
    public let trustDomain: String
    /// The certificate that signs: the root itself, or an intermediate.
    public let certificate: Certificate
    public let key: SigningKey
    /// `certificate` first, then each issuer up to and including a root of `bundle`.
    public let chain: [Certificate]
    public let bundle: TrustBundle

    /// Default lifetimes, as Istio has them: ten years for a CA, a day for a workload.
    public static let defaultCALifetime: TimeInterval = 87_600 * 3600
    public static let defaultLeafLifetime: TimeInterval = 24 * 3600

    /// A CA from its parts, checked: the key belongs to the certificate, the certificate is a CA, and each
    /// certificate of `chain` is signed by the next, the last by (or being) a root of `bundle`.
    /// `trustDomain` defaults to the trust domain's SPIFFE ID in the certificate's URI SAN.
    public init(
        certificate: Certificate, key: SigningKey, chain: [Certificate] = [], bundle: TrustBundle? = nil,
        trustDomain: String? = nil
    ) throws(CAError) {
        guard key.publicKey == certificate.publicKey else {
            throw CAError(.keyMismatch, "the CA key does not belong to the CA certificate")
        }
        guard CertificateProfile.isCA(certificate) else {
            throw CAError(.notACA, "`\(certificate.subject)` is not a CA certificate (basicConstraints CA is not set)")
        }
        let domain: String
        if let trustDomain {
            domain = trustDomain
        } else if let named = Self.trustDomain(of: certificate) {
            domain = named
        } else {
            throw CAError(.badIdentity, "the CA certificate names no trust domain (a `spiffe://` URI SAN): give one")
        }
        let chain = chain.isEmpty ? [certificate] : chain
        guard chain[0] == certificate else {
            throw CAError(.badChain, "the certificate chain must start with the CA certificate")
        }
        let roots: TrustBundle
        if let bundle {
            roots = bundle
        } else {
            roots = try TrustBundle(trustDomain: domain, roots: [chain[chain.count - 1]])
        }
        guard roots.trustDomain == domain else {
            throw CAError(.badChain, "the trust bundle is for `\(roots.trustDomain)`, the CA for `\(domain)`")
        }
        for (child, parent) in zip(chain, chain.dropFirst()) where !parent.publicKey.isValidSignature(child.signature, for: child) {
            throw CAError(.badChain, "`\(child.subject)` in the chain is not signed by the next certificate `\(parent.subject)`")
        }
        let top = chain[chain.count - 1]
        let anchored = roots.contains(top) || roots.roots.contains { $0.publicKey.isValidSignature(top.signature, for: top) }
        guard anchored else {
            throw CAError(.badChain, "the CA chain does not lead to a root of the trust bundle")
        }
        self.trustDomain = domain
        self.certificate = certificate
        self.key = key
        self.chain = chain
        self.bundle = roots
    }

    /// A new self-signed root for `trustDomain`.
    public static func root(
        trustDomain: String, key: SigningKey, lifetime: TimeInterval = defaultCALifetime, now: Date = Date()
    ) throws(CAError) -> CertificateAuthority {
        let id = try trustDomainID(trustDomain)
        guard lifetime > 0 else { throw CAError(.badLifetime, "a CA lifetime must be positive") }
        let certificate: Certificate
        do {
            let subject = try CertificateProfile.caSubject(trustDomain: id.trustDomain, commonName: "Warden Root CA")
            certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
                notValidBefore: Self.wholeSeconds(now.addingTimeInterval(-60)),
                notValidAfter: Self.wholeSeconds(now.addingTimeInterval(lifetime)), issuer: subject, subject: subject, signatureAlgorithm: key.signatureAlgorithm,
                extensions: CertificateProfile.caExtensions(
                    trustDomain: id.trustDomain, publicKey: key.publicKey, issuerKeyIdentifier: nil, maxPathLength: nil),
                issuerPrivateKey: key.certificateKey)
        } catch {
            throw CAError(.badKey, "cannot sign the root certificate: \(error)")
        }
        return try CertificateAuthority(certificate: certificate, key: key, trustDomain: id.trustDomain)
    }

    /// A new intermediate CA signed by this one (which may stay offline afterwards). It can sign workload
    /// certificates but no further CAs, and expires no later than this CA.
    public func intermediate(
        key: SigningKey, lifetime: TimeInterval = defaultCALifetime, now: Date = Date()
    ) throws(CAError) -> CertificateAuthority {
        let validity = try validity(lifetime: lifetime, backdate: 60, now: now)
        let certificate: Certificate
        do {
            certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
                notValidBefore: validity.notBefore, notValidAfter: validity.notAfter, issuer: self.certificate.subject,
                subject: CertificateProfile.caSubject(trustDomain: trustDomain, commonName: "Warden Intermediate CA"),
                signatureAlgorithm: self.key.signatureAlgorithm,
                extensions: CertificateProfile.caExtensions(
                    trustDomain: trustDomain, publicKey: key.publicKey,
                    issuerKeyIdentifier: CertificateProfile.keyIdentifier(of: self.certificate), maxPathLength: 0),
                issuerPrivateKey: self.key.certificateKey)
        } catch {
            throw CAError(.badKey, "cannot sign the intermediate certificate: \(error)")
        }
        return try CertificateAuthority(
            certificate: certificate, key: key, chain: [certificate] + chain, bundle: bundle, trustDomain: trustDomain)
    }

    /// The earliest expiry along the chain: nothing this CA signs may outlive it.
    public var notValidAfter: Date { chain.map(\.notValidAfter).min() ?? certificate.notValidAfter }

    /// The certificates a workload sends after its leaf: the chain without the root.
    public var intermediates: [Certificate] { chain.filter { !bundle.contains($0) } }

    // MARK: Issuing

    /// Issues a SPIFFE workload certificate for `publicKey`: `request.spiffeID` as its only URI SAN, the DNS names
    /// and IP addresses of the request, serverAuth and clientAuth. The lifetime is backdated a little for clock
    /// skew and never runs past the CA's own expiry. A SPIFFE ID of another trust domain is refused.
    public func issue(_ request: LeafRequest, publicKey: Certificate.PublicKey, now: Date = Date()) throws(CAError)
        -> IssuedCertificate
    {
        guard request.spiffeID.isMember(of: trustDomain) else {
            throw CAError(
                .outsideTrustDomain,
                "`\(request.spiffeID)` is outside the trust domain `\(trustDomain)` of this CA")
        }
        guard !request.spiffeID.path.isEmpty else {
            throw CAError(.badIdentity, "`\(request.spiffeID)` names the trust domain itself, not a workload")
        }
        let names = [GeneralName.uniformResourceIdentifier(request.spiffeID.uri)]
            + request.dnsNames.map { .dnsName($0) } + request.ipAddresses.map(\.generalName)
        return try sign(names: names, usages: [.serverAuth, .clientAuth], publicKey: publicKey,
                        lifetime: request.lifetime, now: now)
    }

    /// Issues a TLS server certificate (serverAuth only, no SPIFFE ID) naming `dnsNames` and `ipAddresses`: the
    /// CA's own listener presents one, so an ordinary client that trusts the root verifies it by host name.
    public func issueServerCertificate(
        dnsNames: [String], ipAddresses: [IPAddressBytes], publicKey: Certificate.PublicKey,
        lifetime: TimeInterval = defaultLeafLifetime, now: Date = Date()
    ) throws(CAError) -> IssuedCertificate {
        let names = try dnsNames.map { name throws(CAError) in GeneralName.dnsName(try DNSName.validate(name)) }
            + ipAddresses.map(\.generalName)
        guard !names.isEmpty else { throw CAError(.badName, "a server certificate needs a DNS name or an IP address") }
        return try sign(names: names, usages: [.serverAuth], publicKey: publicKey, lifetime: lifetime, now: now)
    }

    private func sign(
        names: [GeneralName], usages: [ExtendedKeyUsage.Usage], publicKey: Certificate.PublicKey,
        lifetime: TimeInterval, now: Date
    ) throws(CAError) -> IssuedCertificate {
        let validity = try validity(lifetime: lifetime, backdate: CertificateProfile.backdate(forLifetime: lifetime), now: now)
        do {
            let leaf = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
                notValidBefore: validity.notBefore, notValidAfter: validity.notAfter, issuer: certificate.subject,
                subject: DistinguishedName(), signatureAlgorithm: key.signatureAlgorithm,
                extensions: CertificateProfile.leafExtensions(
                    names: names, publicKey: publicKey,
                    issuerKeyIdentifier: CertificateProfile.keyIdentifier(of: certificate), usages: usages),
                issuerPrivateKey: key.certificateKey)
            return IssuedCertificate(certificate: leaf, intermediates: intermediates, bundle: bundle)
        } catch {
            throw CAError(.badKey, "cannot sign the certificate: \(error)")
        }
    }

    /// `notBefore` set back by `backdate` (never before the CA's own start), `notAfter` `lifetime` from now but
    /// never past the CA's expiry.
    private func validity(lifetime: TimeInterval, backdate: TimeInterval, now: Date) throws(CAError)
        -> (notBefore: Date, notAfter: Date)
    {
        guard lifetime > 0, lifetime.isFinite else { throw CAError(.badLifetime, "a certificate lifetime must be positive") }
        let end = notValidAfter
        guard now < end else {
            throw CAError(.expired, "the CA expired at \(CertificateText.time(end)): make a new one")
        }
        let notBefore = max(now.addingTimeInterval(-backdate), certificate.notValidBefore)
        return (Self.wholeSeconds(notBefore), Self.wholeSeconds(min(now.addingTimeInterval(lifetime), end)))
    }

    /// Certificates hold whole seconds; the CA chooses them itself, down, rather than leave it to the encoding.
    static func wholeSeconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    // MARK: Names

    /// The trust domain a CA certificate names in its `spiffe://` URI SAN, if it names one.
    public static func trustDomain(of certificate: Certificate) -> String? {
        let names = (try? CertificateNames(certificate)) ?? CertificateNames()
        for uri in names.uris {
            if let id = try? SPIFFEID(parsing: uri), id.path.isEmpty { return id.trustDomain }
        }
        return nil
    }

    static func trustDomainID(_ trustDomain: String) throws(CAError) -> SPIFFEID {
        guard !trustDomain.contains("/"), let id = try? SPIFFEID(principal: trustDomain) else {
            throw CAError(
                .badIdentity,
                "`\(trustDomain)` is not a trust domain: use lowercase letters, digits, `.`, `-` and `_`")
        }
        return id
    }
}

/// What a workload certificate names.
public struct LeafRequest: Sendable, Hashable {
    public var spiffeID: SPIFFEID
    public var dnsNames: [String]
    public var ipAddresses: [IPAddressBytes]
    public var lifetime: TimeInterval

    /// A request whose DNS names are checked (and lowercased) here.
    public init(
        spiffeID: SPIFFEID, dnsNames: [String] = [], ipAddresses: [IPAddressBytes] = [],
        lifetime: TimeInterval = CertificateAuthority.defaultLeafLifetime
    ) throws(CAError) {
        self.spiffeID = spiffeID
        self.dnsNames = try dnsNames.map { name throws(CAError) in try DNSName.validate(name) }
        self.ipAddresses = ipAddresses
        self.lifetime = lifetime
    }
}

/// A signed certificate with what a workload needs beside it.
public struct IssuedCertificate: Sendable {
    public let certificate: Certificate
    /// The CA certificates between the leaf and a root (empty when the root signs directly).
    public let intermediates: [Certificate]
    public let bundle: TrustBundle

    /// `cert-chain.pem`: the leaf, then the intermediates.
    public var chainPEM: String { PEMCertificates.pem([certificate] + intermediates) }

    /// Istio's `cert_chain`: one PEM per certificate, leaf first, root last.
    public var istioChain: [String] {
        ([certificate] + intermediates).map(PEMCertificates.pem) + bundle.roots.map(PEMCertificates.pem)
    }

    public var serialNumber: String { CertificateText.serial(certificate) }
}

/// DNS names as certificates may hold them: letters, digits and hyphens in labels of 1–63 bytes, at most 253 in
/// all, optionally one leading `*.` label; lowercased.
public enum DNSName {
    public static func validate(_ name: String) throws(CAError) -> String {
        let lower = name.lowercased()
        let body = lower.hasPrefix("*.") ? String(lower.dropFirst(2)) : lower
        let labels = body.split(separator: ".", omittingEmptySubsequences: false)
        let valid = !body.isEmpty && lower.utf8.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { byte in
                    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
                }
        }
        guard valid else { throw CAError(.badName, "`\(name)` is not a DNS name") }
        return lower
    }
}

/// Certificate fields as Warden prints them.
public enum CertificateText {
    /// RFC 3339 in UTC: `2026-01-02T03:04:05Z`.
    public static func time(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    /// Lowercase hex pairs joined by colons, as `openssl x509 -serial` shows them (without its `serial=`).
    public static func serial(_ certificate: Certificate) -> String {
        certificate.serialNumber.bytes.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined(separator: ":")
    }
}
