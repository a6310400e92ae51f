import Foundation
import PolicyCore
import Synchronization

/// Decision logs as JSON lines, one per check: the decision id, time, the request's flat attributes (under
/// `attributes`, as `warden replay` reads them, with credentials masked), the decision (`DecisionResponse.json`,
/// dry-run outcomes included), the deciding policy, the AUDIT flag, the snapshot revision and the latency.
///
/// Lines are buffered and written by a background task, so a check never waits on the disk.
public final class DecisionLog: Sendable {
    public enum Destination: Sendable, Hashable {
        case standardOutput
        case file(String)
    }

    /// Header values replaced by `masked` in logged attributes.
    public static let maskedHeaders: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie"]
    public static let masked = "<masked>"

    private let handle: FileHandle
    private let buffer = Mutex<[UInt8]>([])
    private let closesHandle: Bool

    public init(destination: Destination) throws {
        switch destination {
        case .standardOutput:
            handle = FileHandle.standardOutput
            closesHandle = false
        case .file(let path):
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil) else {
                    throw Diagnostic(code: Diagnostic.Code.io, message: "cannot create decision log `\(path)`")
                }
            }
            guard let h = FileHandle(forWritingAtPath: path) else {
                throw Diagnostic(code: Diagnostic.Code.io, message: "cannot open decision log `\(path)`")
            }
            h.seekToEndOfFile()
            handle = h
            closesHandle = true
        }
    }

    public struct Entry: Sendable {
        public var decisionID: String
        public var time: Date
        public var request: AuthzRequest
        public var response: DecisionResponse
        public var revision: Int?
        public var duration: Duration
        /// `grpc` or `http`.
        public var transport: String
        /// The `.manifest` revision of the bundle the deciding snapshot came from.
        public var bundleRevision: String?

        public init(
            decisionID: String, time: Date, request: AuthzRequest, response: DecisionResponse, revision: Int?,
            duration: Duration, transport: String, bundleRevision: String? = nil
        ) {
            self.bundleRevision = bundleRevision
            self.decisionID = decisionID
            self.time = time
            self.request = request
            self.response = response
            self.revision = revision
            self.duration = duration
            self.transport = transport
        }

        public var json: Value {
            let (seconds, attoseconds) = duration.components
            let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
            var json: Value = [
                "decision_id": .string(decisionID),
                "time": .string(DecisionLog.timestamp(time)),
                "attributes": DecisionLog.masked(request.attributes),
                "decision": response.json,
                "result": .string(response.decision.rawValue),
                "policy": response.decidedBy.map { .string($0.policy.description) } ?? .null,
                "audit": .bool(response.audited),
                "revision": revision.map(Value.int) ?? .null,
                "duration_ns": .int(Int(nanoseconds)),
                "transport": .string(transport),
            ]
            if let bundleRevision, case .object(var members) = json {
                members[.string("bundle_revision")] = .string(bundleRevision)
                json = .object(members)
            }
            return json
        }
    }

    public func record(_ entry: Entry) {
        let line = JSONWriter.string(entry.json) + "\n"
        buffer.withLock { $0.append(contentsOf: line.utf8) }
    }

    /// Writes what is buffered.
    public func flush() {
        let pending: [UInt8] = buffer.withLock { b in
            defer { b.removeAll(keepingCapacity: true) }
            return b
        }
        guard !pending.isEmpty else { return }
        handle.write(Data(pending))
    }

    /// Flushes every `interval` until cancelled, then once more.
    public func run(every interval: Duration = .milliseconds(200)) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                break
            }
            flush()
        }
        flush()
    }

    deinit {
        flush()
        if closesHandle { try? handle.close() }
    }

    /// The flat attributes with credential headers masked.
    public static func masked(_ attributes: Value) -> Value {
        guard case .object(var members) = attributes,
              case .object(var headers)? = members[.string(AuthzRequest.AttributeKey.headers)]
        else { return attributes }
        for key in headers.keys {
            if let name = key.stringValue, maskedHeaders.contains(name.lowercased()) { headers[key] = .string(masked) }
        }
        members[.string(AuthzRequest.AttributeKey.headers)] = .object(headers)
        return .object(members)
    }

    /// RFC 3339 with milliseconds, in UTC.
    static func timestamp(_ date: Date) -> String {
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
