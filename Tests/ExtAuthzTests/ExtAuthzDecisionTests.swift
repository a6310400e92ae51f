import DecisionPoint
@testable import ExtAuthz
import PolicyCore
import SwiftProtobuf
import Testing

@Suite struct ExtAuthzDecisionTests {
    let denyMatch = RuleMatch(policy: PolicyID(namespace: "default", name: "deny-admin"), action: .deny, rule: 0)

    @Test func aDenialNamesThePolicyAndSaysWhy() throws {
        let response = DecisionResponse(decision: .deny, reason: .denyMatched, decidedBy: denyMatch)
        let check = ExtAuthzDecision(response, decisionID: "id-1").checkResponse
        #expect(check.status.code == 7)
        let denied = try #require(check.deniedResponse as Envoy_Service_Auth_V3_DeniedHttpResponse?)
        #expect(denied.status.code == .forbidden)
        #expect(denied.body.contains("default/deny-admin"))
        let headers = Dictionary(uniqueKeysWithValues: denied.headers.map { ($0.header.key, $0.header.value) })
        #expect(headers["x-warden-decision"] == "deny")
        #expect(headers["x-warden-reason"] == "deny_matched")
        #expect(headers["x-warden-policy"] == "default/deny-admin")
        #expect(headers["x-warden-rule"] == "0")
        #expect(headers["x-warden-decision-id"] == "id-1")
    }

    @Test func anAllowedCheckIsOKWithNoChanges() {
        let check = ExtAuthzDecision(DecisionResponse(decision: .allow, reason: .noAllowPolicy)).checkResponse
        #expect(check.status.code == 0)
        #expect(check.okResponse.headers.isEmpty)
        #expect(!check.hasDynamicMetadata)
    }

    @Test func notReadyFailsClosedWith503() throws {
        let check = ExtAuthzDecision(.notReady).checkResponse
        #expect(check.status.code == 14)
        #expect(check.deniedResponse.status.code == .serviceUnavailable)
    }

    @Test func aCustomProvidersDenialSetsStatusHeadersAndBody() throws {
        let outcome = OPAEnvoyDecision.decode([
            "allowed": false, "http_status": 401, "body": "login first", "headers": ["www-authenticate": "Bearer"],
        ])
        let match = RuleMatch(policy: PolicyID(namespace: "default", name: "ext"), action: .custom, rule: 0)
        let response = DecisionResponse(
            decision: .deny, reason: .customDenied, decidedBy: match,
            custom: [CustomCheck(match: match, provider: "opa", outcome: outcome)])
        let check = ExtAuthzDecision(response).checkResponse
        #expect(check.deniedResponse.status.code == .unauthorized)
        #expect(check.deniedResponse.body == "login first")
        let names = check.deniedResponse.headers.map(\.header.key)
        #expect(names.contains("www-authenticate"))
        #expect(names.contains("x-warden-policy"))
    }

    @Test func aCustomProvidersAllowanceAddsAndRemovesHeadersAndMetadata() {
        let outcome = OPAEnvoyDecision.decode([
            "allowed": true, "headers": ["x-user": ["alice", "bob"]], "request_headers_to_remove": ["cookie"],
            "response_headers_to_add": [["x-served-by": "warden"]], "dynamic_metadata": ["tier": "gold"],
        ])
        let match = RuleMatch(policy: PolicyID(namespace: "default", name: "ext"), action: .custom, rule: 0)
        let response = DecisionResponse(
            decision: .allow, reason: .noAllowPolicy, custom: [CustomCheck(match: match, provider: "opa", outcome: outcome)])
        let check = ExtAuthzDecision(response).checkResponse
        #expect(check.okResponse.headers.map { "\($0.header.key)=\($0.header.value)" } == ["x-user=alice", "x-user=bob"])
        #expect(check.okResponse.headersToRemove == ["cookie"])
        #expect(check.okResponse.responseHeadersToAdd.first?.header.key == "x-served-by")
        #expect(check.dynamicMetadata.fields["tier"]?.stringValue == "gold")
    }
}

/// The encoder's bytes (the decision's part, kept, then the id's fields) decode as the whole response would: the
/// id header last among a denial's headers and `decision_id` in the metadata, from a kept encoding as from a new one.
@Suite struct CheckResponseEncoderTests {
    func whole(_ response: DecisionResponse, id: String) -> Envoy_Service_Auth_V3_CheckResponse {
        var whole = ExtAuthzDecision(response, decisionID: id).checkResponse
        whole.dynamicMetadata.fields["decision_id"] = Google_Protobuf_Value(stringValue: id)
        return whole
    }

    @Test func concatenatedFieldsDecodeAsTheWholeResponse() throws {
        let match = RuleMatch(policy: PolicyID(namespace: "default", name: "ext"), action: .custom, rule: 0)
        let denial = DecisionResponse(
            decision: .deny, reason: .customDenied, decidedBy: match,
            custom: [CustomCheck(match: match, provider: "opa", outcome: OPAEnvoyDecision.decode([
                "allowed": false, "http_status": 401, "body": "login first", "headers": ["www-authenticate": "Bearer"],
                "dynamic_metadata": ["tier": "gold", "decision_id": "from the policy"],
            ]))])
        let allowance = DecisionResponse(
            decision: .allow, reason: .noAllowPolicy,
            custom: [CustomCheck(match: match, provider: "opa", outcome: OPAEnvoyDecision.decode([
                "allowed": true, "headers": ["x-user": "alice"], "dynamic_metadata": ["tier": "gold"],
            ]))])
        let encoder = CheckResponseEncoder()
        // Short ids are encoded whole; ids of eight bytes or more (a decision id is a 36-byte UUID) by overwriting
        // a kept encoding around a stand-in; the second id of each length comes from the kept bytes.
        let ids = ["id-1", "id-2", "5d1d4a1e-6f3c-4a8b-9a0f-6c2e1d3b4a5f", "0b8e7a52-1c4d-4e2f-8a9b-3c5d7e9f1a2b",
                   "12345678", "87654321", String(repeating: "x", count: 300)]
        for response in [denial, allowance, .notReady, DecisionResponse(decision: .allow, reason: .noAllowPolicy)] {
            for id in ids {
                let bytes = try encoder.encode(ExtAuthzDecision(response), decisionID: id)
                let decoded = try Envoy_Service_Auth_V3_CheckResponse(serializedBytes: bytes)
                #expect(decoded == whole(response, id: id))
            }
        }
        // The same from the response itself: common responses are kept by what decided them, the others rendered.
        let allowRule = RuleMatch(policy: PolicyID(namespace: "default", name: "allow-get"), action: .allow, rule: 0)
        let denyRule = RuleMatch(policy: PolicyID(namespace: "default", name: "deny-admin"), action: .deny, rule: 1)
        let common: [DecisionResponse] = [
            DecisionResponse(decision: .allow, reason: .allowMatched, decidedBy: allowRule),
            DecisionResponse(decision: .deny, reason: .denyMatched, decidedBy: denyRule),
            DecisionResponse(decision: .deny, reason: .denyMatched,
                             decidedBy: RuleMatch(policy: denyRule.policy, action: .deny, rule: 2)),
            DecisionResponse(decision: .deny, reason: .noAllowMatched),
            .notReady, .invalidRequest("the path holds an escaped NUL"),
        ]
        for response in common + [denial, allowance] {
            #expect((ExtAuthzDecision.RenderKey(response) == nil) == (response.reason == .invalidRequest
                || !response.custom.isEmpty))
            for id in ids + ids {
                let bytes = try encoder.encode(response, decisionID: id)
                #expect(try Envoy_Service_Auth_V3_CheckResponse(serializedBytes: bytes) == whole(response, id: id))
            }
        }
        let decoded = try Envoy_Service_Auth_V3_CheckResponse(
            serializedBytes: encoder.encode(ExtAuthzDecision(denial), decisionID: "id-3"))
        #expect(decoded.deniedResponse.headers.last?.header.key == "x-warden-decision-id")
        #expect(decoded.deniedResponse.headers.last?.header.value == "id-3")
        #expect(decoded.dynamicMetadata.fields["decision_id"]?.stringValue == "id-3")
        #expect(decoded.dynamicMetadata.fields["tier"]?.stringValue == "gold")
    }

    @Test func theIdsPlaceIsKeptPerOutcomeAndLength() throws {
        for denied in [true, false] {
            let template = try #require(CheckResponseEncoder.template(for: .init(denied: denied, idLength: 36)))
            #expect(template.offsets.count == (denied ? 2 : 1))
        }
        #expect(CheckResponseEncoder.template(for: .init(denied: true, idLength: 4)) == nil)
    }
}

@Suite struct OPAEnvoyDecisionTests {
    @Test func booleansAndObjects() {
        #expect(OPAEnvoyDecision.decode(true).allowed)
        #expect(!OPAEnvoyDecision.decode(false).allowed)
        #expect(OPAEnvoyDecision.decode(false).failure == nil)
        #expect(OPAEnvoyDecision.decode(["allowed": true]).allowed)
    }

    static let invalid: [(Value, String)] = [
        ("yes", "must be a boolean or an object, found string"),
        (["headers": [:]], "no `allowed` key"),
        (["allowed": "true"], "`allowed` must be a boolean"),
        (["allowed": false, "http_status": 99], "invalid HTTP status code `99`"),
        (["allowed": false, "http_status": "403"], "`http_status` must be an integer"),
        (["allowed": false, "body": 1], "`body` must be a string"),
        (["allowed": true, "headers": ["x": 1]], "invalid value type number for header `x`"),
        (["allowed": true, "request_headers_to_remove": "cookie"], "must be an array of strings"),
        (["allowed": true, "dynamic_metadata": [1]], "`dynamic_metadata` must be an object"),
    ]

    @Test(arguments: invalid)
    func invalidDecisionsFailClosed(decision: Value, message: String) throws {
        let outcome = OPAEnvoyDecision.decode(decision)
        #expect(!outcome.allowed)
        let failure = try #require(outcome.failure)
        #expect(failure.code == "invalid_decision")
        #expect(failure.message.contains(message), "\(failure.message)")
    }
}
