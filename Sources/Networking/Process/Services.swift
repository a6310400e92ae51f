import ServiceLifecycle
import UnixSignals

/// Calls `handle` for each of `signals` the process receives, until graceful shutdown (SIGHUP → reload, say).
public struct SignalHandlerService: Service {
    public let signals: [UnixSignal]
    public let handle: @Sendable (UnixSignal) async -> Void

    public init(signals: [UnixSignal], handle: @escaping @Sendable (UnixSignal) async -> Void) {
        self.signals = signals
        self.handle = handle
    }

    public func run() async throws {
        for await signal in await UnixSignalsSequence(trapping: signals).cancelOnGracefulShutdown() {
            await handle(signal)
        }
    }
}

/// Runs `work` every `interval` until graceful shutdown or cancellation (a file watch, a certificate reload).
public struct RepeatingService: Service {
    public let interval: Duration
    public let work: @Sendable () async -> Void

    public init(every interval: Duration, work: @escaping @Sendable () async -> Void) {
        self.interval = interval
        self.work = work
    }

    public func run() async throws {
        // Graceful shutdown cancels the sleep rather than waiting for the next round.
        try? await cancelWhenGracefulShutdown { [interval, work] in
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await work()
            }
        }
    }
}
