import PolicyCore
import SwiftProtobuf

extension Envoy_Service_Auth_V3_CheckRequest {
    /// The `CheckRequest` an Envoy in front of the workload would send for a request with these attributes: the
    /// inverse of `CheckRequestMapper.map`, for requests that come as attributes (`warden decide`, `warden replay`,
    /// the conformance suite), so that a CUSTOM provider sees the same OPA-Envoy input document whichever way the
    /// request came.
    ///
    /// The peer's identity is written as a SPIFFE URI, the workload as context extensions, `remote.ip` as an
    /// `X-Forwarded-For` entry, and the verified token as jwt_authn metadata under its issuer (`iss`, `sub`, `aud`
    /// and `azp` filled in from the request principal, audiences and presenter when the claims lack them).
    public init(attributes request: AuthzRequest) {
        var headers = request.http.headers.map { (name: $0.key, value: $0.value) }
        if let remote = request.remoteIP, remote != request.source.ip, request.http.headers["x-forwarded-for"] == nil {
            headers.append((name: "x-forwarded-for", value: remote.description))
        }
        let target = request.http.path.map { path in request.http.query.map { path + "?" + $0 } ?? path }
        let parts = CheckRequestParts(
            source: .init(identity: request.source.identity, address: request.source.ip?.description),
            destination: .init(address: request.destination.ip?.description, port: request.destination.port),
            namespace: request.destination.namespace, labels: request.destination.labels,
            method: request.http.method ?? "", scheme: "", host: request.http.host ?? "", target: target ?? "",
            headers: headers, serverName: request.connectionSNI,
            verifiedTokens: request.auth.map { [(issuer: $0.issuer ?? "verified_jwt", payload: Self.payload($0))] } ?? [])
        self = parts.checkRequest
        // A peer identity that is not a SPIFFE ID travels as it is.
        if request.source.identity == nil, let principal = request.source.principal { attributes.source.principal = principal }
    }

    /// The token payload, with the principal, audiences and presenter in claim form where the claims lack them.
    static func payload(_ auth: AuthzRequest.RequestAuth) -> PolicyCore.Value {
        var claims = auth.claims.objectValue ?? [:]
        if let (issuer, subject) = auth.issuerAndSubject {
            if claims["iss"] == nil { claims["iss"] = .string(issuer) }
            if claims["sub"] == nil { claims["sub"] = .string(subject) }
        }
        if claims["aud"] == nil, !auth.audiences.isEmpty {
            claims["aud"] = auth.audiences.count == 1 ? .string(auth.audiences[0]) : .array(auth.audiences.map(PolicyCore.Value.string))
        }
        if claims["azp"] == nil, let presenter = auth.presenter { claims["azp"] = .string(presenter) }
        return .object(claims)
    }
}
