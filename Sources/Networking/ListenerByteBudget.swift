import Synchronization

/// The request bytes all of a listener's connections hold at once, under one bound: a per-connection bound alone
/// lets many connections together hold the machine's memory. A request whose bytes would take the listener past it
/// is refused instead of held (a gRPC stream is reset with RESOURCE_EXHAUSTED, an HTTP request answered 503 and its
/// connection closed), as Envoy's overload manager resets streams when memory runs high; the other requests keep
/// their bytes and finish.
final class ListenerByteBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// What a refused request is told.
    static func refusal(limit: Int) -> String { "the server holds its most request bytes (\(limit)); try again later" }

    /// The bytes held now.
    var held: Int { used.load(ordering: .relaxed) }

    /// Takes `bytes` if they fit under the bound.
    func take(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= limit else { return false }
            let (exchanged, original) = used.compareExchange(
                expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func give(_ bytes: Int) {
        if bytes > 0 { used.subtract(bytes, ordering: .relaxed) }
    }
}
