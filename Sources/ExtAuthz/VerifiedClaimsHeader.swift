import Foundation
import PolicyCore

/// The header `warden proxy` sends upstream after it has verified a request's JWT, so the server can fill
/// `request.auth.*` without seeing or re-verifying the token.
///
/// Format: `x-warden-verified-claims: <base64url>` where `<base64url>` is the URL-safe base64 encoding (padding
/// optional) of the verified token's JSON payload, an object. From it, `request.auth.principal` is `iss/sub`,
/// `request.auth.audiences` is `aud` (a string or a list), `request.auth.presenter` is `azp`, and
/// `request.auth.claims` is the whole object. The proxy removes any copy a client sent before setting its own;
/// the server reads the header only when configured to trust it.
public enum VerifiedClaimsHeader {
    public static let name = "x-warden-verified-claims"

    public struct FormatError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The header value for a claims object.
    public static func encode(_ claims: Value) -> String {
        let data = Data(JSONWriter.string(claims).utf8)
        return data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The claims object in a header value.
    public static func decode(_ text: String) throws(FormatError) -> Value {
        var base64 = text.trimmingCharacters(in: .whitespaces)
            .replacingOccurrences(of: "-", with: "+")
            .replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64) else { throw FormatError(message: "not base64url") }
        let claims: Value
        do {
            claims = try JSONReader.parse(Array(data))
        } catch {
            throw FormatError(message: "not JSON: \(error)")
        }
        guard case .object = claims else { throw FormatError(message: "expected a JSON object of claims") }
        return claims
    }

    /// `request.auth.*` from a verified payload.
    public static func requestAuth(claims: Value) -> AuthzRequest.RequestAuth {
        var auth = AuthzRequest.RequestAuth(claims: claims)
        if let iss = claims["iss"]?.stringValue, let sub = claims["sub"]?.stringValue { auth.principal = iss + "/" + sub }
        switch claims["aud"] {
        case .string(let s)?: auth.audiences = [s]
        case .array(let items)?: auth.audiences = items.compactMap(\.stringValue)
        default: break
        }
        auth.presenter = claims["azp"]?.stringValue
        return auth
    }
}
