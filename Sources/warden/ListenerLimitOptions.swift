import ArgumentParser
import WardenServer

/// `warden serve`'s bounds on what its listeners' clients can make it hold (`GRPCLimits`, `HTTPLimits`; `grpc:` and
/// `http:` keys in the configuration).
struct ListenerLimitOptions: ParsableArguments {
    @Option(name: .customLong("grpc-max-message-bytes"), help: "The largest gRPC request message (default 4 MiB).")
    var grpcMaxMessageBytes: Int?

    @Option(
        name: .customLong("grpc-max-connection-buffer-bytes"),
        help: "Request bytes one gRPC connection's streams may hold together; past it flow control stops the client (default 16 MiB).")
    var grpcMaxConnectionBufferBytes: String?

    @Option(
        name: .customLong("grpc-max-buffered-bytes"),
        help: "Request bytes all gRPC connections' streams may hold together; a stream that would pass it is reset (default 256 MiB).")
    var grpcMaxBufferedBytes: String?

    @Option(
        name: .customLong("grpc-max-concurrent-streams"),
        help: "Streams open at once on one gRPC connection (SETTINGS_MAX_CONCURRENT_STREAMS; default 100).")
    var grpcMaxConcurrentStreams: String?

    @Option(
        name: .customLong("grpc-request-timeout"),
        help: "A gRPC request must be whole this long after its headers, or its stream is reset (default 10s).")
    var grpcRequestTimeout: String?

    @Option(
        name: .customLong("grpc-idle-timeout"),
        help: "A gRPC connection with no open stream for this long gets a GOAWAY and is closed (default 60s).")
    var grpcIdleTimeout: String?

    @Option(name: .customLong("grpc-max-connections"), help: "gRPC connections open at once; more are closed on accept (default 10000).")
    var grpcMaxConnections: String?

    @Option(
        name: .customLong("http-request-timeout"),
        help: "An HTTP request must be whole this long after its first byte, or the connection is closed (default 10s).")
    var httpRequestTimeout: String?

    @Option(name: .customLong("http-idle-timeout"), help: "An HTTP connection with no traffic for this long is closed (default 60s).")
    var httpIdleTimeout: String?

    @Option(
        name: .customLong("http-max-buffered-bytes"),
        help: "Request body bytes all HTTP connections may hold together; a request that would pass it is answered 503 (default 256 MiB).")
    var httpMaxBufferedBytes: String?

    @Option(name: .customLong("http-max-connections"), help: "HTTP connections open at once; more are closed on accept (default 10000).")
    var httpMaxConnections: String?

    func validate() throws {
        if let grpcMaxMessageBytes, !ServerConfiguration.maxGRPCMessageBytesRange.contains(grpcMaxMessageBytes) {
            let range = ServerConfiguration.maxGRPCMessageBytesRange
            throw ValidationError("--grpc-max-message-bytes must be from \(range.lowerBound) to \(range.upperBound)")
        }
        var scratch = ServerConfiguration()
        try apply(to: &scratch)
    }

    func apply(to settings: inout ServerConfiguration) throws {
        if let grpcMaxMessageBytes { settings.maxGRPCMessageBytes = grpcMaxMessageBytes }
        try Self.apply([
            "max_connection_buffer_bytes": grpcMaxConnectionBufferBytes, "max_buffered_bytes": grpcMaxBufferedBytes,
            "max_concurrent_streams": grpcMaxConcurrentStreams,
            "request_timeout": grpcRequestTimeout, "idle_timeout": grpcIdleTimeout, "max_connections": grpcMaxConnections,
        ], GRPCLimits.fields, listener: "grpc", to: &settings.grpcLimits)
        try Self.apply([
            "request_timeout": httpRequestTimeout, "idle_timeout": httpIdleTimeout, "max_connections": httpMaxConnections,
            "max_buffered_bytes": httpMaxBufferedBytes,
        ], HTTPLimits.fields, listener: "http", to: &settings.httpLimits)
    }

    private static func apply<Limits>(
        _ given: [String: String?], _ fields: [LimitField<Limits>], listener: String, to limits: inout Limits
    ) throws {
        for field in fields {
            guard let text = given[field.key] ?? nil else { continue }
            if let problem = field.set(text, in: &limits) { throw ValidationError("\(field.flag(listener)) \(problem)") }
        }
    }
}
