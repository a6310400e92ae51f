/// A bound a listener enforced on a client: a connection refused or closed, or a stream reset or held back.
public enum ListenerLimit: String, Sendable, CaseIterable {
    /// A connection closed on accept: the listener already had its maximum.
    case maxConnections = "max_connections"
    /// A connection closed after no open stream for the idle timeout.
    case idleTimeout = "idle_timeout"
    /// A stream reset because its request message was larger than the bound.
    case maxMessageBytes = "max_message_bytes"
    /// A stream made to wait (its flow-control window left closed) because its connection's streams held the most
    /// request bytes they may.
    case maxConnectionBufferBytes = "max_connection_buffer_bytes"
    /// A stream reset because the listener's streams, over all its connections, held the most request bytes they may.
    case maxBufferedBytes = "max_buffered_bytes"
    /// A stream reset because its request was not whole within the request timeout.
    case requestTimeout = "request_timeout"
}

/// Told each time a listener enforces a limit, on the event loop that enforced it (keep it cheap).
public protocol ListenerLimitObserver: Sendable {
    func limitEnforced(_ limit: ListenerLimit)
}
