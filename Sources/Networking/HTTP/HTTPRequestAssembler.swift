import NIOCore
import NIOHTTP1

/// Why a request was refused before it was whole; the application renders the response.
public enum HTTPRejection: Sendable, Hashable {
    /// The body is, or says it will be, larger than the limit (413).
    case bodyTooLarge(limit: Int)
    /// The parts did not arrive in the order HTTP/1.1 allows (400).
    case malformed
    /// The listener's connections together hold the most body bytes they may (503).
    case overloaded(limit: Int)

    /// Why, in a sentence for the client (each server renders it in its own response shape).
    public var message: String {
        switch self {
        case .bodyTooLarge(let limit): "request body exceeds the limit of \(limit) bytes"
        case .malformed: "malformed HTTP request"
        case .overloaded(let limit): ListenerByteBudget.refusal(limit: limit)
        }
    }
}

/// Collects the parts NIO's HTTP/1 decoder delivers into whole requests, enforcing the body size limit, and charges
/// the body bytes it holds to the listener's `ListenerByteBudget` when given one: the connection handler feeds it
/// parts, performs the actions it returns, and calls `giveBack` once a request is answered or the connection ends.
public struct HTTPRequestAssembler {
    public enum Action: Sendable {
        /// Wait for more parts.
        case none
        case deliver(HTTPRequest)
        /// Answer the refusal and close the connection (the rest of the request is not read).
        case reject(HTTPRejection)
    }

    enum State {
        case idle
        case receiving(HTTPRequestHead, [UInt8])
        case rejected
    }

    public let maxBodyBytes: Int
    private let budget: ListenerByteBudget?
    /// Body bytes charged to the budget and not yet given back.
    private var held = 0
    private var state: State = .idle

    public init(maxBodyBytes: Int) {
        self.init(maxBodyBytes: maxBodyBytes, budget: nil)
    }

    init(maxBodyBytes: Int, budget: ListenerByteBudget?) {
        self.maxBodyBytes = maxBodyBytes
        self.budget = budget
    }

    /// Gives the body bytes held back to the listener's budget.
    mutating func giveBack() {
        budget?.give(held)
        held = 0
    }

    public mutating func receive(_ part: HTTPServerRequestPart) -> Action {
        switch (state, part) {
        case (.idle, .head(let head)):
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maxBodyBytes {
                state = .rejected
                return .reject(.bodyTooLarge(limit: maxBodyBytes))
            }
            state = .receiving(head, [])
            return .none
        case (.receiving(let head, var body), .body(let chunk)):
            guard body.count + chunk.readableBytes <= maxBodyBytes else {
                state = .rejected
                return .reject(.bodyTooLarge(limit: maxBodyBytes))
            }
            if let budget {
                guard budget.take(chunk.readableBytes) else {
                    state = .rejected
                    return .reject(.overloaded(limit: budget.limit))
                }
                held += chunk.readableBytes
            }
            // Drop the state's reference first, so appending does not copy the body on every chunk.
            state = .rejected
            body.append(contentsOf: chunk.readableBytesView)
            state = .receiving(head, body)
            return .none
        case (.receiving(let head, let body), .end):
            state = .idle
            return .deliver(HTTPRequest(
                method: head.method.rawValue, target: head.uri,
                headers: head.headers.map { (name: $0.name, value: $0.value) }, body: body,
                keepAlive: head.isKeepAlive))
        case (.rejected, _):
            return .none
        default:
            state = .rejected
            return .reject(.malformed)
        }
    }
}
