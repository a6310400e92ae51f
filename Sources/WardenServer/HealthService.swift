import ExtAuthz
import GRPCCore
import PolicyLoading
import SwiftProtobuf

/// `grpc.health.v1.Health`: SERVING once a policy set is loaded. The server as a whole (`""`) and the
/// authorization service share that status; other names are unknown.
public struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    public static let authorizationService = "envoy.service.auth.v3.Authorization"

    public let isReady: @Sendable () -> Bool
    /// How often `Watch` looks for a change.
    public let watchInterval: Duration

    public init(watchInterval: Duration = .milliseconds(500), isReady: @escaping @Sendable () -> Bool) {
        self.isReady = isReady
        self.watchInterval = watchInterval
    }

    func status(of service: String) -> Grpc_Health_V1_HealthCheckResponse.ServingStatus? {
        guard service.isEmpty || service == Self.authorizationService else { return nil }
        return isReady() ? .serving : .notServing
    }

    public func check(
        request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard let status = status(of: request.service) else {
            throw RPCError(code: .notFound, message: "unknown service `\(request.service)`")
        }
        return .with { $0.status = status }
    }

    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest,
        response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        var last: Grpc_Health_V1_HealthCheckResponse.ServingStatus?
        while !Task.isCancelled, !context.cancellation.isCancelled {
            let current = status(of: request.service) ?? .serviceUnknown
            if current != last {
                try await response.write(.with { $0.status = current })
                last = current
            }
            try await Task.sleep(for: watchInterval)
        }
    }
}
