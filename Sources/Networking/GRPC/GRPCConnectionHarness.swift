import NIOCore

/// The connection handler of `GRPCListener`, as the listener sets it up, for a harness that drives it on an
/// `EmbeddedChannel` (Warden's gRPC framing fuzz target): add `handler` to a channel's pipeline and write
/// `HTTP2Frame`s in. Not part of the service's API.
///
/// A call to a method that is not in place is refused as `GRPCListener` refuses it while shutting down
/// (UNAVAILABLE), so the handler answers every call itself.
@_spi(Fuzzing)
public struct GRPCConnectionHarness {
    public let handler: any ChannelHandler
    private let budget: RequestByteBudget

    public init(inPlace: [InPlaceMethod], maxMessageBytes: Int, requestTimeout: TimeAmount, connectionBufferBytes: Int) {
        let (_, handOffs) = AsyncStream.makeStream(of: GRPCListener.HandOff.self)
        handOffs.finish()
        budget = RequestByteBudget(limit: connectionBufferBytes)
        handler = GRPCConnectionHandler(
            inPlace: GRPCListener.routes(inPlace),
            limits: .init(maxMessageBytes: maxMessageBytes, requestTimeout: requestTimeout, observer: nil),
            budget: budget, listenerBudget: ListenerByteBudget(limit: connectionBufferBytes),
            peers: .init(remote: "harness", local: "harness"), handOffs: handOffs)
    }

    /// The request bytes the connection's calls hold now (charged to its budget).
    public var bufferedBytes: Int { budget.used }

    /// The most request bytes the connection's calls have held at once.
    public var peakBufferedBytes: Int { budget.peak }
}
