import ExtAuthz
import GRPCCore

/// `envoy.service.auth.v3.Authorization`: Envoy's ext_authz gRPC service.
public struct AuthorizationService: Envoy_Service_Auth_V3_Authorization.SimpleServiceProtocol {
    public let handler: CheckHandler

    public init(handler: CheckHandler) {
        self.handler = handler
    }

    public func check(
        request: Envoy_Service_Auth_V3_CheckRequest, context: ServerContext
    ) async throws -> Envoy_Service_Auth_V3_CheckResponse {
        // A deadline that has already passed gets no decision: the caller has given up on the answer.
        try Task.checkCancellation()
        return handler.check(request, transport: "grpc").decision.checkResponse
    }
}
