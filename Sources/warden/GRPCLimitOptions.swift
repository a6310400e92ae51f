import ArgumentParser
import WardenServer

/// `warden serve`'s bounds on gRPC clients (`GRPCLimits`; `grpc:` keys in the configuration).
struct GRPCLimitOptions: ParsableArguments {
    @Option(name: .customLong("grpc-max-message-bytes"), help: "The largest gRPC request message (default 4 MiB).")
    var maxMessageBytes: Int?

    @Option(
        name: .customLong("grpc-max-connection-buffer-bytes"),
        help: "Request bytes one gRPC connection's streams may hold together; past it flow control stops the client (default 16 MiB).")
    var maxConnectionBufferBytes: Int?

    @Option(
        name: .customLong("grpc-max-concurrent-streams"),
        help: "Streams open at once on one gRPC connection (SETTINGS_MAX_CONCURRENT_STREAMS; default 100).")
    var maxConcurrentStreams: Int?

    @Option(
        name: .customLong("grpc-request-timeout-ms"),
        help: "A gRPC request must be whole this long after its headers, or its stream is reset (default 10000).")
    var requestTimeoutMs: Int?

    @Option(
        name: .customLong("grpc-idle-timeout-ms"),
        help: "A gRPC connection with no open stream for this long gets a GOAWAY and is closed (default 60000).")
    var idleTimeoutMs: Int?

    @Option(
        name: .customLong("grpc-max-connections"),
        help: "gRPC connections open at once; more are closed on accept (default 10000).")
    var maxConnections: Int?

    var given: [(key: String, value: Int)] {
        [
            ("max_connection_buffer_bytes", maxConnectionBufferBytes), ("max_concurrent_streams", maxConcurrentStreams),
            ("request_timeout_ms", requestTimeoutMs), ("idle_timeout_ms", idleTimeoutMs),
            ("max_connections", maxConnections),
        ].compactMap { key, value in value.map { (key, $0) } }
    }

    func validate() throws {
        if let maxMessageBytes, !ServerConfiguration.maxGRPCMessageBytesRange.contains(maxMessageBytes) {
            let range = ServerConfiguration.maxGRPCMessageBytesRange
            throw ValidationError("--grpc-max-message-bytes must be from \(range.lowerBound) to \(range.upperBound)")
        }
        for (key, value) in given {
            guard let field = GRPCLimits.fields.first(where: { $0.key == key }) else { continue }
            guard field.range.contains(value) else {
                throw ValidationError("\(field.flag) must be from \(field.range.lowerBound) to \(field.range.upperBound)")
            }
        }
    }

    func apply(to settings: inout ServerConfiguration) {
        if let maxMessageBytes { settings.maxGRPCMessageBytes = maxMessageBytes }
        for (key, value) in given {
            GRPCLimits.fields.first { $0.key == key }?.set(value, in: &settings.grpcLimits)
        }
    }
}
