import ArgumentParser
import WardenServer

/// `warden serve`'s bounds on gRPC clients (`GRPCLimits`; `grpc:` keys in the configuration).
struct GRPCLimitOptions: ParsableArguments {
    @Option(name: .customLong("grpc-max-message-bytes"), help: "The largest gRPC request message (default 4 MiB).")
    var maxMessageBytes: Int?

    @Option(
        name: .customLong("grpc-max-connection-buffer-bytes"),
        help: "Request bytes one gRPC connection's streams may hold together; past it flow control stops the client (default 16 MiB).")
    var maxConnectionBufferBytes: String?

    @Option(
        name: .customLong("grpc-max-concurrent-streams"),
        help: "Streams open at once on one gRPC connection (SETTINGS_MAX_CONCURRENT_STREAMS; default 100).")
    var maxConcurrentStreams: String?

    @Option(
        name: .customLong("grpc-request-timeout"),
        help: "A gRPC request must be whole this long after its headers, or its stream is reset (default 10s).")
    var requestTimeout: String?

    @Option(
        name: .customLong("grpc-idle-timeout"),
        help: "A gRPC connection with no open stream for this long gets a GOAWAY and is closed (default 60s).")
    var idleTimeout: String?

    @Option(
        name: .customLong("grpc-max-connections"),
        help: "gRPC connections open at once; more are closed on accept (default 10000).")
    var maxConnections: String?

    private var given: [(key: String, text: String)] {
        [
            ("max_connection_buffer_bytes", maxConnectionBufferBytes), ("max_concurrent_streams", maxConcurrentStreams),
            ("request_timeout", requestTimeout), ("idle_timeout", idleTimeout), ("max_connections", maxConnections),
        ].compactMap { key, text in text.map { (key, $0) } }
    }

    func validate() throws {
        if let maxMessageBytes, !ServerConfiguration.maxGRPCMessageBytesRange.contains(maxMessageBytes) {
            let range = ServerConfiguration.maxGRPCMessageBytesRange
            throw ValidationError("--grpc-max-message-bytes must be from \(range.lowerBound) to \(range.upperBound)")
        }
        var scratch = GRPCLimits()
        try apply(to: &scratch)
    }

    func apply(to settings: inout ServerConfiguration) throws {
        if let maxMessageBytes { settings.maxGRPCMessageBytes = maxMessageBytes }
        try apply(to: &settings.grpcLimits)
    }

    private func apply(to limits: inout GRPCLimits) throws {
        for (key, text) in given {
            guard let field = GRPCLimits.fields.first(where: { $0.key == key }) else { continue }
            if let problem = field.set(text, in: &limits) { throw ValidationError("\(field.flag) \(problem)") }
        }
    }
}
