import GRPCCore
import ServiceLifecycle

/// A grpc-swift-2 `GRPCServer` as a service of a `ServiceGroup`: it serves until graceful shutdown, when it stops
/// taking new calls and lets those in flight finish.
public struct GRPCServerService<Transport: ServerTransport>: Service {
    public let server: GRPCServer<Transport>

    public init(_ server: GRPCServer<Transport>) {
        self.server = server
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.serve()
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}
