import Identity

/// The PeerAuthentication stage of a connection: given the mode in force for the workload's port and what the first
/// bytes say, terminate TLS (requiring or merely accepting a client certificate), serve plaintext, or refuse.
public enum ConnectionAdmission: Sendable, Hashable {
    /// Whether the TLS client must present a certificate.
    public enum ClientCertificate: Sendable, Hashable {
        /// STRICT: no certificate, no handshake.
        case required
        /// PERMISSIVE: a client without one proceeds without a peer identity; one that presents a certificate must
        /// present a valid one.
        case optional
    }

    /// Why a connection is refused before any HTTP is read.
    public enum Refusal: String, Sendable, Hashable {
        /// Plaintext under STRICT.
        case plaintextNotAllowed = "plaintext_under_strict"
        /// TLS under DISABLE.
        case tlsNotAllowed = "tls_under_disable"
        /// A TLS record that is no ClientHello.
        case malformedTLS = "malformed_client_hello"
    }

    case terminateTLS(ClientCertificate)
    case plaintext
    case refuse(Refusal)

    /// The plan for a connection that started with `start` under `mode`. Must not be asked with `.needMoreBytes`.
    public static func plan(mode: MutualTLSMode, start: ConnectionStart) -> ConnectionAdmission {
        switch (mode, start) {
        case (_, .malformedTLS): .refuse(.malformedTLS)
        case (.strict, .tls): .terminateTLS(.required)
        case (.strict, _): .refuse(.plaintextNotAllowed)
        case (.permissive, .tls): .terminateTLS(.optional)
        case (.permissive, _): .plaintext
        case (.disable, .tls): .refuse(.tlsNotAllowed)
        case (.disable, _): .plaintext
        }
    }
}
