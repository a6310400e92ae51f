import Foundation
import Networking
import PolicyCore

/// Decision logs as JSON lines, one per check: the decision id, time, the request's flat attributes (under
/// `attributes`, as `warden replay` reads them, with credentials masked), the decision (`DecisionResponse.json`,
/// dry-run outcomes included), the deciding policy, the AUDIT flag, the snapshot revision and the latency.
///
/// Lines go to a `LineLog`: buffered, written by a background task, so a check never waits on the disk.
public final class DecisionLog: Sendable {
    public typealias Destination = LineLog.Destination

    /// Header values replaced by `masked` in logged attributes.
    public static let maskedHeaders: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie"]
    public static let masked = "<masked>"

    /// Where the lines go; run it as a service (or call `flush`) to write them.
    public let lines: LineLog

    public init(destination: Destination) throws {
        do {
            lines = try LineLog(destination: destination)
        } catch {
            throw Diagnostic(code: Diagnostic.Code.io, message: "cannot open decision log: \(error)")
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
        /// Who asked: the TLS client's SPIFFE ID (or subject), on a listener that verifies client certificates.
        public var client: String?

        public init(
            decisionID: String, time: Date, request: AuthzRequest, response: DecisionResponse, revision: Int?,
            duration: Duration, transport: String, bundleRevision: String? = nil, client: String? = nil
        ) {
            self.client = client
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
                "time": .string(LineLog.timestamp(time)),
                "attributes": DecisionLog.masked(request.attributes),
                "decision": response.json,
                "result": .string(response.decision.rawValue),
                "policy": response.decidedBy.map { .string($0.policy.description) } ?? .null,
                "audit": .bool(response.audited),
                "revision": revision.map(Value.int) ?? .null,
                "duration_ns": .int(Int(nanoseconds)),
                "transport": .string(transport),
            ]
            if case .object(var members) = json, bundleRevision != nil || client != nil {
                if let bundleRevision { members[.string("bundle_revision")] = .string(bundleRevision) }
                if let client { members[.string("client")] = .string(client) }
                json = .object(members)
            }
            return json
        }
    }

    public func record(_ entry: Entry) {
        lines.append(JSONWriter.string(entry.json))
    }

    /// Writes what is buffered.
    public func flush() { lines.flush() }

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
}
