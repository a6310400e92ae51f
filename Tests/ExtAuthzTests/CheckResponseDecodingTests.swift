import DecisionPoint
@testable import ExtAuthz
import Foundation
import PolicyCore
import SwiftProtobuf
import Testing

/// `CheckResponse(checkResponseBytes:)` must give swift-protobuf's answer for every input: the same message, or an
/// error where swift-protobuf throws one. The wire reader must also take the answers Warden's server gives itself.
@Suite struct CheckResponseDecodingTests {
    static let denyMatch = RuleMatch(policy: PolicyID(namespace: "default", name: "deny-admin"), action: .deny, rule: 0)

    /// What `warden serve` sends: an allowed and a denied answer, each with its decision id.
    static func serverAnswers() throws -> [[UInt8]] {
        let encoder = CheckResponseEncoder()
        return [
            try encoder.encode(DecisionResponse(decision: .allow, reason: .noAllowPolicy), decisionID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            try encoder.encode(
                DecisionResponse(decision: .deny, reason: .denyMatched, decidedBy: denyMatch), decisionID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            try encoder.encode(DecisionResponse(decision: .allow, reason: .noAllowPolicy), decisionID: "short"),
        ]
    }

    /// An answer with every field a server may set, the status's details and an error response aside.
    static var full: Envoy_Service_Auth_V3_CheckResponse {
        var response = Envoy_Service_Auth_V3_CheckResponse()
        response.status.code = 0
        response.status.message = "allowed ✓"
        var option = Envoy_Config_Core_V3_HeaderValueOption()
        option.header.key = "x-user"
        option.header.value = "alice"
        option.appendAction = .overwriteIfExistsOrAdd
        response.okResponse.headers = [option]
        response.okResponse.headersToRemove = ["x-drop"]
        response.okResponse.responseHeadersToAdd = [option]
        var parameter = Envoy_Config_Core_V3_QueryParameter()
        parameter.key = "k"
        parameter.value = "v"
        response.okResponse.queryParametersToSet = [parameter]
        response.okResponse.queryParametersToRemove = ["q"]
        response.dynamicMetadata.fields["decision_id"] = Google_Protobuf_Value(stringValue: "id-1")
        response.dynamicMetadata.fields["score"] = Google_Protobuf_Value(numberValue: 0.5)
        response.dynamicMetadata.fields["tags"] = Google_Protobuf_Value(
            listValue: Google_Protobuf_ListValue(values: [Google_Protobuf_Value(boolValue: true), Google_Protobuf_Value()]))
        return response
    }

    /// Both decodings of `bytes`: equal messages, or both refused (a NaN in the metadata is compared as text).
    func expectSameAnswer(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let reference = try? Envoy_Service_Auth_V3_CheckResponse(serializedBytes: bytes)
        let decoded = bytes.withUnsafeBytes { try? Envoy_Service_Auth_V3_CheckResponse(checkResponseBytes: $0) }
        guard decoded != reference else { return }
        #expect(decoded?.textFormatString() == reference?.textFormatString() && decoded != nil, "\(bytes)",
                sourceLocation: sourceLocation)
    }

    @Test func theServersAnswersAreReadByTheReader() throws {
        for bytes in try Self.serverAnswers() {
            let read = try #require(bytes.withUnsafeBytes { CheckWireReader.checkResponse($0) })
            #expect(read == (try Envoy_Service_Auth_V3_CheckResponse(serializedBytes: bytes)))
        }
        // The denial comes in two pieces, merged: the decision's headers and body, then the id's header.
        let denial = try Self.serverAnswers()[1]
        let denied = try #require(denial.withUnsafeBytes { CheckWireReader.checkResponse($0) }).deniedResponse
        #expect(denied.headers.map(\.header.key).contains("x-warden-policy"))
        #expect(denied.headers.last?.header.value == "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
        #expect(!denied.body.isEmpty)
    }

    @Test func aFullAnswerIsReadAndWhatTheReaderDoesNotExpectIsSwiftProtobufs() throws {
        let bytes: [UInt8] = try Self.full.serializedBytes()
        #expect(bytes.withUnsafeBytes { CheckWireReader.checkResponse($0) } == Self.full)
        // The status's details (an Any), an unknown field, a second status and an error response go to swift-protobuf.
        var detailed = Self.full
        detailed.status.details = [Google_Protobuf_Any()]
        var errored = Self.full
        errored.errorResponse = Envoy_Service_Auth_V3_DeniedHttpResponse()
        var status = Envoy_Service_Auth_V3_CheckResponse()
        status.status.message = "again"
        for other in [try detailed.serializedBytes(), bytes + [0x98, 0x06, 0x01], bytes + (try status.serializedBytes()),
                      try errored.serializedBytes()] as [[UInt8]] {
            #expect(other.withUnsafeBytes { CheckWireReader.checkResponse($0) } == nil)
            expectSameAnswer(other)
        }
        // An allowed answer after a denial replaces it, as swift-protobuf's oneof does.
        var allowed = Envoy_Service_Auth_V3_CheckResponse()
        allowed.okResponse = Self.full.okResponse
        let replaced = try Self.serverAnswers()[1] + allowed.serializedBytes()
        #expect(replaced.withUnsafeBytes { CheckWireReader.checkResponse($0) }?.okResponse == Self.full.okResponse)
        expectSameAnswer(replaced)
    }

    /// Dynamic metadata nested past swift-protobuf's limit of 100 messages is refused as it refuses it.
    @Test func nestingPastSwiftProtobufsLimitIsRefusedAsItRefusesIt() throws {
        func answer(nesting levels: Int) throws -> [UInt8] {
            var response = Envoy_Service_Auth_V3_CheckResponse()
            response.dynamicMetadata = WireTestInputs.nestedStruct(levels: levels)
            return try response.serializedBytes()
        }
        #expect((try? Envoy_Service_Auth_V3_CheckResponse(serializedBytes: try answer(nesting: 49))) != nil)
        #expect((try? Envoy_Service_Auth_V3_CheckResponse(serializedBytes: try answer(nesting: 50))) == nil)
        for levels in 47...52 { expectSameAnswer(try answer(nesting: levels)) }
    }

    /// Every truncation of the server's answers and of a full one, and seeded random damage to them.
    @Test func damagedAnswersGetSwiftProtobufsAnswer() throws {
        for bytes in try Self.serverAnswers() + [Self.full.serializedBytes()] {
            for damaged in WireTestInputs.damaged(bytes, count: 1_000, seed: 0xC0FFEE) { expectSameAnswer(damaged) }
        }
    }
}
