import PolicyCore
import SwiftProtobuf
import Synchronization

/// Encodes the gRPC `CheckResponse` of each check. The part a decision determines is encoded once per distinct
/// decision and kept: a workload's policies give a handful of distinct answers, and encoding a whole response
/// costs several times the rest of a check's rendering (swift-protobuf sizes each nested message once per level
/// above it). What differs on every check, the decision id, follows as fields of their own: protobuf reads
/// concatenated messages as one, merged (a repeated field's elements are appended, a map's entries added, a
/// later scalar wins), so the bytes decode exactly as the whole response encoded at once, with the id header
/// last among a denial's headers and `decision_id` in the dynamic metadata.
///
/// Bounded: past `capacity` distinct decisions (a CUSTOM provider whose answers echo the request) it starts over.
public final class CheckResponseEncoder: Sendable {
    public static let capacity = 1024
    private let encoded = Mutex<[ExtAuthzDecision: [UInt8]]>([:])

    public init() {}

    /// `decision` must not carry the id itself (`ExtAuthzDecision(response)` without one).
    public func encode(_ decision: ExtAuthzDecision, decisionID: String) throws -> [UInt8] {
        var bytes: [UInt8]
        if let hit = encoded.withLock({ $0[decision] }) {
            bytes = hit
        } else {
            bytes = try decision.checkResponse.serializedBytes()
            encoded.withLock {
                if $0.count >= Self.capacity { $0.removeAll(keepingCapacity: true) }
                $0[decision] = bytes
            }
        }
        bytes += try Self.identified(decision, decisionID: decisionID).serializedBytes() as [UInt8]
        return bytes
    }

    /// The fields that carry the decision id.
    static func identified(_ decision: ExtAuthzDecision, decisionID: String) -> Envoy_Service_Auth_V3_CheckResponse {
        var out = Envoy_Service_Auth_V3_CheckResponse()
        if case .denied = decision.outcome {
            out.deniedResponse.headers = [ExtAuthzDecision.option(
                HeaderValue(ExtAuthzDecision.WardenHeader.decisionID, decisionID), action: .overwriteIfExistsOrAdd)]
        }
        out.dynamicMetadata.fields["decision_id"] = Google_Protobuf_Value(stringValue: decisionID)
        return out
    }
}
