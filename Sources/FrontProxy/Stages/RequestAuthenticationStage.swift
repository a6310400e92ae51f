import Foundation
import Identity
import NIOHTTP1

/// The RequestAuthentication stage (Envoy's `jwt_authn`): the workload's authenticator looks for tokens where its
/// rules say; an invalid token is answered here (401 with a `WWW-Authenticate` challenge, or 403 for an audience
/// mismatch) and never reaches the check; no token goes on without a request principal; a verified token is
/// attached to the request, which loses the token (unless `forwardOriginalToken`) and gains the rules' output headers.
public enum RequestAuthenticationStage {
    /// The parts of `request` the authenticator reads.
    public static func authenticationRequest(_ request: ProxiedRequest, connection: ConnectionFacts) -> AuthenticationRequest {
        AuthenticationRequest(
            headers: request.headers.map { (name: $0.name, value: $0.value) },
            query: request.query.map(String.init),
            url: connection.scheme + "://" + request.authority + request.path)
    }

    /// Applies the authenticator's result: the answer for a refused token, or nil after changing `request`.
    public static func apply(_ result: AuthenticationResult, to request: inout ProxiedRequest) -> LocalResponse? {
        if let failure = result.failure {
            return LocalResponse(
                status: failure.status,
                headers: [.init("www-authenticate", failure.wwwAuthenticate), .init("content-type", "text/plain; charset=utf-8")],
                body: "jwt verification fails: " + failure.reason + "\n")
        }
        for name in result.headersToRemove { request.headers.remove(name: name) }
        for (name, value) in result.headersToSet { request.headers.replaceOrAdd(name: name, value: value) }
        if !result.queryParametersToRemove.isEmpty {
            request.target = removingQueryParameters(result.queryParametersToRemove, from: request.target)
        }
        if !result.cookiesToRemove.isEmpty {
            let kept = request.headers["cookie"].compactMap { removingCookies(result.cookiesToRemove, from: $0) }
            request.headers.remove(name: "cookie")
            for value in kept { request.headers.add(name: "cookie", value: value) }
        }
        request.token = result.token
        return nil
    }

    /// `target` without the query parameters named `names` (compared after percent-decoding the name).
    static func removingQueryParameters(_ names: [String], from target: String) -> String {
        guard let mark = target.firstIndex(of: "?") else { return target }
        let path = target[..<mark]
        let pairs = target[target.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: false)
        let kept = pairs.filter { pair in
            let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
            return !names.contains(String(name).removingPercentEncoding ?? String(name))
        }
        return kept.isEmpty ? String(path) : path + "?" + kept.joined(separator: "&")
    }

    /// A `Cookie` header value without the cookies named `names`; nil when none is left.
    static func removingCookies(_ names: [String], from value: String) -> String? {
        let kept = value.split(separator: ";").filter { pair in
            let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
            return !names.contains(name.trimmingCharacters(in: .whitespaces))
        }.map { $0.trimmingCharacters(in: .whitespaces) }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }
}
