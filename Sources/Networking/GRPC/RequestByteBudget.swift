import NIOCore

/// The request bytes one HTTP/2 connection's calls hold at once, under a bound.
///
/// A call charges what it reads and refunds it once it is answered, handed off or abandoned. While the budget is
/// spent, `GRPCConnectionHandler` withholds the connection's WINDOW_UPDATEs, so HTTP/2 flow control stops the client
/// after at most one connection window more; refunds let it top the window up again.
///
/// One per connection, touched only from the connection's event loop, so it needs no lock.
final class RequestByteBudget {
    let limit: Int
    private(set) var used = 0
    /// The most held at once.
    private(set) var peak = 0

    init(limit: Int) {
        self.limit = limit
    }

    var isSpent: Bool { used >= limit }

    func charge(_ bytes: Int) {
        used += bytes
        if used > peak { peak = used }
    }

    func refund(_ bytes: Int) {
        used -= bytes
    }
}
