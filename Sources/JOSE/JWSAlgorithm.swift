/// The JWS signature algorithms Warden verifies (RFC 7518 §3, RFC 8037 for EdDSA).
///
/// `none` is deliberately absent: an unsecured JWS is never accepted, whatever the key set holds.
public enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
    case edDSA = "EdDSA"
    case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"

    public var description: String { rawValue }

    /// The family of keys the algorithm needs.
    public var keyType: KeyType {
        switch self {
        case .rs256, .rs384, .rs512, .ps256, .ps384, .ps512: .rsa
        case .es256, .es384, .es512: .ec
        case .edDSA: .okp
        case .hs256, .hs384, .hs512: .oct
        }
    }

    /// Whether the algorithm is symmetric (a shared secret, not a public key).
    public var isSymmetric: Bool { keyType == .oct }

    /// The hash the algorithm signs (EdDSA hashes internally; reported as SHA-512 for completeness).
    public var hash: Hash {
        switch self {
        case .rs256, .ps256, .es256, .hs256: .sha256
        case .rs384, .ps384, .es384, .hs384: .sha384
        case .rs512, .ps512, .es512, .hs512, .edDSA: .sha512
        }
    }

    /// The algorithm named by a JOSE `alg` value; nil for `none` and every algorithm Warden does not verify.
    public init?(name: String) {
        self.init(rawValue: name)
    }

    public enum Hash: Sendable, Hashable {
        case sha256, sha384, sha512
    }

    /// A JWK `kty`.
    public enum KeyType: String, Sendable, Hashable, CustomStringConvertible {
        case rsa = "RSA"
        case ec = "EC"
        case okp = "OKP"
        case oct = "oct"

        public var description: String { rawValue }
    }
}
