import PolicyCore

/// The registered claims of a JWT (RFC 7519 §4.1) read from its payload, with their types checked: `iss`, `sub`,
/// `azp` and `jti` strings; `aud` a string or a list of strings; `exp`, `nbf` and `iat` numbers.
public struct JWTClaims: Sendable {
    /// The whole payload.
    public let payload: Value
    public let issuer: String?
    public let subject: String?
    /// `aud` as a list (a single string becomes a list of one).
    public let audiences: [String]
    /// `azp`, the authorized presenter.
    public let presenter: String?
    /// Seconds since the epoch.
    public let expiresAt: Double?
    public let notBefore: Double?
    public let issuedAt: Double?

    /// `iss/sub`, Istio's request principal; nil unless both claims are present.
    public var principal: String? {
        guard let issuer, let subject else { return nil }
        return issuer + "/" + subject
    }

    public init(payload: Value) throws(JOSEError) {
        guard case .object = payload else { throw JOSEError(.badPayload, "jwt payload is not a JSON object") }
        self.payload = payload
        issuer = try Self.string(payload, "iss")
        subject = try Self.string(payload, "sub")
        presenter = try Self.string(payload, "azp")
        _ = try Self.string(payload, "jti")
        switch payload["aud"] {
        case nil:
            audiences = []
        case .string(let one)?:
            audiences = [one]
        case .array(let list)?:
            var out: [String] = []
            for item in list {
                guard let text = item.stringValue else {
                    throw JOSEError(.badClaim, "jwt claim `aud` is not a string or a list of strings")
                }
                out.append(text)
            }
            audiences = out
        default:
            throw JOSEError(.badClaim, "jwt claim `aud` is not a string or a list of strings")
        }
        expiresAt = try Self.time(payload, "exp")
        notBefore = try Self.time(payload, "nbf")
        issuedAt = try Self.time(payload, "iat")
    }

    private static func string(_ payload: Value, _ name: String) throws(JOSEError) -> String? {
        guard let value = payload[name] else { return nil }
        guard let text = value.stringValue else { throw JOSEError(.badClaim, "jwt claim `\(name)` is not a string") }
        return text
    }

    private static func time(_ payload: Value, _ name: String) throws(JOSEError) -> Double? {
        guard let value = payload[name] else { return nil }
        guard let number = value.numberValue, number.doubleValue.isFinite else {
            throw JOSEError(.badClaim, "jwt claim `\(name)` is not a number of seconds")
        }
        return number.doubleValue
    }
}
