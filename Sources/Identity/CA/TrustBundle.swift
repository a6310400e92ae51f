import PolicyCore
import X509

/// The roots a trust domain's certificates chain to: `root-cert.pem`. It may hold several roots (the old and the
/// new while a root is rotated); a chain to any of them verifies.
public struct TrustBundle: Sendable {
    public let trustDomain: String
    public let roots: [Certificate]

    /// A bundle of `roots` for `trustDomain`. Every root must be a CA certificate; at least one is needed.
    public init(trustDomain: String, roots: [Certificate]) throws(CAError) {
        guard (try? SPIFFEID(principal: trustDomain)) != nil, !trustDomain.contains("/") else {
            throw CAError(.badIdentity, "`\(trustDomain)` is not a SPIFFE trust domain")
        }
        guard !roots.isEmpty else { throw CAError(.badChain, "a trust bundle needs at least one root") }
        for root in roots where !CertificateProfile.isCA(root) {
            throw CAError(.notACA, "`\(root.subject)` in the trust bundle is not a CA certificate")
        }
        self.trustDomain = trustDomain
        var seen: [Certificate] = []
        for root in roots where !seen.contains(root) { seen.append(root) }
        self.roots = seen
    }

    /// A bundle from PEM text (`root-cert.pem`).
    public init(trustDomain: String, pem: String) throws(CAError) {
        try self.init(trustDomain: trustDomain, roots: PEMCertificates.parse(pem, what: "the trust bundle"))
    }

    /// The bundle with `other`'s roots added (for a rotation: old and new).
    public func adding(_ other: [Certificate]) throws(CAError) -> TrustBundle {
        try TrustBundle(trustDomain: trustDomain, roots: roots + other)
    }

    public var pem: String { PEMCertificates.pem(roots) }

    public func contains(_ certificate: Certificate) -> Bool { roots.contains(certificate) }
}
