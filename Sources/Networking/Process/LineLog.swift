import Foundation
import ServiceLifecycle
import Synchronization

/// A log of one line per event (JSON lines: decision logs, access logs), written by a background task so the
/// request that records a line never waits on the disk. The buffer is bounded: lines that arrive while it is full
/// are dropped and counted, never queued without limit.
public final class LineLog: Service, Sendable {
    public enum Destination: Sendable, Hashable {
        case standardOutput
        case file(String)
    }

    public struct OpenError: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var description: String { "cannot open log file `\(path)`" }
    }

    private struct Buffer {
        var bytes: [UInt8] = []
        var dropped = 0
    }

    public let destination: Destination
    /// Lines beyond this many buffered bytes are dropped until the next write.
    public let maximumBufferedBytes: Int
    private let handle: FileHandle
    private let closesHandle: Bool
    private let buffer = Mutex(Buffer())

    public init(destination: Destination, maximumBufferedBytes: Int = 16 << 20) throws(OpenError) {
        self.destination = destination
        self.maximumBufferedBytes = maximumBufferedBytes
        switch destination {
        case .standardOutput:
            handle = FileHandle.standardOutput
            closesHandle = false
        case .file(let path):
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil) else { throw OpenError(path: path) }
            }
            guard let h = FileHandle(forWritingAtPath: path) else { throw OpenError(path: path) }
            h.seekToEndOfFile()
            handle = h
            closesHandle = true
        }
    }

    /// Buffers one line (a newline is added).
    public func append(_ line: String) {
        buffer.withLock { buffer in
            guard buffer.bytes.count + line.utf8.count < maximumBufferedBytes else {
                buffer.dropped += 1
                return
            }
            buffer.bytes.append(contentsOf: line.utf8)
            buffer.bytes.append(UInt8(ascii: "\n"))
        }
    }

    /// Lines dropped because the buffer was full, since the start.
    public var droppedLines: Int { buffer.withLock { $0.dropped } }

    /// Writes what is buffered.
    public func flush() {
        let pending: [UInt8] = buffer.withLock { b in
            defer { b.bytes.removeAll(keepingCapacity: true) }
            return b.bytes
        }
        guard !pending.isEmpty else { return }
        handle.write(Data(pending))
    }

    /// Flushes every `interval` until cancelled or shut down, then once more.
    public func run(every interval: Duration) async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await Task.sleep(for: interval)
            } catch {
                break
            }
            flush()
        }
        flush()
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.run(every: .milliseconds(200)) }
    }

    deinit {
        flush()
        if closesHandle { try? handle.close() }
    }

    /// RFC 3339 with milliseconds, in UTC: `2026-12-06T01:02:03.456Z`.
    public static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let millis = Int((interval - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }
}
