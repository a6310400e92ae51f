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
/// The id's fields are encoded once too, per kind of outcome and id length, around a stand-in id whose bytes are
/// then overwritten by each check's id: the id's place in those bytes depends only on its length.
///
/// Bounded: past `capacity` distinct decisions (a CUSTOM provider whose answers echo the request) it starts over.
public final class CheckResponseEncoder: Sendable {
    public static let capacity = 1024

    /// The id's fields for one kind of outcome and id length, and where the id's bytes go in them.
    struct IdentifiedTemplate: Sendable {
        var bytes: [UInt8]
        var offsets: [Int]
    }

    struct TemplateKey: Hashable {
        var denied: Bool
        var idLength: Int
    }

    private struct Kept {
        var decisions: [ExtAuthzDecision: [UInt8]] = [:]
        /// The same encodings by what decided, for responses rendered from that alone (`RenderKey`).
        var byKey: [ExtAuthzDecision.RenderKey: [UInt8]] = [:]
        var templates: [TemplateKey: IdentifiedTemplate] = [:]
    }
    private let kept = Mutex(Kept())

    public init() {}

    /// The response to a check decided as `response`. A common response (no CUSTOM answer, no diagnostics) is
    /// found by what decided it, without rendering it first: rendering builds the denial's text and headers, and
    /// hashing them to find their kept encoding costs more again.
    public func encode(_ response: DecisionResponse, decisionID: String) throws -> [UInt8] {
        guard let key = ExtAuthzDecision.RenderKey(response) else {
            return try encode(ExtAuthzDecision(response), decisionID: decisionID)
        }
        let templateKey = TemplateKey(denied: !response.isAllowed, idLength: decisionID.utf8.count)
        let (keptHead, keptTail) = kept.withLock { ($0.byKey[key], $0.templates[templateKey]) }
        let head = try keptHead ?? keep(ExtAuthzDecision(response), as: key, in: \.byKey)
        return try assemble(head: head, tail: keptTail ?? keepTemplate(templateKey), decisionID: decisionID,
                            denied: templateKey.denied)
    }

    /// `decision` must not carry the id itself (`ExtAuthzDecision(response)` without one).
    public func encode(_ decision: ExtAuthzDecision, decisionID: String) throws -> [UInt8] {
        let key = TemplateKey(denied: !decision.isAllowed, idLength: decisionID.utf8.count)
        // One lock for both lookups: this runs on every check.
        let (keptHead, keptTail) = kept.withLock { ($0.decisions[decision], $0.templates[key]) }
        let head = try keptHead ?? keep(decision, as: decision, in: \.decisions)
        return try assemble(head: head, tail: keptTail ?? keepTemplate(key), decisionID: decisionID, denied: key.denied)
    }

    /// The decision's kept encoding followed by the id's fields: from the template when there is one, else
    /// encoded for this id.
    private func assemble(
        head: [UInt8], tail: IdentifiedTemplate?, decisionID: String, denied: Bool
    ) throws -> [UInt8] {
        guard let tail else {
            return head + (try Self.identified(denied: denied, decisionID: decisionID).serializedBytes() as [UInt8])
        }
        var id = decisionID
        return [UInt8](unsafeUninitializedCapacity: head.count + tail.bytes.count) { out, count in
            _ = out.initialize(fromContentsOf: head)
            _ = out[head.count...].initialize(fromContentsOf: tail.bytes)
            id.withUTF8 { id in
                for offset in tail.offsets {
                    _ = out[(head.count + offset)...].update(fromContentsOf: id)
                }
            }
            count = head.count + tail.bytes.count
        }
    }

    /// Encodes `decision` and keeps its bytes in `table` under `key`.
    private func keep<Key: Hashable>(
        _ decision: ExtAuthzDecision, as key: Key, in table: WritableKeyPath<Kept, [Key: [UInt8]]>
    ) throws -> [UInt8] {
        let bytes: [UInt8] = try decision.checkResponse.serializedBytes()
        kept.withLock {
            if $0[keyPath: table].count >= Self.capacity { $0[keyPath: table].removeAll(keepingCapacity: true) }
            $0[keyPath: table][key] = bytes
        }
        return bytes
    }

    private func keepTemplate(_ key: TemplateKey) -> IdentifiedTemplate? {
        guard let made = Self.template(for: key) else { return nil }
        kept.withLock {
            if $0.templates.count >= Self.capacity { $0.templates.removeAll(keepingCapacity: true) }
            $0.templates[key] = made
        }
        return made
    }

    /// The id's fields around a stand-in id of the key's length, or nil when the stand-in cannot be told apart
    /// from the bytes around it (an id too short to be unmistakable).
    static func template(for key: TemplateKey) -> IdentifiedTemplate? {
        guard key.idLength >= 8 else { return nil }
        let standIn = [UInt8](repeating: 0x01, count: key.idLength)
        let message = identified(denied: key.denied, decisionID: String(decoding: standIn, as: UTF8.self))
        guard let bytes = try? message.serializedBytes() as [UInt8] else { return nil }
        var offsets: [Int] = []
        var position = 0
        while position + standIn.count <= bytes.count {
            if bytes[position..<position + standIn.count].elementsEqual(standIn) {
                offsets.append(position)
                position += standIn.count
            } else {
                position += 1
            }
        }
        // The header (denials) and the metadata entry: each carries the id once.
        guard offsets.count == (key.denied ? 2 : 1) else { return nil }
        return IdentifiedTemplate(bytes: bytes, offsets: offsets)
    }

    /// The fields that carry the decision id (a denial's id header, and the metadata entry).
    static func identified(denied: Bool, decisionID: String) -> Envoy_Service_Auth_V3_CheckResponse {
        var out = Envoy_Service_Auth_V3_CheckResponse()
        if denied {
            out.deniedResponse.headers = [ExtAuthzDecision.option(
                HeaderValue(ExtAuthzDecision.WardenHeader.decisionID, decisionID), action: .overwriteIfExistsOrAdd)]
        }
        out.dynamicMetadata.fields["decision_id"] = Google_Protobuf_Value(stringValue: decisionID)
        return out
    }
}
