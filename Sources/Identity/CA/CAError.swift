import PolicyCore

/// Why the CA refused to create, load, issue or sign: a stable code and a short lowercase reason.
///
/// Reasons may be sent to a caller of the certificate service: they name what failed (a SPIFFE ID, a DNS name,
/// a file), never key material.
public struct CAError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// The error as a `Diagnostic` with the same code and message.
    public var diagnostic: Diagnostic { Diagnostic(code: code.rawValue, message: message) }

    /// Stable codes, one per way a CA operation can fail.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        // Reading CA material.
        case badPEM = "ca_pem_invalid"
        case badKey = "ca_key_invalid"
        case keyMismatch = "ca_key_mismatch"
        case notACA = "ca_not_a_ca"
        case badChain = "ca_chain_invalid"
        case expired = "ca_expired"
        case fileError = "ca_file_error"
        case exists = "ca_exists"
        // What is asked of the CA.
        case badIdentity = "ca_identity_invalid"
        case outsideTrustDomain = "ca_outside_trust_domain"
        case badName = "ca_name_invalid"
        case badLifetime = "ca_lifetime_invalid"
        // Certificate signing requests.
        case badCSR = "csr_invalid"
        case csrSignature = "csr_signature_invalid"
        case weakKey = "csr_weak_key"
        case identityMismatch = "csr_identity_mismatch"
        case nameNotEntitled = "csr_name_not_entitled"
        // Bootstrap tokens.
        case badToken = "bootstrap_token_invalid"
    }
}
