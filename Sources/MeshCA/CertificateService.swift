import Foundation
import GRPCCore
import Identity
import Logging
import PolicyCore
import SwiftProtobuf
import X509

/// The certificate chain a caller presented in the TLS handshake (leaf first), as the CA's listener hands it to
/// the service. The chain is not verified yet: the service verifies it against the CA's trust bundle.
public struct PresentedCertificates: ServerContext.TransportSpecific {
    public var chain: [Certificate]

    public init(chain: [Certificate]) {
        self.chain = chain
    }
}

/// One issuance, as the service logs it.
public struct IssuanceRecord: Sendable, CustomStringConvertible {
    public var serial: String
    public var spiffeID: SPIFFEID
    public var notValidAfter: Date
    /// How the caller authenticated: `certificate:<serial>` or `bootstrap-token:<id>`.
    public var credential: String
    /// The caller's address.
    public var caller: String

    public var description: String {
        "issued serial=\(serial) spiffe_id=\(spiffeID.uri) not_after=\(CertificateText.time(notValidAfter))"
            + " caller=\(caller) credential=\(credential)"
    }

    /// The record as log metadata.
    public var metadata: Logger.Metadata {
        [
            "serial": "\(serial)", "spiffe_id": "\(spiffeID.uri)", "not_after": "\(CertificateText.time(notValidAfter))",
            "caller": "\(caller)", "credential": "\(credential)",
        ]
    }
}

/// `istio.v1.auth.IstioCertificateService/CreateCertificate`: signs a workload's CSR.
///
/// The caller is authenticated by the certificate it presented in the TLS handshake (chaining to this CA's trust
/// bundle, valid now, clientAuth, one SPIFFE ID) or, when it presented none, by a one-time bootstrap token in
/// `authorization: Bearer ...`. The certificate names the authenticated SPIFFE ID, never one from the CSR: a CSR
/// asking for another identity, or for names the caller is not entitled to, is refused with PERMISSION_DENIED; a
/// CSR that cannot be read or whose signature fails, with INVALID_ARGUMENT; no or bad credentials, with
/// UNAUTHENTICATED.
public struct CertificateService: Istio_V1_Auth_IstioCertificateService.ServiceProtocol {
    public let ca: CertificateAuthority
    public let lifetimes: LifetimePolicy
    public let ledger: BootstrapTokenLedger
    public let log: @Sendable (IssuanceRecord) -> Void
    private let verifier: PeerCertificateVerifier

    public init(
        ca: CertificateAuthority, lifetimes: LifetimePolicy, ledger: BootstrapTokenLedger,
        log: @escaping @Sendable (IssuanceRecord) -> Void
    ) {
        self.ca = ca
        self.lifetimes = lifetimes
        self.ledger = ledger
        self.log = log
        verifier = PeerCertificateVerifier(bundle: ca.bundle, usage: .clientAuth)
    }

    /// How a caller proved who it is.
    enum Credential {
        case certificate(VerifiedPeer)
        case token(BootstrapGrant)

        var entitlement: Entitlement {
            switch self {
            case .certificate(let peer): Entitlement(peer: peer)
            case .token(let grant): grant.entitlement
            }
        }

        var label: String {
            switch self {
            case .certificate(let peer): "certificate:\(CertificateText.serial(peer.leaf))"
            case .token(let grant): "bootstrap-token:\(grant.id)"
            }
        }
    }

    public func createCertificate(
        request: ServerRequest<Istio_V1_Auth_IstioCertificateRequest>, context: ServerContext
    ) async throws -> ServerResponse<Istio_V1_Auth_IstioCertificateResponse> {
        let now = Date()
        let presented = (context.transportSpecific as? PresentedCertificates)?.chain ?? []
        let credential = try await authenticate(presented: presented, metadata: request.metadata, now: now)
        let issued: IssuedCertificate
        do {
            issued = try ca.sign(
                csrPEM: request.message.csr, for: credential.entitlement,
                requestedLifetime: TimeInterval(request.message.validityDuration), lifetimes: lifetimes, now: now)
        } catch {
            throw RPCError(code: Self.status(for: error.code), message: error.message)
        }
        if case .token(let grant) = credential {
            // Only now is the token spent: a refused CSR leaves it usable, and of two calls racing with one token
            // exactly one gets here first.
            let fresh: Bool
            do {
                fresh = try ledger.consume(grant)
            } catch {
                throw RPCError(code: .unavailable, message: error.message)
            }
            guard fresh else {
                throw RPCError(code: .unauthenticated, message: "the bootstrap token was already used")
            }
        }
        log(IssuanceRecord(
            serial: issued.serialNumber, spiffeID: credential.entitlement.spiffeID,
            notValidAfter: issued.certificate.notValidAfter, credential: credential.label, caller: context.remotePeer))
        return ServerResponse(message: .with { $0.certChain = issued.istioChain })
    }

    func authenticate(presented: [Certificate], metadata: Metadata, now: Date) async throws -> Credential {
        if !presented.isEmpty {
            do {
                return .certificate(try await verifier.verify(presented, now: now))
            } catch {
                throw RPCError(code: .unauthenticated, message: "the client certificate is refused: \(error.message)")
            }
        }
        guard let token = Self.bearerToken(metadata) else {
            throw RPCError(
                code: .unauthenticated,
                message: "no credential: present a certificate of this CA or send `authorization: Bearer <bootstrap token>`")
        }
        let grant: BootstrapGrant
        do {
            grant = try ca.verifyBootstrapToken(token, now: now)
        } catch {
            throw RPCError(code: .unauthenticated, message: error.message)
        }
        return .token(grant)
    }

    /// The token of the first `authorization: Bearer <token>` header.
    static func bearerToken(_ metadata: Metadata) -> String? {
        for value in metadata[stringValues: "authorization"] {
            let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                return parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    /// The status a refusal of the CA maps to.
    static func status(for code: CAError.Code) -> RPCError.Code {
        switch code {
        case .badCSR, .csrSignature, .weakKey, .badName, .badLifetime, .badPEM:
            .invalidArgument
        case .identityMismatch, .nameNotEntitled, .outsideTrustDomain, .badIdentity:
            .permissionDenied
        case .badToken:
            .unauthenticated
        case .expired:
            .failedPrecondition
        case .badKey, .keyMismatch, .notACA, .badChain, .fileError, .exists:
            .internalError
        }
    }
}
