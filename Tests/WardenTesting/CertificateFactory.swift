import Foundation
import Identity
import PolicyCore
import X509

/// Certificates for tests, made on Identity's CA with swift-certificates: roots, intermediates, SPIFFE leaves,
/// and the broken leaves a verifier must refuse (expired, not yet valid, from another CA, with the wrong extended
/// key usage, with no or several URI SANs). Everything can be written as PEM files for the real binaries and
/// for openssl.
public struct CertificateFactory: Sendable {
    /// The CA that signs this factory's leaves (a root, or an intermediate of `root`).
    public let ca: CertificateAuthority

    public var trustDomain: String { ca.trustDomain }
    public var bundle: TrustBundle { ca.bundle }

    /// A factory with a new root for `trustDomain`.
    public init(trustDomain: String = "cluster.local", key: KeyAlgorithm = .ecdsaP256) throws {
        ca = try CertificateAuthority.root(trustDomain: trustDomain, key: SigningKey(key), lifetime: 30 * 24 * 3600)
    }

    public init(ca: CertificateAuthority) {
        self.ca = ca
    }

    /// A factory whose leaves are signed by a new intermediate of this CA (same roots).
    public func intermediate() throws -> CertificateFactory {
        CertificateFactory(ca: try ca.intermediate(key: SigningKey(.ecdsaP256), lifetime: 7 * 24 * 3600))
    }

    /// What is wrong with a leaf, on purpose.
    public enum Variant: Sendable, Hashable {
        case valid
        /// Expired an hour ago.
        case expired
        /// Valid only from an hour from now.
        case notYetValid
        /// Extended key usage serverAuth only.
        case serverAuthOnly
        /// Extended key usage clientAuth only.
        case clientAuthOnly
        /// No extended key usage extension at all.
        case noExtendedKeyUsage
        /// No URI SAN (the DNS names only).
        case noURI
        /// These URIs as SANs instead of the one SPIFFE ID.
        case uris([String])
        /// basicConstraints CA, as no workload certificate has.
        case certificateAuthority
    }

    /// A leaf for `spiffeID` (with its key): issued by the CA for `.valid`, made by hand for the other variants.
    public func leaf(
        _ spiffeID: String, dnsNames: [String] = [], variant: Variant = .valid, lifetime: TimeInterval = 3600
    ) throws -> Credential {
        let key = try SigningKey(.ecdsaP256)
        let id = try SPIFFEID(parsing: spiffeID)
        if variant == .valid {
            let issued = try ca.issue(
                LeafRequest(spiffeID: id, dnsNames: dnsNames, lifetime: lifetime), publicKey: key.publicKey)
            return Credential(certificate: issued.certificate, intermediates: issued.intermediates, key: key, bundle: bundle)
        }
        let now = Date()
        var notBefore = now.addingTimeInterval(-60), notAfter = now.addingTimeInterval(lifetime)
        var usages: [ExtendedKeyUsage.Usage]? = [.serverAuth, .clientAuth]
        var uris = [id.uri]
        var isCA = false
        switch variant {
        case .valid: break
        case .expired: (notBefore, notAfter) = (now.addingTimeInterval(-7200), now.addingTimeInterval(-3600))
        case .notYetValid: (notBefore, notAfter) = (now.addingTimeInterval(3600), now.addingTimeInterval(7200))
        case .serverAuthOnly: usages = [.serverAuth]
        case .clientAuthOnly: usages = [.clientAuth]
        case .noExtendedKeyUsage: usages = nil
        case .noURI: uris = []
        case .uris(let list): uris = list
        case .certificateAuthority: isCA = true
        }
        let names = uris.map { GeneralName.uniformResourceIdentifier($0) } + dnsNames.map { .dnsName($0) }
        let issuerKeyID = try ca.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let extensions = try Certificate.Extensions {
            Critical(isCA ? BasicConstraints.isCertificateAuthority(maxPathLength: nil) : .notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true, keyCertSign: isCA))
            if let usages { try ExtendedKeyUsage(usages) }
            if let issuerKeyID { AuthorityKeyIdentifier(keyIdentifier: issuerKeyID) }
            if !names.isEmpty { Critical(SubjectAlternativeNames(names)) }
        }
        let subject = names.isEmpty ? try DistinguishedName { CommonName("no names") } : DistinguishedName()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: ca.certificate.subject, subject: subject,
            signatureAlgorithm: ca.key.signatureAlgorithm, extensions: extensions,
            issuerPrivateKey: ca.key.certificateKey)
        return Credential(certificate: certificate, intermediates: ca.intermediates, key: key, bundle: bundle)
    }

    /// A certificate with its key, and where it chains to.
    public struct Credential: Sendable {
        public let certificate: Certificate
        public let intermediates: [Certificate]
        public let key: SigningKey
        public let bundle: TrustBundle

        /// The leaf and the intermediates, as a TLS peer sends them.
        public var chain: [Certificate] { [certificate] + intermediates }
        public var chainPEM: String { PEMCertificates.pem(chain) }
        public var rootsPEM: String { bundle.pem }

        /// Writes Istio's workload files (`cert-chain.pem`, `key.pem` mode 0600, `root-cert.pem`) into
        /// `directory`, creating it.
        @discardableResult
        public func write(to directory: String) throws -> WorkloadPaths {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let paths = WorkloadPaths(directory: directory)
            try chainPEM.write(toFile: paths.certificateChain, atomically: true, encoding: .utf8)
            try rootsPEM.write(toFile: paths.rootCertificate, atomically: true, encoding: .utf8)
            try CertificateFactory.writePrivate(key.pem, to: paths.key)
            return paths
        }
    }

    /// Writes the CA's own files (`ca-cert.pem`, `ca-key.pem`, `cert-chain.pem`, `root-cert.pem`), so
    /// `warden ca serve --dir` serves this factory's CA.
    public func writeCA(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try PEMCertificates.pem(ca.certificate).write(toFile: directory + "/ca-cert.pem", atomically: true, encoding: .utf8)
        try PEMCertificates.pem(ca.chain).write(toFile: directory + "/cert-chain.pem", atomically: true, encoding: .utf8)
        try bundle.pem.write(toFile: directory + "/root-cert.pem", atomically: true, encoding: .utf8)
        try Self.writePrivate(ca.key.pem, to: directory + "/ca-key.pem")
    }

    /// Writes a key file readable by its owner only.
    static func writePrivate(_ text: String, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        else { throw CocoaError(.fileWriteUnknown) }
    }
}

/// Istio's workload file names in one directory.
public struct WorkloadPaths: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public var certificateChain: String { directory + "/cert-chain.pem" }
    public var key: String { directory + "/key.pem" }
    public var rootCertificate: String { directory + "/root-cert.pem" }
}
