import PolicyCore

/// Why a token, key or key set was refused: a stable code and a short lowercase reason.
///
/// Reasons are safe to send to a client (the body of a 401): they name what failed, never key material or the
/// token itself.
public struct JOSEError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// The error as a `Diagnostic` with the same code and message.
    public var diagnostic: Diagnostic { Diagnostic(code: code.rawValue, message: message) }

    /// Stable codes, one per way a token, a key or a key set can fail.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        // The compact serialization.
        case tooLarge = "jwt_too_large"
        case malformed = "jwt_malformed"
        case badBase64 = "jwt_bad_base64"
        case badHeader = "jwt_bad_header"
        case badPayload = "jwt_bad_payload"
        case unsupportedAlgorithm = "jwt_unsupported_algorithm"
        case unsupportedCritical = "jwt_unsupported_critical_header"
        // Claims.
        case badClaim = "jwt_bad_claim"
        case unknownIssuer = "jwt_unknown_issuer"
        case expired = "jwt_expired"
        case notYetValid = "jwt_not_yet_valid"
        case issuedInFuture = "jwt_issued_in_future"
        case tooOld = "jwt_too_old"
        case audienceNotAllowed = "jwt_audience_not_allowed"
        // Keys and signatures.
        case noMatchingKey = "jwks_no_matching_key"
        case keyAlgorithmMismatch = "jwt_key_algorithm_mismatch"
        case signatureInvalid = "jwt_signature_invalid"
        case badKey = "jwk_invalid"
        case unsupportedKey = "jwk_unsupported"
        case weakKey = "jwk_weak_key"
        case badKeySet = "jwks_invalid"
        case keysUnavailable = "jwks_unavailable"
        case badPEM = "pem_invalid"
    }
}

extension JOSEError {
    static func malformed(_ message: String) -> JOSEError { JOSEError(.malformed, message) }
    static func badKey(_ message: String) -> JOSEError { JOSEError(.badKey, message) }
}
