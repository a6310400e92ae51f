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
        self.init()
        if let principal = request.source.principal {
            attributes.source.principal = request.source.identity?.uri ?? principal
        }
        if let ip = request.source.ip { attributes.source.address = Self.address(ip.description, port: nil) }
        if let ip = request.destination.ip {
            attributes.destination.address = Self.address(ip.description, port: request.destination.port)
        } else if let port = request.destination.port {
            attributes.destination.address = Self.address("", port: port)
        }
        if let namespace = request.destination.namespace {
            attributes.contextExtensions[CheckRequestMapper.ContextExtension.namespace] = namespace
        }
        if !request.destination.labels.isEmpty {
            attributes.contextExtensions[CheckRequestMapper.ContextExtension.labels] =
                JSONWriter.string(.object(request.destination.labels.mapValues(PolicyCore.Value.string)))
        }

        var http = Envoy_Service_Auth_V3_AttributeContext.HttpRequest()
        var headers: [String: String] = [:]
        for (name, value) in request.http.headers { headers[name] = value }
        if let remote = request.remoteIP, remote != request.source.ip, headers["x-forwarded-for"] == nil {
            headers["x-forwarded-for"] = remote.description
        }
        http.headers = headers
        http.method = request.http.method ?? ""
        http.host = request.http.host ?? ""
        if let path = request.http.path { http.path = request.http.query.map { path + "?" + $0 } ?? path }
        http.protocol = "HTTP/1.1"
        attributes.request.http = http

        if let sni = request.connectionSNI { attributes.tlsSession.sni = sni }
        if let auth = request.auth, let payload = Self.payload(auth).protobufStruct {
            let key = auth.issuer ?? "verified_jwt"
            attributes.metadataContext.filterMetadata[CheckRequestMapper.jwtAuthnFilter] =
                Google_Protobuf_Struct(fields: [key: Google_Protobuf_Value(structValue: payload)])
        }
    }

    static func address(_ ip: String, port: Int?) -> Envoy_Config_Core_V3_Address {
        var socket = Envoy_Config_Core_V3_SocketAddress()
        socket.address = ip
        if let port { socket.portValue = UInt32(clamping: port) }
        var address = Envoy_Config_Core_V3_Address()
        address.socketAddress = socket
        return address
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
