import Foundation
import PolicyCore

/// What a JWT must satisfy beyond its signature.
public struct JWTValidation: Sendable, Hashable {
    /// The `iss` the token must carry; nil accepts any issuer.
    public var issuer: String?
    /// When not empty, the token's `aud` must hold one of these. Compared as Envoy compares them: a leading
    /// `http://` or `https://` and a trailing `/` are ignored on both sides.
    public var audiences: [String]
    /// Leeway for `exp`, `nbf` (and `iat` when checked), in seconds.
    public var clockSkew: Double
    /// Refuse a token whose `iat` lies in the future (beyond the skew). Off by default, as in Envoy.
    public var checkIssuedAt: Bool
    /// With `checkIssuedAt`: refuse a token issued longer ago than this many seconds.
    public var maximumAge: Double?
    /// Tokens longer than this many bytes are refused before decoding.
    public var maximumTokenSize: Int
    /// `crit` header extensions the caller handles; any other refuses the token.
    public var understoodCriticalHeaders: Set<String>

    public static let defaultClockSkew: Double = 60

    public init(
        issuer: String? = nil,
        audiences: [String] = [],
        clockSkew: Double = defaultClockSkew,
        checkIssuedAt: Bool = false,
        maximumAge: Double? = nil,
        maximumTokenSize: Int = JWS.defaultMaximumSize,
        understoodCriticalHeaders: Set<String> = []
    ) {
        self.issuer = issuer
        self.audiences = audiences
        self.clockSkew = clockSkew
        self.checkIssuedAt = checkIssuedAt
        self.maximumAge = maximumAge
        self.maximumTokenSize = maximumTokenSize
        self.understoodCriticalHeaders = understoodCriticalHeaders
    }
}

/// A JWT whose signature and claims were verified.
public struct VerifiedJWT: Sendable {
    public let jws: JWS
    public let claims: JWTClaims
    /// The `kid` of the key that verified the signature, when it had one.
    public let keyID: String?

    public var header: Value { jws.header }
    public var payload: Value { claims.payload }
    public var principal: String? { claims.principal }
}

/// Verifies JWTs: structure, algorithm, issuer, time and audience claims, then the signature against a key set.
/// Pure: no I/O, no clock of its own (the caller passes `now`).
public enum JWTVerifier {
    /// Parses a token and reads its claims without checking anything a key or a clock is needed for: the
    /// compact form, `crit`, the algorithm (`none` and unknown algorithms are refused) and the claim types.
    public static func decode(_ token: String, validation: JWTValidation = JWTValidation()) throws(JOSEError)
        -> (jws: JWS, claims: JWTClaims)
    {
        let jws = try JWS.parse(token, maximumSize: validation.maximumTokenSize)
        try jws.checkCritical(understood: validation.understoodCriticalHeaders)
        _ = try jws.requireAlgorithm()
        let claims = try JWTClaims(payload: jws.payloadJSON())
        return (jws, claims)
    }

    /// Checks issuer, time and audience (in that order, so the cheap checks refuse a token before any signature
    /// work). `now` is seconds since the epoch.
    public static func checkClaims(_ claims: JWTClaims, validation: JWTValidation, now: Double) throws(JOSEError) {
        if let issuer = validation.issuer, claims.issuer != issuer {
            throw JOSEError(.unknownIssuer, "jwt issuer is not configured")
        }
        try checkTime(claims, validation: validation, now: now)
        if !validation.audiences.isEmpty {
            let allowed = claims.audiences.contains { audience in
                let token = normalizedAudience(audience)
                return validation.audiences.contains { normalizedAudience($0) == token }
            }
            guard allowed else { throw JOSEError(.audienceNotAllowed, "audiences in jwt are not allowed") }
        }
    }

    /// `exp` (expired at or after `exp + skew`, RFC 7519 §4.1.4), `nbf` (valid from `nbf - skew`), and `iat` when
    /// configured.
    public static func checkTime(_ claims: JWTClaims, validation: JWTValidation, now: Double) throws(JOSEError) {
        let skew = validation.clockSkew
        if let exp = claims.expiresAt, now >= exp + skew {
            throw JOSEError(.expired, "jwt is expired")
        }
        if let nbf = claims.notBefore, now < nbf - skew {
            throw JOSEError(.notYetValid, "jwt is not yet valid")
        }
        if validation.checkIssuedAt {
            guard let iat = claims.issuedAt else { throw JOSEError(.badClaim, "jwt has no `iat` claim") }
            if now < iat - skew { throw JOSEError(.issuedInFuture, "jwt is issued in the future") }
            if let maximumAge = validation.maximumAge, now > iat + maximumAge + skew {
                throw JOSEError(.tooOld, "jwt was issued too long ago")
            }
        }
    }

    /// Verifies `token` completely against `keys` at time `now` (seconds since the epoch).
    public static func verify(_ token: String, keys: JWKSet, validation: JWTValidation, now: Double) throws(JOSEError)
        -> VerifiedJWT
    {
        let (jws, claims) = try decode(token, validation: validation)
        try checkClaims(claims, validation: validation, now: now)
        let key = try keys.verify(jws)
        return VerifiedJWT(jws: jws, claims: claims, keyID: key.keyID)
    }

    public static func verify(_ token: String, keys: JWKSet, validation: JWTValidation, at date: Date = Date())
        throws(JOSEError) -> VerifiedJWT
    {
        try verify(token, keys: keys, validation: validation, now: date.timeIntervalSince1970)
    }

    /// An audience without its `http://` or `https://` scheme and trailing `/`.
    static func normalizedAudience(_ audience: String) -> Substring {
        var text = Substring(audience)
        if text.hasPrefix("https://") {
            text = text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            text = text.dropFirst(7)
        }
        if text.hasSuffix("/") { text = text.dropLast() }
        return text
    }
}
