import JOSE
import PolicyCore

/// What authenticating a request decided, and how the request must change before it is forwarded.
public struct AuthenticationResult: Sendable {
    public enum Outcome: Sendable {
        /// No token in any location a rule reads: the request goes on without an identity.
        case anonymous
        /// One token verified.
        case authenticated(AuthenticatedToken)
        /// A token was present and failed: answer with `failure.status` and never forward the request.
        case denied(AuthenticationFailure)
    }

    public let outcome: Outcome
    /// Lowercase names of headers to remove before forwarding: every header a rule writes its output to (so a
    /// client cannot forge them) and, unless `forwardOriginalToken`, the header the verified token came in.
    public let headersToRemove: [String]
    /// Headers to set on the forwarded request (`outputPayloadToHeader`, `outputClaimToHeaders`).
    public let headersToSet: [(name: String, value: String)]
    /// Query parameters and cookies that carried the verified token, to strip unless `forwardOriginalToken`.
    public let queryParametersToRemove: [String]
    public let cookiesToRemove: [String]

    init(
        outcome: Outcome, headersToRemove: [String], headersToSet: [(name: String, value: String)] = [],
        queryParametersToRemove: [String] = [], cookiesToRemove: [String] = []
    ) {
        self.outcome = outcome
        self.headersToRemove = headersToRemove
        self.headersToSet = headersToSet
        self.queryParametersToRemove = queryParametersToRemove
        self.cookiesToRemove = cookiesToRemove
    }

    /// The verified token, when there is one.
    public var token: AuthenticatedToken? {
        if case .authenticated(let token) = outcome { return token }
        return nil
    }

    public var failure: AuthenticationFailure? {
        if case .denied(let failure) = outcome { return failure }
        return nil
    }

    public var isDenied: Bool { failure != nil }

    /// `request.auth.*` for the authorization engine: nil for an anonymous (or denied) request.
    public var requestAuth: AuthzRequest.RequestAuth? { token?.requestAuth }
}

/// A verified token and the identity it carries. A class, so handing out a cached one costs one reference.
public final class AuthenticatedToken: Sendable {
    public let issuer: String
    public let subject: String?
    /// `iss/sub`; nil when the token has no `sub`.
    public let principal: String?
    public let audiences: [String]
    /// `azp`.
    public let presenter: String?
    /// The whole payload, as the token carried it.
    public let claims: Value
    /// The claims as authorization rules see them: space-delimited claims (`scope`, `permission`, and the rule's
    /// `spaceDelimitedClaims`) also split into lists, as Envoy normalizes them.
    public let normalizedClaims: Value
    public let header: Value
    public let location: TokenLocation
    /// The position of the rule that verified the token in `RequestAuthenticator.rules`.
    public let ruleIndex: Int
    public let expiresAt: Double?

    init(
        issuer: String, subject: String?, principal: String?, audiences: [String], presenter: String?, claims: Value,
        normalizedClaims: Value, header: Value, location: TokenLocation, ruleIndex: Int, expiresAt: Double?
    ) {
        self.issuer = issuer
        self.subject = subject
        self.principal = principal
        self.audiences = audiences
        self.presenter = presenter
        self.claims = claims
        self.normalizedClaims = normalizedClaims
        self.header = header
        self.location = location
        self.ruleIndex = ruleIndex
        self.expiresAt = expiresAt
        requestAuth = AuthzRequest.RequestAuth(
            principal: principal, audiences: audiences, presenter: presenter, claims: normalizedClaims)
    }

    /// `request.auth.principal`, `audiences`, `presenter` and `claims`, made once (a cached token reuses it).
    public let requestAuth: AuthzRequest.RequestAuth
}

/// Why a request with a token is refused, and the response to send.
public struct AuthenticationFailure: Sendable, Hashable {
    public let error: JOSEError
    /// 401, or 403 when only the audience failed (Envoy's choice; configurable in `RequestAuthenticator.Options`).
    public let status: Int
    /// The request URL without its query.
    public let realm: String

    /// The short reason, also the response body. It names what failed, never the token or key material.
    public var reason: String { error.message }

    /// `Bearer realm="<url>", error="invalid_token"` (RFC 6750 §3).
    public var wwwAuthenticate: String { "Bearer realm=\"\(realm)\", error=\"invalid_token\"" }

    /// The realm of a challenge for `url`: query and fragment dropped, quotes and backslashes escaped, control
    /// characters removed, at most 256 bytes of path kept.
    static func realm(for url: String) -> String {
        var text = Substring(url)
        if let cut = text.firstIndex(where: { $0 == "?" || $0 == "#" }) { text = text[..<cut] }
        var out = ""
        var bytes = 0
        for scalar in text.unicodeScalars {
            guard scalar.value >= 0x20, scalar.value != 0x7F else { continue }
            bytes += String(scalar).utf8.count
            if bytes > 512 { break }
            if scalar == "\"" || scalar == "\\" { out.append("\\") }
            out.unicodeScalars.append(scalar)
        }
        return out
    }
}
