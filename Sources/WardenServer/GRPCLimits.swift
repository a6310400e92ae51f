import Foundation
import Networking
import NIOCore

/// The bounds on what gRPC clients can make `warden serve` hold: `grpc:` keys in the configuration, `--grpc-*`
/// flags. Each is enforced before the work or memory it would cause, and each enforcement is counted in
/// `warden_grpc_limit_events_total{limit}` and logged.
public struct GRPCLimits: Sendable, Hashable {
    /// The request bytes one connection's streams may hold together; past it HTTP/2 flow control stops the client.
    public var maxConnectionBufferBytes = 16 << 20
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    public var maxConcurrentStreams = 100
    /// How long a request may take to arrive whole after its headers.
    public var requestTimeout: Duration = .seconds(10)
    /// How long a connection may have no open stream before it is closed (GOAWAY, then close).
    public var idleTimeout: Duration = .seconds(60)
    /// Connections open at once; the next is closed on accept.
    public var maxConnections = 10_000

    public init() {}

    /// The configuration keys and flags, their ranges, and where each goes.
    public struct Field: Sendable {
        public let key: String
        public let range: ClosedRange<Int>
        let apply: @Sendable (inout GRPCLimits, Int) -> Void

        public var flag: String { "--grpc-" + key.replacingOccurrences(of: "_", with: "-") }

        public func set(_ value: Int, in limits: inout GRPCLimits) { apply(&limits, value) }
    }

    public static let fields: [Field] = [
        Field(key: "max_connection_buffer_bytes", range: (64 << 10)...(1 << 30)) { $0.maxConnectionBufferBytes = $1 },
        Field(key: "max_concurrent_streams", range: 1...1_000_000) { $0.maxConcurrentStreams = $1 },
        Field(key: "request_timeout_ms", range: 1...3_600_000) { $0.requestTimeout = .milliseconds($1) },
        Field(key: "idle_timeout_ms", range: 1...86_400_000) { $0.idleTimeout = .milliseconds($1) },
        Field(key: "max_connections", range: 1...1_000_000) { $0.maxConnections = $1 },
    ]

    /// The listener's options with these limits.
    func options(host: String, port: Int, tls: ReloadingTLSContext?, maxMessageBytes: Int,
                 observer: any ListenerLimitObserver) -> GRPCListener.Options {
        GRPCListener.Options(
            host: host, port: port, tls: tls, maxMessageBytes: maxMessageBytes,
            maxConnectionBufferBytes: maxConnectionBufferBytes, maxConcurrentStreams: maxConcurrentStreams,
            requestTimeout: TimeAmount(requestTimeout), idleTimeout: TimeAmount(idleTimeout),
            maxConnections: maxConnections, observer: observer)
    }

    /// One line for the log at start.
    func summary(maxMessageBytes: Int) -> String {
        """
        gRPC limits: \(maxConnections) connections, \(maxConcurrentStreams) streams per connection, \
        \(maxMessageBytes) bytes per request message, \(maxConnectionBufferBytes) request bytes held per connection, \
        requests whole within \(Self.milliseconds(requestTimeout)) ms, connections with no stream closed after \
        \(Self.milliseconds(idleTimeout)) ms
        """
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
