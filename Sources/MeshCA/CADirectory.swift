import Foundation
import Identity
import X509

/// A CA on disk, with Istio's plugged-in CA file names: `ca-cert.pem` (the signing certificate), `ca-key.pem` (its
/// key, mode 0600), `cert-chain.pem` (the signing certificate, then each issuer up to the root) and
/// `root-cert.pem` (the roots; several while a root is rotated).
public struct CADirectory: Sendable {
    public static let caCertificate = "ca-cert.pem"
    public static let caKey = "ca-key.pem"
    public static let certificateChain = "cert-chain.pem"
    public static let rootCertificate = "root-cert.pem"
    /// The ids of bootstrap tokens already used, one per line with their expiry.
    public static let usedTokens = "used-bootstrap-tokens"

    public let path: String

    public init(_ path: String) {
        self.path = path
    }

    public func file(_ name: String) -> String { path + "/" + name }

    /// Whether any of the CA's files is present.
    public var holdsCA: Bool {
        [Self.caCertificate, Self.caKey, Self.certificateChain, Self.rootCertificate].contains { AtomicFile.exists(file($0)) }
    }

    /// Writes the CA's four files. An existing CA is replaced only with `force`.
    public func save(_ ca: CertificateAuthority, force: Bool) throws(CAError) {
        if holdsCA && !force {
            throw CAError(.exists, "`\(path)` already holds a CA: pass --force to replace it")
        }
        try AtomicFile.makeDirectory(path)
        try AtomicFile.write(ca.key.pem, to: file(Self.caKey), mode: 0o600)
        try AtomicFile.write(PEMCertificates.pem(ca.certificate), to: file(Self.caCertificate), mode: 0o644)
        try AtomicFile.write(PEMCertificates.pem(ca.chain), to: file(Self.certificateChain), mode: 0o644)
        try AtomicFile.write(ca.bundle.pem, to: file(Self.rootCertificate), mode: 0o644)
    }

    /// Reads the CA back. `cert-chain.pem` and `root-cert.pem` may be missing for a self-signed root (then the
    /// chain is the certificate and the bundle its last certificate). `trustDomain` overrides the one the CA
    /// certificate names.
    public func load(trustDomain: String? = nil) throws(CAError) -> CertificateAuthority {
        guard AtomicFile.exists(file(Self.caCertificate)) else {
            throw CAError(.fileError, "`\(path)` holds no CA (`\(Self.caCertificate)` is missing): run `warden ca init`")
        }
        let certificates = try PEMCertificates.parse(
            AtomicFile.read(file(Self.caCertificate)), what: "`\(file(Self.caCertificate))`")
        let key = try SigningKey(pem: AtomicFile.read(file(Self.caKey)))
        var chain: [Certificate] = certificates
        if AtomicFile.exists(file(Self.certificateChain)) {
            chain = try PEMCertificates.parse(
                AtomicFile.read(file(Self.certificateChain)), what: "`\(file(Self.certificateChain))`")
        }
        let domain = trustDomain ?? CertificateAuthority.trustDomain(of: certificates[0])
        var bundle: TrustBundle?
        if AtomicFile.exists(file(Self.rootCertificate)), let domain {
            bundle = try TrustBundle(trustDomain: domain, pem: AtomicFile.read(file(Self.rootCertificate)))
        }
        return try CertificateAuthority(
            certificate: certificates[0], key: key, chain: chain, bundle: bundle, trustDomain: domain)
    }
}

/// A workload's certificate files, with Istio's names: `cert-chain.pem` (the leaf, then intermediates),
/// `key.pem` (mode 0600) and `root-cert.pem`.
public struct WorkloadFiles: Sendable {
    public static let certificateChain = "cert-chain.pem"
    public static let key = "key.pem"
    public static let rootCertificate = "root-cert.pem"

    public let path: String

    public init(_ path: String) {
        self.path = path
    }

    public func file(_ name: String) -> String { path + "/" + name }

    /// Replaces the three files, each atomically; the key first, so the certificate on disk never names a key
    /// that is not there yet for longer than one rename.
    public func save(_ issued: IssuedCertificate, key: SigningKey) throws(CAError) {
        try save(chainPEM: issued.chainPEM, keyPEM: key.pem, rootsPEM: issued.bundle.pem)
    }

    public func save(chainPEM: String, keyPEM: String, rootsPEM: String) throws(CAError) {
        try AtomicFile.makeDirectory(path)
        try AtomicFile.write(keyPEM, to: file(Self.key), mode: 0o600)
        try AtomicFile.write(chainPEM, to: file(Self.certificateChain), mode: 0o644)
        try AtomicFile.write(rootsPEM, to: file(Self.rootCertificate), mode: 0o644)
    }

    /// The current files, when all three are present and readable.
    public func load() throws(CAError) -> (chain: [Certificate], key: SigningKey, rootsPEM: String) {
        let chain = try PEMCertificates.parse(
            AtomicFile.read(file(Self.certificateChain)), what: "`\(file(Self.certificateChain))`")
        let key = try SigningKey(pem: AtomicFile.read(file(Self.key)))
        guard key.publicKey == chain[0].publicKey else {
            throw CAError(.keyMismatch, "`\(file(Self.key))` does not belong to `\(file(Self.certificateChain))`")
        }
        return (chain, key, try AtomicFile.read(file(Self.rootCertificate)))
    }
}
