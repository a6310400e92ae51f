import NIOCore

/// The request bytes one HTTP/2 connection's streams hold at once, under a bound, and the streams waiting for room.
///
/// A stream charges what it reads and refunds it once its request is answered, handed off or abandoned. A stream
/// that finds the budget spent stops reading: its frames stay unread in the stream channel, so swift-nio-http2
/// sends no WINDOW_UPDATE for them and the client is stopped by HTTP/2 flow control after at most one stream window
/// (SETTINGS_INITIAL_WINDOW_SIZE) more. When bytes are refunded below the bound, the waiting streams read again.
///
/// One per connection; every stream channel of a connection runs on the connection's event loop, so it needs no
/// lock (it is only ever touched from that loop).
final class RequestByteBudget {
    let limit: Int
    private(set) var used = 0
    /// The most held at once.
    private(set) var peak = 0
    private var waiting: [ObjectIdentifier: () -> Void] = [:]

    init(limit: Int) {
        self.limit = limit
    }

    var isSpent: Bool { used >= limit }

    func charge(_ bytes: Int) {
        used += bytes
        if used > peak { peak = used }
    }

    /// Gives bytes back; the waiting streams resume once there is room.
    func refund(_ bytes: Int) {
        guard bytes > 0 else { return }
        used -= bytes
        guard !isSpent, !waiting.isEmpty else { return }
        let resumptions = waiting.values
        waiting = [:]
        for resume in resumptions { resume() }
    }

    /// Calls `resume` once there is room again (at most once; a later `wait` for the same stream replaces it).
    func wait(_ stream: ObjectIdentifier, resume: @escaping () -> Void) {
        waiting[stream] = resume
    }

    func stopWaiting(_ stream: ObjectIdentifier) {
        waiting[stream] = nil
    }
}
