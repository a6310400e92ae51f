import Foundation
import NIOHTTP1
import Networking
import PolicyCore
import PolicyLoading
import Synchronization

/// Uploads decision-log events to a remote service as OPA's decision-log plugin does: each upload is one gzip'd
/// JSON array of events (`Content-Encoding: gzip`), POSTed in order, at most `uploadSizeLimitBytes` compressed.
///
/// A check only appends its encoded event to a bounded buffer under a lock and returns: it never waits for the
/// network. When the buffer is full the event is dropped and counted (`dropped`, `/metrics`, `/v1/status`). A failed
/// upload is retried with exponential backoff (capped by the maximum delay) and keeps its place at the head, so
/// the service receives every batch complete and in order.
public final class DecisionLogUploader: Sendable {
    public struct Status: Sendable {
        public var buffered = 0
        public var bufferedBytes = 0
        public var uploaded = 0
        public var uploads = 0
        public var dropped = 0
        public var failures = 0
        public var lastError: String?
        public var lastErrorAt: Date?
        public var lastUpload: Date?
    }

    struct State {
        var events: [[UInt8]] = []
        var head = 0
        var bytes = 0
        var status = Status()
    }

    public let settings: DecisionLogUploadSettings
    let client: ControlPlaneClient
    let metrics: ServerMetrics?
    private let state = Mutex(State())
    /// Labels sent with every event, as OPA's `labels` (`id`, `version`, and the configured ones).
    let labels: Value

    public init(settings: DecisionLogUploadSettings, labels: [String: String] = [:], metrics: ServerMetrics? = nil,
                client: ControlPlaneClient) {
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self.labels = .object(labels.mapValues(Value.string))
    }

    public var status: Status {
        state.withLock { s in
            var status = s.status
            status.buffered = s.events.count - s.head
            status.bufferedBytes = s.bytes
            return status
        }
    }

    /// Buffers one event; never blocks on the network. Returns false when the buffer was full (the event is
    /// dropped and counted).
    @discardableResult
    public func record(_ event: Value) -> Bool {
        guard case .object(var members) = event else { return false }
        members[.string("labels")] = labels
        let encoded = Array(JSONWriter.string(.object(members)).utf8)
        let accepted = state.withLock { s -> Bool in
            guard s.bytes + encoded.count <= settings.bufferSizeLimitBytes else {
                s.status.dropped += 1
                return false
            }
            s.events.append(encoded)
            s.bytes += encoded.count
            return true
        }
        if !accepted { metrics?.recordDecisionLogDropped() }
        return accepted
    }

    /// Uploads until cancelled; then tries once more to send what is buffered.
    public func run() async {
        var backoff: Duration = .zero
        while !Task.isCancelled {
            let low = settings.minDelay, high = settings.maxDelay
            let wait = backoff > .zero ? backoff : low + (high - low) * Double.random(in: 0...1)
            do { try await Task.sleep(for: wait) } catch { break }
            if await flush() {
                backoff = .zero
            } else {
                backoff = backoff == .zero ? settings.minDelay : min(backoff * 2, settings.maxDelay * 4)
            }
        }
        // Shutting down: one last pass outside the cancelled task (a cancelled request would fail at once); it
        // stops at the first failure, so an unreachable service costs at most the connect timeout.
        _ = await Task.detached { [self] in await flush() }.value
    }

    /// Sends every buffered event, one chunk at a time; false when an upload failed (the rest stays buffered).
    public func flush() async -> Bool {
        while true {
            guard let (count, body) = nextChunk() else { return true }
            let headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
                + settings.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            do {
                let response = try await client.send(
                    method: .POST, settings.url, headers: headers, body: body, timeout: settings.timeout,
                    maximumBodyBytes: 64 * 1024)
                guard (200..<300).contains(response.status) else {
                    failed("log upload: the server answered \(response.status)")
                    return false
                }
            } catch {
                failed("log upload: \(error.message)")
                return false
            }
            state.withLock { s in
                for i in s.head..<(s.head + count) { s.bytes -= s.events[i].count }
                s.head += count
                if s.head > 1024 && s.head * 2 > s.events.count {
                    s.events.removeFirst(s.head)
                    s.head = 0
                }
                s.status.uploaded += count
                s.status.uploads += 1
                s.status.lastUpload = Date()
            }
            metrics?.recordDecisionLogUpload(events: count)
        }
    }

    private func failed(_ message: String) {
        state.withLock {
            $0.status.failures += 1
            $0.status.lastError = message
            $0.status.lastErrorAt = Date()
        }
        metrics?.recordDecisionLogUploadFailure()
    }

    /// The next events to send and their gzip'd JSON array, within the upload size limit (one event larger than
    /// the limit alone goes by itself, as OPA sends it).
    func nextChunk() -> (Int, [UInt8])? {
        let pending: [[UInt8]] = state.withLock { s in
            // Compressed JSON is rarely above a quarter of its size; take enough to fill one upload, and trim below.
            var taken: [[UInt8]] = []
            var size = 0
            var i = s.head
            while i < s.events.count, size < settings.uploadSizeLimitBytes * 8 {
                taken.append(s.events[i])
                size += s.events[i].count + 1
                i += 1
            }
            return taken
        }
        guard !pending.isEmpty else { return nil }
        var count = pending.count
        while true {
            var array: [UInt8] = [UInt8(ascii: "[")]
            for (i, event) in pending.prefix(count).enumerated() {
                if i > 0 { array.append(UInt8(ascii: ",")) }
                array += event
            }
            array.append(UInt8(ascii: "]"))
            let body = Gzip.compress(array)
            if body.count <= settings.uploadSizeLimitBytes || count == 1 { return (count, body) }
            count = max(1, count * settings.uploadSizeLimitBytes / body.count * 9 / 10)
        }
    }
}
