import Foundation
import Identity
import JOSE
import Logging
import PolicyCore
import ServiceLifecycle
import X509

/// Keeps a workload's certificate files fresh, as istio-agent does: when half the certificate's lifetime has
/// passed (give or take a little jitter, so a fleet does not renew at once) it makes a new key and CSR, asks the
/// CA's `CreateCertificate` over TLS (authenticating with the current certificate, or with a bootstrap token for
/// the first one), and replaces the files atomically. While the CA cannot be reached it retries with backoff.
public struct CertificateAgent: Service {
    public struct Configuration: Sendable {
        /// The CA's address.
        public var host: String
        public var port: Int
        /// The name the CA's certificate must carry; nil: the host (an IP address is checked against IP SANs).
        public var serverName: String?
        /// The roots the CA's serving certificate must chain to (PEM).
        public var trustedRootsPEM: String
        public var output: WorkloadFiles
        /// For the first certificate, when there is none yet (or it expired).
        public var bootstrapToken: String?
        /// The validity asked for, in seconds; 0 leaves it to the CA.
        public var requestedLifetime: TimeInterval = 0
        /// Renew when this fraction of the lifetime has passed (Istio's default grace ratio).
        public var renewalRatio: Double = 0.5
        /// Up to this fraction of the lifetime is added or taken away at random.
        public var jitterRatio: Double = 0.05
        /// Retry delays while the CA is down: doubling from the first to the last.
        public var firstRetryDelay: TimeInterval = 1
        public var maximumRetryDelay: TimeInterval = 30
        /// How long one call to the CA may take.
        public var callTimeout: TimeInterval = 10

        public init(host: String, port: Int, trustedRootsPEM: String, output: WorkloadFiles) {
            self.host = host
            self.port = port
            self.trustedRootsPEM = trustedRootsPEM
            self.output = output
        }
    }

    public let configuration: Configuration
    public let logger: Logger

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The current certificate, if the output directory holds a usable one.
    struct Current {
        var chain: [Certificate]
        var key: SigningKey
        var leaf: Certificate { chain[0] }
    }

    /// Renews until graceful shutdown or cancellation: at each renewal time, or at once when there is no
    /// certificate.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await renewForever() }
        } catch is CancellationError {
            return
        }
    }

    private func renewForever() async throws {
        var failures = 0
        while !Task.isCancelled {
            let current = loadCurrent()
            if let current {
                let wait = renewalTime(of: current.leaf).timeIntervalSinceNow
                if wait > 0 {
                    logger.info("next renewal at \(CertificateText.time(Date().addingTimeInterval(wait)))")
                    try await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
                }
            }
            do {
                try await renewOnce()
                failures = 0
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                failures += 1
                let delay = retryDelay(after: failures)
                logger.warning("renewal failed (\(error)); retrying in \(String(format: "%.1f", delay)) s")
                try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            }
        }
    }

    /// One renewal: a new key and CSR, one call to the CA, the files replaced. Throws when the CA refuses or
    /// cannot be reached; the old files are then left as they were.
    @discardableResult
    public func renewOnce(now: Date = Date()) async throws -> IssuedFiles {
        let current = loadCurrent().flatMap { now < $0.leaf.notValidAfter ? $0 : nil }
        guard current != nil || configuration.bootstrapToken != nil else {
            throw CAError(.badToken, "no valid certificate in `\(configuration.output.path)` and no bootstrap token")
        }
        let identity: (spiffeID: SPIFFEID, dnsNames: [String])
        if let current {
            identity = try Self.identity(of: current.leaf)
        } else {
            identity = try Self.identity(ofToken: configuration.bootstrapToken ?? "")
        }
        let key = try SigningKey(.ecdsaP256)
        let csr = try CSRBuilder.pem(key: key, spiffeID: identity.spiffeID, dnsNames: identity.dnsNames)
        let pems = try await call(csr: csr, current: current)
        let files = try IssuedFiles(pems: pems, key: key, trustDomain: identity.spiffeID.trustDomain)
        let issued = try await files.verify()
        guard issued.spiffeID == identity.spiffeID else {
            throw CAError(.identityMismatch, "the CA issued `\(issued.spiffeID)`, not `\(identity.spiffeID)`")
        }
        try configuration.output.save(chainPEM: files.chainPEM, keyPEM: key.pem, rootsPEM: files.rootsPEM)
        logger.info(
            "renewed \(identity.spiffeID.uri)",
            metadata: [
                "serial": "\(CertificateText.serial(files.leaf))",
                "not_after": "\(CertificateText.time(files.leaf.notValidAfter))",
                "credential": "\(current == nil ? "bootstrap-token" : "certificate")",
            ])
        return files
    }

    /// When `leaf` is due: `renewalRatio` of its lifetime after `notBefore`, moved by up to `jitterRatio` of it.
    func renewalTime(of leaf: Certificate) -> Date {
        let lifetime = leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore)
        let jitter = lifetime * configuration.jitterRatio * Double.random(in: -1...1)
        return leaf.notValidBefore.addingTimeInterval(lifetime * configuration.renewalRatio + jitter)
    }

    func retryDelay(after failures: Int) -> TimeInterval {
        let doubled = configuration.firstRetryDelay * pow(2, Double(min(failures - 1, 16)))
        return min(doubled, configuration.maximumRetryDelay) * Double.random(in: 0.8...1.0)
    }

    private func loadCurrent() -> Current? {
        guard let files = try? configuration.output.load() else { return nil }
        return Current(chain: files.chain, key: files.key)
    }

    private func call(csr: String, current: Current?) async throws -> [String] {
        let client = CAClient(
            host: configuration.host, port: configuration.port, serverName: configuration.serverName,
            trustedRootsPEM: configuration.trustedRootsPEM, callTimeout: configuration.callTimeout)
        let credential: CAClient.Credential =
            if let current { .certificate(chain: current.chain, key: current.key) } else {
                .bootstrapToken(configuration.bootstrapToken ?? "")
            }
        return try await client.createCertificate(
            csr: csr, credential: credential, validity: configuration.requestedLifetime)
    }

    /// The SPIFFE ID and DNS names of a current certificate, asked for again on renewal.
    static func identity(of leaf: Certificate) throws(CAError) -> (spiffeID: SPIFFEID, dnsNames: [String]) {
        let names = try CertificateNames(leaf)
        guard names.uris.count == 1, let id = try? SPIFFEID(parsing: names.uris[0]) else {
            throw CAError(.badIdentity, "the current certificate does not carry exactly one SPIFFE ID")
        }
        return (id, names.dnsNames)
    }

    /// The SPIFFE ID (`sub`) and DNS names (`dns`) a bootstrap token grants, read without verifying it (the CA does).
    static func identity(ofToken token: String) throws(CAError) -> (spiffeID: SPIFFEID, dnsNames: [String]) {
        guard let claims = try? JWTVerifier.decode(token, validation: JWTValidation(maximumTokenSize: 4096)).claims,
            let subject = claims.subject, let id = try? SPIFFEID(parsing: subject)
        else {
            throw CAError(.badToken, "the bootstrap token names no SPIFFE ID (`sub`)")
        }
        var dnsNames: [String] = []
        if case .array(let names)? = claims.payload["dns"] {
            for case .string(let name) in names { dnsNames.append(name) }
        }
        return (id, dnsNames)
    }
}

/// A CA's answer made into a workload's files: the chain (leaf, intermediates) and the roots, apart.
public struct IssuedFiles: Sendable {
    public let chain: [Certificate]
    public let roots: [Certificate]
    public let trustDomain: String

    public var leaf: Certificate { chain[0] }
    public var chainPEM: String { PEMCertificates.pem(chain) }
    public var rootsPEM: String { PEMCertificates.pem(roots) }

    /// Splits Istio's `cert_chain` (leaf first, root last) into chain and self-signed roots; the leaf must be for
    /// `key`.
    init(pems: [String], key: SigningKey, trustDomain: String) throws(CAError) {
        guard pems.count <= PEMCertificates.maximumCount else {
            throw CAError(.badChain, "the CA answered with more than \(PEMCertificates.maximumCount) certificates")
        }
        var certificates: [Certificate] = []
        for pem in pems { certificates += try PEMCertificates.parse(pem, what: "the CA's answer") }
        let isRoot = { (certificate: Certificate) in
            certificate.issuer == certificate.subject
                && certificate.publicKey.isValidSignature(certificate.signature, for: certificate)
        }
        chain = certificates.filter { !isRoot($0) }
        roots = certificates.filter(isRoot)
        self.trustDomain = trustDomain
        guard !chain.isEmpty, !roots.isEmpty else {
            throw CAError(.badChain, "the CA's answer lacks the certificate or the root")
        }
        guard chain[0].publicKey == key.publicKey else {
            throw CAError(.keyMismatch, "the CA signed another key than the one in the CSR")
        }
    }

    /// Checks the new chain against the roots before it is written.
    func verify() async throws -> VerifiedPeer {
        let bundle = try TrustBundle(trustDomain: trustDomain, roots: roots)
        return try await PeerCertificateVerifier(bundle: bundle, usage: .clientAuth).verify(chain)
    }
}
