import PolicyCore
import SwiftProtobuf

/// The answer to one check, decided once and rendered as a gRPC `CheckResponse` or an HTTP response: allowed
/// with changes to the request, or denied with the response the client gets.
public struct ExtAuthzDecision: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        case allowed(Allowed)
        case denied(Denied)
    }

    public struct Allowed: Sendable, Hashable {
        /// Set on (or added to) the upstream request.
        public var headers: [HeaderValue]
        public var headersToRemove: [String]
        /// Added to the response sent back downstream.
        public var responseHeadersToAdd: [HeaderValue]
    }

    public struct Denied: Sendable, Hashable {
        public var httpStatus: Int
        /// The gRPC code in `CheckResponse.status` (`google.rpc.Code`).
        public var rpcCode: Int32
        public var headers: [HeaderValue]
        public var body: String
    }

    public var outcome: Outcome
    public var dynamicMetadata: Value?

    public var isAllowed: Bool {
        if case .allowed = outcome { return true }
        return false
    }

    /// Response headers that say why a request was denied.
    public enum WardenHeader {
        public static let decision = "x-warden-decision"
        public static let reason = "x-warden-reason"
        public static let policy = "x-warden-policy"
        public static let rule = "x-warden-rule"
        public static let decisionID = "x-warden-decision-id"
    }

    /// `google.rpc.Code` values used here.
    public enum RPCCode {
        public static let ok: Int32 = 0
        public static let permissionDenied: Int32 = 7
        public static let unavailable: Int32 = 14
    }

    /// Renders a decision: a denial carries 403 (or the CUSTOM provider's status), a body naming the deciding
    /// policy, and `x-warden-*` headers; an allowed request gets the provider's header changes. A server with no
    /// policy set answers 503 (fail closed).
    public init(_ response: DecisionResponse, decisionID: String? = nil) {
        let custom = response.customOutcome
        dynamicMetadata = custom?.dynamicMetadata
        if response.isAllowed {
            outcome = .allowed(Allowed(
                headers: custom?.headers ?? [],
                headersToRemove: custom?.requestHeadersToRemove ?? [],
                responseHeadersToAdd: custom?.responseHeadersToAdd ?? []))
            return
        }
        var headers: [HeaderValue] = [
            HeaderValue(WardenHeader.decision, "deny"),
            HeaderValue(WardenHeader.reason, response.reason.rawValue),
        ]
        if let by = response.decidedBy {
            headers.append(HeaderValue(WardenHeader.policy, by.policy.description))
            if let rule = by.rule { headers.append(HeaderValue(WardenHeader.rule, String(rule))) }
        }
        if let decisionID { headers.append(HeaderValue(WardenHeader.decisionID, decisionID)) }
        var status = 403
        var code = RPCCode.permissionDenied
        var body = Self.denialBody(response)
        switch response.reason {
        case .notReady:
            status = 503
            code = RPCCode.unavailable
        case .invalidRequest:
            status = 400
            if let why = response.diagnostics.first?.message { body = "bad request: \(why)\n" }
        case .customDenied:
            // The provider's own response, when it gave one; Warden's headers still say why.
            if let custom {
                if let s = custom.httpStatus { status = s }
                headers = custom.headers + headers
                if let b = custom.body { body = b }
            }
        default:
            break
        }
        outcome = .denied(Denied(httpStatus: status, rpcCode: code, headers: headers, body: body))
    }

    /// All a common response's rendering depends on: whether it allowed, why, and which rule decided. Nil for a
    /// response with a CUSTOM provider's answer or diagnostics, whose rendering carries them.
    public struct RenderKey: Hashable, Sendable {
        var decision: Decision
        var reason: DecisionReason
        var decidedBy: RuleMatch?

        public init?(_ response: DecisionResponse) {
            guard response.custom.isEmpty, response.diagnostics.isEmpty else { return nil }
            decision = response.decision
            reason = response.reason
            decidedBy = response.decidedBy
        }
    }

    public init(outcome: Outcome, dynamicMetadata: Value? = nil) {
        self.outcome = outcome
        self.dynamicMetadata = dynamicMetadata
    }

    /// `RBAC: access denied`-style text that names the deciding policy.
    static func denialBody(_ response: DecisionResponse) -> String {
        var text = "access denied: " + response.reason.explanation
        if let by = response.decidedBy { text += " (\(by.action.rawValue) \(by))" }
        return text + "\n"
    }

    /// The gRPC form.
    public var checkResponse: Envoy_Service_Auth_V3_CheckResponse {
        var out = Envoy_Service_Auth_V3_CheckResponse()
        switch outcome {
        case .allowed(let allowed):
            out.status = Google_Rpc_Status.with { $0.code = RPCCode.ok }
            var ok = Envoy_Service_Auth_V3_OkHttpResponse()
            ok.headers = allowed.headers.map { Self.option($0, action: .overwriteIfExistsOrAdd) }
            ok.headersToRemove = allowed.headersToRemove
            ok.responseHeadersToAdd = allowed.responseHeadersToAdd.map { Self.option($0, action: .appendIfExistsOrAdd) }
            out.okResponse = ok
        case .denied(let denied):
            out.status = Google_Rpc_Status.with {
                $0.code = denied.rpcCode
                $0.message = denied.body.trimmingSuffixNewline
            }
            var response = Envoy_Service_Auth_V3_DeniedHttpResponse()
            response.status = Envoy_Type_V3_HttpStatus.with {
                $0.code = Envoy_Type_V3_StatusCode(rawValue: denied.httpStatus) ?? .forbidden
            }
            response.headers = denied.headers.map { Self.option($0, action: .overwriteIfExistsOrAdd) }
            response.body = denied.body
            out.deniedResponse = response
        }
        if let metadata = dynamicMetadata?.protobufStruct { out.dynamicMetadata = metadata }
        return out
    }

    static func option(
        _ header: HeaderValue, action: Envoy_Config_Core_V3_HeaderValueOption.HeaderAppendAction
    ) -> Envoy_Config_Core_V3_HeaderValueOption {
        var option = Envoy_Config_Core_V3_HeaderValueOption()
        option.header = Envoy_Config_Core_V3_HeaderValue.with {
            $0.key = header.name
            $0.value = header.value
        }
        option.appendAction = action
        return option
    }
}

extension String {
    fileprivate var trimmingSuffixNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
