import DecisionPoint
import ExtAuthz
import Foundation
import Networking
import PolicyCore
import Synchronization

/// Decides checks, whatever transport they came by: maps the `CheckRequest`, decides on the snapshot serving at
/// that moment, renders the answer, and records metrics and the decision log. Never throws: a server with no
/// policy set answers every check with a fail-closed denial.
public final class CheckHandler: Sendable {
    public let decisionPoint: DecisionPoint
    public let mapper: CheckRequestMapper
    public let metrics: ServerMetrics
    public let log: DecisionLog?
    /// Remote decision logs: events are buffered here and uploaded in the background.
    public let upload: DecisionLogUploader?

    public init(
        decisionPoint: DecisionPoint, mapper: CheckRequestMapper, metrics: ServerMetrics, log: DecisionLog?,
        upload: DecisionLogUploader? = nil
    ) {
        self.decisionPoint = decisionPoint
        self.mapper = mapper
        self.metrics = metrics
        self.log = log
        self.upload = upload
    }

    public struct Result: Sendable {
        public var response: DecisionResponse
        public var request: AuthzRequest
        public var decisionID: String

        /// The answer rendered for a transport (its id left to the transport). The gRPC encoder finds a common
        /// decision's encoding without it.
        public var decision: ExtAuthzDecision { ExtAuthzDecision(response) }
    }

    /// `client`: who asked, when the listener identifies its TLS clients. Only a client on the listener's allow-list
    /// (`authorized`) is trusted with the verified-claims header (when configured); the decision log names the client.
    public func check(_ check: Envoy_Service_Auth_V3_CheckRequest, transport: String, client: TLSPeer? = nil) -> Result {
        self.check(DecodedCheck(check), transport: transport, client: client)
    }

    /// The same for a check read by `mapper.decode(_:)`.
    public func check(_ decoded: DecodedCheck, transport: String, client: TLSPeer? = nil) -> Result {
        let start = ContinuousClock.now
        let request = mapper.map(decoded, claimsHeaderTrusted: client?.authorized == true)
        return decide(request, input: CheckInput(check: decoded.request, normalizedPath: request.http.path), since: start,
                      transport: transport, client: client)
    }

    /// A check in ext_authz's HTTP mode: the original method, target (prefix removed) and headers, from the calling
    /// proxy's address. Mapped without building a `CheckRequest`; one is built only if a CUSTOM provider asks for
    /// OPA-Envoy's input.
    public func check(
        method: String, target: String, headers: [(name: String, value: String)], body: [UInt8],
        source: CheckRequestParts.Peer, client: TLSPeer? = nil
    ) -> Result {
        let start = ContinuousClock.now
        let request = mapper.map(
            method: method, target: target, headers: headers, sourceAddress: source.address,
            claimsHeaderTrusted: client?.authorized == true)
        let input = HTTPCheckInput(method: method, target: target, headers: headers, body: body, source: source,
                                   normalizedPath: request.http.path)
        return decide(request, input: input, since: start, transport: "http", client: client)
    }

    private func decide(
        _ request: AuthzRequest, input: some ProviderInputSource, since start: ContinuousClock.Instant, transport: String,
        client: TLSPeer?
    ) -> Result {
        let clock = ContinuousClock()
        let serving = decisionPoint.serving
        let response = serving?.snapshot.decide(request, input: input) ?? .notReady
        let decisionID = Self.newDecisionID()
        let duration = clock.now - start
        metrics.recordDecision(response, duration: duration)
        if log != nil || upload != nil {
            let snapshot = serving?.snapshot
            let entry = DecisionLog.Entry(
                decisionID: decisionID, time: Date(), request: request, response: response, revision: snapshot?.revision,
                duration: duration, transport: transport, bundleRevision: snapshot?.bundleRevision, client: client?.identity)
            log?.record(entry)
            upload?.record(entry.json)
        }
        return Result(response: response, request: request, decisionID: decisionID)
    }

    /// A version-4 UUID, lowercase: a counter mixed with a per-process random key, so every id in the process
    /// differs and none costs a system call.
    static func newDecisionID() -> String {
        let count = decisionCounter.add(1, ordering: .relaxed).newValue
        let high = SplitMix64.mix(count &+ decisionKey.0) & 0xFFFF_FFFF_FFFF_0FFF | 0x0000_0000_0000_4000
        let low = SplitMix64.mix(count &+ decisionKey.1) & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 36) { buffer in
            digits.withUTF8Buffer { digits in
                var position = 0
                for nibble in 0..<32 {
                    if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 {
                        buffer[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    let word = nibble < 16 ? high : low
                    let shift = UInt64(60 - (nibble % 16) * 4)
                    buffer[position] = digits[Int((word >> shift) & 0xF)]
                    position += 1
                }
            }
            return 36
        }
    }

    private static let decisionCounter = Atomic<UInt64>(0)
    private static let decisionKey: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()
}

/// OPA-Envoy's input document for a check, built from the `CheckRequest` as received, only if a CUSTOM provider
/// asks for it; the path is the normalized one rules match.
struct CheckInput: ProviderInputSource {
    let check: Envoy_Service_Auth_V3_CheckRequest
    let normalizedPath: String?

    func providerInput(for request: AuthzRequest) -> Value {
        OPAEnvoyInput.document(for: check, normalizedPath: normalizedPath)
    }
}

/// The same for a check in HTTP mode: the `CheckRequest` is built from the HTTP request only when asked for.
struct HTTPCheckInput: ProviderInputSource {
    let method: String
    let target: String
    let headers: [(name: String, value: String)]
    let body: [UInt8]
    let source: CheckRequestParts.Peer
    let normalizedPath: String?

    func providerInput(for request: AuthzRequest) -> Value {
        let check = HTTPCheckRequest.make(method: method, target: target, headers: headers, body: body, source: source)
        return OPAEnvoyInput.document(for: check, normalizedPath: normalizedPath)
    }
}
