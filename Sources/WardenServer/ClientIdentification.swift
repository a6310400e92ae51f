import Identity
import Logging
import Networking
import PolicyCore

/// How the server names the TLS clients of its listeners, from the leaf certificate the handshake verified against
/// the listener's `client_ca`: by Identity's rules for a SPIFFE leaf (`ClientCertificate`).
enum ClientIdentification {
    /// The data plane: a client is its SPIFFE ID, authorized when the ID is on the listener's allow-list. A
    /// certificate without a SPIFFE ID is never on it.
    static func dataPlane(allowed: Set<SPIFFEID>, listener: String, logger: Logger) -> PeerIdentifier {
        { der in
            guard let certificate = try? ClientCertificate(derEncoded: der) else { return nil }
            switch certificate.spiffeID {
            case .success(let id):
                let authorized = allowed.contains(id)
                if !authorized, !allowed.isEmpty {
                    logger.warning("\(listener): client `\(id.uri)` is not on the allow-list; it may not ask for decisions")
                }
                return TLSPeer(certificate: der, identity: id.uri, authorized: authorized)
            case .failure(let reason):
                if !allowed.isEmpty {
                    logger.warning("\(listener): client `\(certificate.identity)` has no SPIFFE ID (\(reason.message)); it may not ask for decisions")
                }
                return TLSPeer(certificate: der, identity: certificate.identity, authorized: false)
            }
        }
    }

    /// The management API: a client is its SPIFFE ID, else its certificate's subject, as OPA names a TLS client;
    /// the authorization policy decides what it may do.
    static let admin: PeerIdentifier = { der in
        guard let certificate = try? ClientCertificate(derEncoded: der) else { return nil }
        return TLSPeer(certificate: der, identity: certificate.identity, authorized: true)
    }
}
