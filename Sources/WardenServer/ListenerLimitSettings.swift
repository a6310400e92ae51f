import Foundation
import Networking
import PolicyCore
import NIOCore

/// The bounds on what gRPC clients can make `warden serve` hold: `grpc:` keys in the configuration, `--grpc-*`
/// flags. Each is enforced before the work or memory it would cause, and each enforcement is counted in
/// `warden_grpc_limit_events_total{limit}` and logged.
public struct GRPCLimits: Sendable, Hashable {
    /// The request bytes one connection's streams may hold together; past it HTTP/2 flow control stops the client.
    public var maxConnectionBufferBytes = 16 << 20
    /// The request bytes all connections' streams may hold together; past it a stream is reset (RESOURCE_EXHAUSTED).
    public var maxBufferedBytes = 256 << 20
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    public var maxConcurrentStreams = 100
    /// How long a request may take to arrive whole after its headers.
    public var requestTimeout: Duration = .seconds(10)
    /// How long a connection may have no open stream before it is closed (GOAWAY, then close).
    public var idleTimeout: Duration = .seconds(60)
    /// Connections open at once; the next is closed on accept.
    public var maxConnections = 10_000

    public init() {}

    /// The `grpc:` keys and `--grpc-*` flags.
    public static let fields: [LimitField<GRPCLimits>] = [
        LimitField(key: "max_connection_buffer_bytes", range: .count((64 << 10)...(1 << 30))) {
            $0.maxConnectionBufferBytes = Int($1)
        },
        LimitField(key: "max_buffered_bytes", range: .count((1 << 20)...(64 << 30))) { $0.maxBufferedBytes = Int($1) },
        LimitField(key: "max_concurrent_streams", range: .count(1...1_000_000)) { $0.maxConcurrentStreams = Int($1) },
        LimitField(key: "request_timeout", range: .timeout) { $0.requestTimeout = .milliseconds($1) },
        LimitField(key: "idle_timeout", range: .timeout) { $0.idleTimeout = .milliseconds($1) },
        LimitField(key: "max_connections", range: .connections) { $0.maxConnections = Int($1) },
    ]

    /// The listener's options with these limits.
    func options(host: String, port: Int, tls: ReloadingTLSContext?, identifyPeer: PeerIdentifier? = nil,
                 maxMessageBytes: Int, observer: any ListenerLimitObserver) -> GRPCListener.Options {
        GRPCListener.Options(
            host: host, port: port, tls: tls, identifyPeer: identifyPeer, maxMessageBytes: maxMessageBytes,
            maxConnectionBufferBytes: maxConnectionBufferBytes, maxBufferedBytes: maxBufferedBytes,
            maxConcurrentStreams: maxConcurrentStreams,
            requestTimeout: TimeAmount(requestTimeout), idleTimeout: TimeAmount(idleTimeout),
            maxConnections: maxConnections, observer: observer)
    }

    /// One line for the log at start.
    func summary(maxMessageBytes: Int) -> String {
        """
        gRPC limits: \(maxConnections) connections, \(maxConcurrentStreams) streams per connection, \
        \(maxMessageBytes) bytes per request message, \(maxConnectionBufferBytes) request bytes held per connection \
        and \(maxBufferedBytes) in all, \
        requests whole within \(requestTimeout.formatted), connections with no stream closed after \
        \(idleTimeout.formatted)
        """
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

/// The bounds on what HTTP clients can make `warden serve` hold beside `max_body_bytes`: `http:` keys in the
/// configuration, `--http-*` flags.
public struct HTTPLimits: Sendable, Hashable {
    /// A request must be whole this long after its first byte; the connection is closed otherwise.
    public var requestTimeout: Duration = .seconds(10)
    /// A connection with no traffic for this long is closed.
    public var idleTimeout: Duration = .seconds(60)
    /// Connections open at once; the next is closed on accept.
    public var maxConnections = 10_000
    /// The body bytes all connections hold together; a request past it is answered 503.
    public var maxBufferedBytes = 256 << 20

    public init() {}

    /// The `http:` keys and `--http-*` flags.
    public static let fields: [LimitField<HTTPLimits>] = [
        LimitField(key: "max_buffered_bytes", range: .count((1 << 20)...(64 << 30))) { $0.maxBufferedBytes = Int($1) },
        LimitField(key: "request_timeout", range: .timeout) { $0.requestTimeout = .milliseconds($1) },
        LimitField(key: "idle_timeout", range: .timeout) { $0.idleTimeout = .milliseconds($1) },
        LimitField(key: "max_connections", range: .connections) { $0.maxConnections = Int($1) },
    ]
}

/// A listener limit's configuration key, its range, and where it goes in `Limits`.
public struct LimitField<Limits>: Sendable {
    public enum Range: Sendable {
        case count(ClosedRange<Int>)
        /// Written as a Go-style duration (`10s`, `500ms`, `1m`).
        case duration(ClosedRange<Duration>)

        static var timeout: Range { .duration(.milliseconds(1)...(.seconds(86_400))) }
        static var connections: Range { .count(1...1_000_000) }

        var isDuration: Bool {
            if case .duration = self { true } else { false }
        }
    }
    public let key: String
    public let range: Range
    let apply: @Sendable (inout Limits, Int64) -> Void

    /// The flag: `--grpc-max-connections` for `max_connections` under `grpc`.
    public func flag(_ listener: String) -> String { "--\(listener)-" + key.replacingOccurrences(of: "_", with: "-") }

    /// Sets the limit from its written value; the reason it is refused otherwise.
    public func set(_ text: String, in limits: inout Limits) -> String? {
        switch range {
        case .count(let range):
            guard let value = Int(text), range.contains(value) else {
                return "must be an integer from \(range.lowerBound) to \(range.upperBound), found `\(text)`"
            }
            apply(&limits, Int64(value))
        case .duration(let range):
            guard let value = parseDuration(text), range.contains(value) else {
                let (low, high) = (range.lowerBound.formatted, range.upperBound.formatted)
                return "must be a duration from \(low) to \(high) such as 10s or 500ms, found `\(text)`"
            }
            apply(&limits, GRPCLimits.milliseconds(value))
        }
        return nil
    }
}

extension Duration {
    /// Whole seconds as `10s`, else milliseconds as `1500ms`.
    var formatted: String {
        let ms = GRPCLimits.milliseconds(self)
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}
