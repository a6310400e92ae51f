import DecisionPoint
import ExtAuthz
import PolicyCore
import Synchronization
import Testing
@testable import WardenServer

/// A CUSTOM provider that keeps the OPA-Envoy input it is given and allows only the `blue` team.
final class InputRecordingProvider: CustomProvider {
    let inputs = Mutex<[Value]>([])
    func check(_ request: AuthzRequest, input: () -> Value) -> CustomOutcome {
        let document = input()
        inputs.withLock { $0.append(document) }
        let team = document["attributes"]?["request"]?["http"]?["headers"]?["x-team"]
        return OPAEnvoyDecision.decode(["allowed": .bool(team == "blue")])
    }
}

/// ext_authz's HTTP mode maps the request without a `CheckRequest`; a CUSTOM provider still gets OPA-Envoy's input
/// document, the one a `CheckRequest` built from the same request gives, and decides the same.
@Suite struct HTTPModeCheckTests {
    @Test(arguments: ["blue", "red"]) func aCustomProviderGetsTheInputOfTheCheckRequestItStandsFor(team: String) throws {
        let provider = InputRecordingProvider()
        let handler = CheckHandler(
            decisionPoint: DecisionPoint(snapshot: try snapshot(providers: ["ext": provider])),
            mapper: CheckRequestMapper(options: .init(destinationNamespace: "backend", destinationLabels: ["app": "api"])),
            metrics: ServerMetrics(), log: nil)
        let headers = [(name: "Host", value: "api"), (name: "X-Team", value: team), (name: "x-tag", value: "a"), (name: "X-Tag", value: "b")]
        let source = CheckRequestParts.Peer(address: "10.0.0.5", port: 40000)
        let direct = handler.check(
            method: "GET", target: "/ext//a/../b?q=1", headers: headers, body: Array("{}".utf8), source: source)
        let viaProtobuf = handler.check(
            HTTPCheckRequest.make(method: "GET", target: "/ext//a/../b?q=1", headers: headers, body: Array("{}".utf8), source: source),
            transport: "http")
        let inputs = provider.inputs.withLock { $0 }
        #expect(inputs.count == 2)
        #expect(inputs.first == inputs.last)
        #expect(inputs.first?["parsed_path"] == ["ext", "b"])
        #expect(direct.decision == viaProtobuf.decision)
        #expect(direct.request == viaProtobuf.request)
        #expect(direct.request.http.headers["x-tag"] == "a,b")
        #expect(direct.decision.isAllowed == (team == "blue"))
    }
}
