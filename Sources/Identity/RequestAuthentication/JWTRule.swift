import JOSE
import PolicyCore

/// One `jwtRules[]` entry of a RequestAuthentication: which tokens it accepts, where it finds them, and what it
/// passes on after verifying one.
public struct JWTRule: Sendable {
    public var issuer: String
    /// When not empty, a token's `aud` must hold one of these.
    public var audiences: [String]
    public var keys: Keys
    public var fromHeaders: [HeaderLocation]
    public var fromParams: [String]
    public var fromCookies: [String]
    /// The header that receives the verified payload (base64url of its JSON), when set.
    public var outputPayloadToHeader: String?
    public var outputClaimToHeaders: [ClaimToHeader]
    /// Keep the token on the forwarded request; by default it is stripped.
    public var forwardOriginalToken: Bool
    /// How long to wait for a remote key set.
    public var timeout: Duration
    /// Claims whose space-separated string values are also offered as lists (`scope` and `permission` always).
    public var spaceDelimitedClaims: [String]
    /// The RequestAuthentication that holds the rule, and where the rule was written.
    public var policy: RequestAuthentication.ID?
    public var span: SourceSpan?

    public static let defaultTimeout: Duration = .seconds(5)
    /// Claims Envoy always splits on spaces (OAuth scopes and permissions).
    public static let defaultSpaceDelimitedClaims = ["permission", "scope"]

    /// Where the rule's signing keys come from.
    public enum Keys: Sendable {
        /// The `jwks` field.
        case inline(JWKSet)
        /// `jwksUri`, or OpenID discovery from the issuer when neither field is set.
        case remote(RemoteKeys)
    }

    /// A header that carries tokens, with the prefix that comes before the token (`Bearer `).
    public struct HeaderLocation: Sendable, Hashable {
        public var name: String
        public var prefix: String

        public init(name: String, prefix: String = "") {
            self.name = name
            self.prefix = prefix
        }
    }

    /// `outputClaimToHeaders[]`: copy one claim (nested with `.`) into a header.
    public struct ClaimToHeader: Sendable, Hashable {
        public var header: String
        public var claim: String

        public init(header: String, claim: String) {
            self.header = header
            self.claim = claim
        }
    }

    public init(
        issuer: String,
        audiences: [String] = [],
        keys: Keys,
        fromHeaders: [HeaderLocation] = [],
        fromParams: [String] = [],
        fromCookies: [String] = [],
        outputPayloadToHeader: String? = nil,
        outputClaimToHeaders: [ClaimToHeader] = [],
        forwardOriginalToken: Bool = false,
        timeout: Duration = defaultTimeout,
        spaceDelimitedClaims: [String] = [],
        policy: RequestAuthentication.ID? = nil,
        span: SourceSpan? = nil
    ) {
        self.issuer = issuer
        self.audiences = audiences
        self.keys = keys
        self.fromHeaders = fromHeaders
        self.fromParams = fromParams
        self.fromCookies = fromCookies
        self.outputPayloadToHeader = outputPayloadToHeader
        self.outputClaimToHeaders = outputClaimToHeaders
        self.forwardOriginalToken = forwardOriginalToken
        self.timeout = timeout
        self.spaceDelimitedClaims = spaceDelimitedClaims
        self.policy = policy
        self.span = span
    }

    /// Where the rule looks for tokens: its own locations, or `Authorization: Bearer <token>` and the
    /// `access_token` query parameter when it names none.
    public var locations: [TokenLocation] {
        if fromHeaders.isEmpty && fromParams.isEmpty && fromCookies.isEmpty {
            return [.header(name: "authorization", prefix: "Bearer "), .queryParameter("access_token")]
        }
        return fromHeaders.map { .header(name: Headers.normalize($0.name), prefix: $0.prefix) }
            + fromParams.map { .queryParameter($0) } + fromCookies.map { .cookie($0) }
    }
}

/// Where a request carries a token.
public enum TokenLocation: Sendable, Hashable, CustomStringConvertible {
    /// A header (lowercase name) and the text before the token.
    case header(name: String, prefix: String)
    case queryParameter(String)
    case cookie(String)

    public var description: String {
        switch self {
        case .header(let name, let prefix): prefix.isEmpty ? "header `\(name)`" : "header `\(name): \(prefix)`"
        case .queryParameter(let name): "query parameter `\(name)`"
        case .cookie(let name): "cookie `\(name)`"
        }
    }
}

/// A key set fetched over the network.
public enum RemoteKeys: Sendable, Hashable, CustomStringConvertible {
    /// A JWKS document at this http or https URL.
    case uri(String)
    /// The `jwks_uri` of the issuer's OpenID configuration (`<issuer>/.well-known/openid-configuration`).
    case discovery(issuer: String)

    public var description: String {
        switch self {
        case .uri(let uri): uri
        case .discovery(let issuer): "OpenID discovery for `\(issuer)`"
        }
    }
}
