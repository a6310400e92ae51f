import Foundation
import PolicyCore
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// A peer certificate chain that verified, and the SPIFFE ID it proves.
public struct VerifiedPeer: Sendable {
    public let spiffeID: SPIFFEID
    /// The chain as verified: the leaf first, the root of the trust bundle last.
    public let chain: [Certificate]

    public var leaf: Certificate { chain[0] }
    public var notValidAfter: Date { chain.map(\.notValidAfter).min() ?? leaf.notValidAfter }
}

/// Why a peer chain was refused. `reason` is typed; `message` says it in a sentence fit for a log or a status.
public struct PeerCertificateError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        /// No certificate was presented.
        case noCertificate
        /// The leaf, or a CA certificate of its chain, expired at this time.
        case expired(subject: String, notAfter: Date)
        /// The leaf, or a CA certificate of its chain, is valid only from this time.
        case notYetValid(subject: String, notBefore: Date)
        /// No chain leads from the leaf to a root of the trust bundle (another CA signed it, or a signature is bad).
        case unknownAuthority
        /// A chain was found but breaks a rule of RFC 5280 (basic constraints, name constraints, version).
        case invalidChain(String)
        /// The leaf is a CA certificate.
        case leafIsCA
        /// The leaf's extended key usage does not allow the use asked for.
        case wrongUsage(PeerCertificateVerifier.Usage)
        /// The leaf has no URI SAN.
        case noSPIFFEID
        /// The leaf has more than one URI SAN.
        case severalURIs([String])
        /// The leaf's only URI SAN is not a valid SPIFFE ID.
        case invalidSPIFFEID(String)
        /// The SPIFFE ID belongs to another trust domain than the bundle's.
        case outsideTrustDomain(SPIFFEID, trustDomain: String)
    }

    public let reason: Reason

    public init(_ reason: Reason) {
        self.reason = reason
    }

    /// A stable code per reason.
    public var code: String {
        switch reason {
        case .noCertificate: "peer_no_certificate"
        case .expired: "peer_certificate_expired"
        case .notYetValid: "peer_certificate_not_yet_valid"
        case .unknownAuthority: "peer_unknown_authority"
        case .invalidChain: "peer_invalid_chain"
        case .leafIsCA: "peer_leaf_is_ca"
        case .wrongUsage: "peer_wrong_usage"
        case .noSPIFFEID: "peer_no_spiffe_id"
        case .severalURIs: "peer_several_uris"
        case .invalidSPIFFEID: "peer_invalid_spiffe_id"
        case .outsideTrustDomain: "peer_outside_trust_domain"
        }
    }

    public var message: String {
        switch reason {
        case .noCertificate:
            "no certificate was presented"
        case .expired(let subject, let notAfter):
            "the certificate \(subject) expired at \(CertificateText.time(notAfter))"
        case .notYetValid(let subject, let notBefore):
            "the certificate \(subject) is not valid before \(CertificateText.time(notBefore))"
        case .unknownAuthority:
            "the certificate is not issued by a CA of the trust bundle"
        case .invalidChain(let why):
            "the certificate chain is invalid: \(why)"
        case .leafIsCA:
            "the certificate is a CA certificate, not a workload's"
        case .wrongUsage(let usage):
            "the certificate's extended key usage does not allow \(usage.rawValue)"
        case .noSPIFFEID:
            "the certificate has no SPIFFE ID (no URI SAN)"
        case .severalURIs(let uris):
            "the certificate has \(uris.count) URI SANs (\(uris.map { "`\($0)`" }.joined(separator: ", "))); a SPIFFE certificate has exactly one"
        case .invalidSPIFFEID(let why):
            why
        case .outsideTrustDomain(let id, let trustDomain):
            "`\(id)` is outside the trust domain `\(trustDomain)`"
        }
    }

    public var description: String { message }
}

/// Verifies a peer's X.509-SVID chain against a trust bundle with swift-certificates' `Verifier`: a chain from the
/// leaf (through the intermediates the peer sent) to any root of the bundle, every certificate valid at the time,
/// RFC 5280's rules, a leaf that is not a CA, an extended key usage allowing the use asked for, and exactly one
/// URI SAN, a SPIFFE ID of the bundle's trust domain.
///
/// This is how Warden decides who a TLS peer is: the CA's service for its callers, the front proxy for clients.
public struct PeerCertificateVerifier: Sendable {
    /// The extended key usage the leaf must allow.
    public enum Usage: String, Sendable, Hashable {
        /// The peer is a TLS client: `clientAuth`.
        case clientAuth
        /// The peer is a TLS server: `serverAuth`.
        case serverAuth
    }

    public let bundle: TrustBundle
    public let usage: Usage
    /// At most this many intermediates are considered.
    public static let maximumIntermediates = 8

    public init(bundle: TrustBundle, usage: Usage) {
        self.bundle = bundle
        self.usage = usage
    }

    /// Verifies `chain` (the leaf first, then any intermediates, as a TLS peer sends it) at `now`.
    public func verify(_ chain: [Certificate], now: Date = Date()) async throws(PeerCertificateError) -> VerifiedPeer {
        guard let leaf = chain.first else { throw PeerCertificateError(.noCertificate) }
        let intermediates = chain.dropFirst().prefix(Self.maximumIntermediates)
        let policy = SVIDPolicy(now: now, usage: usage, trustDomain: bundle.trustDomain)
        var verifier = Verifier(rootCertificates: CertificateStore(bundle.roots)) { policy }
        let failures: [PeerCertificateError]
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates)) {
        case .validCertificate(let validated):
            let certificates = Array(validated)
            // The policy accepted this chain, so the leaf's SPIFFE ID reads without error.
            guard case .success(let id) = SVIDPolicy.spiffeID(of: certificates[0], trustDomain: bundle.trustDomain) else {
                throw PeerCertificateError(.noSPIFFEID)
            }
            return VerifiedPeer(spiffeID: id, chain: certificates)
        case .couldNotValidate(let policyFailures):
            failures = policyFailures.compactMap { policy.check($0.chain) }
        }
        // A chain was found but failed the policy: report why the first one failed. None found: another CA.
        throw failures.first ?? PeerCertificateError(.unknownAuthority)
    }
}

/// The policy a candidate chain must meet. Failures travel through swift-certificates as text; each is encoded so
/// that `decode` gets the typed reason back.
struct SVIDPolicy: VerifierPolicy {
    let now: Date
    let usage: PeerCertificateVerifier.Usage
    let trustDomain: String
    let rfc5280: RFC5280Policy

    init(now: Date, usage: PeerCertificateVerifier.Usage, trustDomain: String) {
        self.now = now
        self.usage = usage
        self.trustDomain = trustDomain
        rfc5280 = RFC5280Policy(fixedExpiryValidationTime: now)
    }

    var verifyingCriticalExtensions: [ASN1ObjectIdentifier] {
        rfc5280.verifyingCriticalExtensions + [
            .X509ExtensionID.extendedKeyUsage, .X509ExtensionID.subjectAlternativeName,
        ]
    }

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        if let error = check(chain) {
            return .failsToMeetPolicy(reason: PolicyFailureReason(error.message))
        }
        return .meetsPolicy
    }

    /// Why `chain` fails the policy, or nil when it meets it. swift-certificates keeps a failure as text only, so
    /// the verifier runs this again on a failed chain to get the typed reason.
    func check(_ unverified: UnverifiedCertificateChain) -> PeerCertificateError? {
        let chain = Array(unverified)
        for certificate in chain {
            if now > certificate.notValidAfter {
                return PeerCertificateError(.expired(subject: Self.name(certificate), notAfter: certificate.notValidAfter))
            }
            if now < certificate.notValidBefore {
                return PeerCertificateError(.notYetValid(subject: Self.name(certificate), notBefore: certificate.notValidBefore))
            }
        }
        if case .failsToMeetPolicy(let reason) = rfc5280.chainMeetsPolicyRequirements(chain: unverified) {
            return PeerCertificateError(.invalidChain(String(describing: reason)))
        }
        if case .failure(let error) = Self.leafIdentity(chain[0], usage: usage, trustDomain: trustDomain) { return error }
        return nil
    }

    /// The rules for the leaf itself: not a CA, an extended key usage allowing `usage`, and one SPIFFE ID (of
    /// `trustDomain` when one is given).
    static func leafIdentity(
        _ leaf: Certificate, usage: PeerCertificateVerifier.Usage, trustDomain: String?
    ) -> Result<SPIFFEID, PeerCertificateError> {
        if CertificateProfile.isCA(leaf) { return .failure(PeerCertificateError(.leafIsCA)) }
        let wanted: ExtendedKeyUsage.Usage = usage == .clientAuth ? .clientAuth : .serverAuth
        guard let usages = try? leaf.extensions.extendedKeyUsage,
            usages.contains(wanted) || usages.contains(.any)
        else {
            return .failure(PeerCertificateError(.wrongUsage(usage)))
        }
        return spiffeID(of: leaf, trustDomain: trustDomain)
    }

    /// The leaf's SPIFFE ID: exactly one URI SAN, a valid SPIFFE ID (of `trustDomain` when one is given).
    static func spiffeID(of leaf: Certificate, trustDomain: String?) -> Result<SPIFFEID, PeerCertificateError> {
        guard let names = try? CertificateNames(leaf) else {
            return .failure(PeerCertificateError(.invalidChain("the subject alternative names cannot be read")))
        }
        guard let uri = names.uris.first else { return .failure(PeerCertificateError(.noSPIFFEID)) }
        guard names.uris.count == 1 else { return .failure(PeerCertificateError(.severalURIs(names.uris))) }
        let id: SPIFFEID
        do {
            id = try SPIFFEID(parsing: uri)
        } catch {
            return .failure(PeerCertificateError(.invalidSPIFFEID(error.message)))
        }
        if let trustDomain, !id.isMember(of: trustDomain) {
            return .failure(PeerCertificateError(.outsideTrustDomain(id, trustDomain: trustDomain)))
        }
        guard !id.path.isEmpty else {
            return .failure(PeerCertificateError(.invalidSPIFFEID("`\(id)` names a trust domain, not a workload")))
        }
        return .success(id)
    }

    private static func name(_ certificate: Certificate) -> String {
        let subject = certificate.subject.description
        if !subject.isEmpty { return "`\(subject)`" }
        let uri = (try? CertificateNames(certificate))?.uris.first
        return uri.map { "`\($0)`" } ?? "with serial \(CertificateText.serial(certificate))"
    }
}
