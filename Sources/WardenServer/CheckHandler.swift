import DecisionPoint
import ExtAuthz
import Foundation
import PolicyCore

/// Decides checks, whatever transport they came by: maps the `CheckRequest`, decides on the snapshot serving at
/// that moment, renders the answer, and records metrics and the decision log. Never throws: a server with no
/// policy set answers every check with a fail-closed denial.
public final class CheckHandler: Sendable {
    public let decisionPoint: DecisionPoint
    public let mapper: CheckRequestMapper
    public let metrics: ServerMetrics
    public let log: DecisionLog?

    public init(decisionPoint: DecisionPoint, mapper: CheckRequestMapper, metrics: ServerMetrics, log: DecisionLog?) {
        self.decisionPoint = decisionPoint
        self.mapper = mapper
        self.metrics = metrics
        self.log = log
    }

    public struct Result: Sendable {
        public var decision: ExtAuthzDecision
        public var response: DecisionResponse
        public var request: AuthzRequest
        public var decisionID: String
    }

    public func check(_ check: Envoy_Service_Auth_V3_CheckRequest, transport: String) -> Result {
        let clock = ContinuousClock()
        let start = clock.now
        let snapshot = decisionPoint.snapshot
        var mapper = self.mapper
        // OPA-Envoy's input document is only needed when a CUSTOM provider may be asked.
        if mapper.options.includeProviderInput, snapshot?.providers.isEmpty ?? true {
            mapper.options.includeProviderInput = false
        }
        let request = mapper.map(check)
        let response = snapshot?.decide(request) ?? .notReady
        let decisionID = Self.newDecisionID()
        let decision = ExtAuthzDecision(response, decisionID: decisionID)
        let duration = clock.now - start
        metrics.recordDecision(response, duration: duration)
        log?.record(DecisionLog.Entry(
            decisionID: decisionID, time: Date(), request: request, response: response, revision: snapshot?.revision,
            duration: duration, transport: transport))
        return Result(decision: decision, response: response, request: request, decisionID: decisionID)
    }

    /// A random version-4 UUID, lowercase.
    static func newDecisionID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let hex = bytes.map { b in
            let s = String(b, radix: 16)
            return b < 16 ? "0" + s : s
        }.joined()
        var out = ""
        for (i, c) in hex.enumerated() {
            if i == 8 || i == 12 || i == 16 || i == 20 { out.append("-") }
            out.append(c)
        }
        return out
    }
}
