/// Allowed or denied.
public enum Decision: String, Sendable, Hashable, Codable {
    case allow
    case deny
}

/// A policy's identity: `namespace/name`.
public struct PolicyID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let namespace: String
    public let name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String { "\(namespace)/\(name)" }

    public static func < (a: PolicyID, b: PolicyID) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
}

/// What an AuthorizationPolicy does when one of its rules matches.
public enum PolicyAction: String, Sendable, Hashable, CaseIterable {
    case allow = "ALLOW"
    case deny = "DENY"
    case audit = "AUDIT"
    case custom = "CUSTOM"
}

/// A rule of a policy that matched a request. `rule` is nil for a policy that matched as a whole
/// (never happens for rule-less policies, which match nothing).
public struct RuleMatch: Sendable, Hashable, CustomStringConvertible {
    public var policy: PolicyID
    public var action: PolicyAction
    public var rule: Int?

    public init(policy: PolicyID, action: PolicyAction, rule: Int?) {
        self.policy = policy
        self.action = action
        self.rule = rule
    }

    public var description: String { rule.map { "\(policy) rule \($0)" } ?? "\(policy)" }
}

/// Why the decision came out the way it did, in evaluation order.
public enum DecisionReason: String, Sendable, Hashable {
    /// A CUSTOM policy matched and its provider denied the request.
    case customDenied = "custom_denied"
    /// A CUSTOM policy matched and its provider could not decide (missing, failed): fail closed.
    case customFailed = "custom_failed"
    /// A DENY policy matched.
    case denyMatched = "deny_matched"
    /// An ALLOW policy matched.
    case allowMatched = "allow_matched"
    /// No ALLOW policy applies to the workload, so nothing restricts it.
    case noAllowPolicy = "no_allow_policy"
    /// ALLOW policies apply to the workload and none matched.
    case noAllowMatched = "no_allow_matched"
    /// No usable policy set is loaded: fail closed.
    case notReady = "not_ready"
    /// The request cannot be matched as sent (`AuthzRequest.HTTPAttributes.refusal`): denied with 400.
    case invalidRequest = "invalid_request"

    /// One line for humans.
    public var explanation: String {
        switch self {
        case .customDenied: "a CUSTOM policy matched and its provider denied the request"
        case .customFailed: "a CUSTOM policy matched and its provider could not decide; failing closed"
        case .denyMatched: "a DENY policy matched"
        case .allowMatched: "an ALLOW policy matched"
        case .noAllowPolicy: "no ALLOW policy applies to the workload"
        case .noAllowMatched: "ALLOW policies apply to the workload and none matched"
        case .notReady: "no policy set is loaded; failing closed"
        case .invalidRequest: "the request cannot be matched as sent"
        }
    }
}

/// A CUSTOM policy that matched: the provider it names, and that provider's answer once asked.
public struct CustomCheck: Sendable, Hashable {
    public var match: RuleMatch
    public var provider: String
    /// Nil until the provider has been asked.
    public var outcome: CustomOutcome?

    public init(match: RuleMatch, provider: String, outcome: CustomOutcome? = nil) {
        self.match = match
        self.provider = provider
        self.outcome = outcome
    }
}

/// A CUSTOM provider's answer, in the shape of an Envoy ext_authz response (OPA-Envoy's decision object).
public struct CustomOutcome: Sendable, Hashable {
    public var allowed: Bool
    /// The HTTP status to deny with (403 when nil).
    public var httpStatus: Int?
    /// Headers added to the upstream request when allowed, or to the denial response when denied.
    public var headers: [HeaderValue]
    /// Headers added to the downstream response when allowed.
    public var responseHeadersToAdd: [HeaderValue]
    public var requestHeadersToRemove: [String]
    /// The denial response body.
    public var body: String?
    public var dynamicMetadata: Value?
    /// Why the provider could not decide (then `allowed` is false).
    public var failure: Diagnostic?

    public init(
        allowed: Bool,
        httpStatus: Int? = nil,
        headers: [HeaderValue] = [],
        responseHeadersToAdd: [HeaderValue] = [],
        requestHeadersToRemove: [String] = [],
        body: String? = nil,
        dynamicMetadata: Value? = nil,
        failure: Diagnostic? = nil
    ) {
        self.allowed = allowed
        self.httpStatus = httpStatus
        self.headers = headers
        self.responseHeadersToAdd = responseHeadersToAdd
        self.requestHeadersToRemove = requestHeadersToRemove
        self.body = body
        self.dynamicMetadata = dynamicMetadata
        self.failure = failure
    }

    public static func failed(_ failure: Diagnostic) -> CustomOutcome {
        CustomOutcome(allowed: false, failure: failure)
    }
}

public struct HeaderValue: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// What the dry-run policies of one action would have decided, had they been enforced.
public struct DryRunOutcome: Sendable, Hashable {
    public var action: PolicyAction
    public var decision: Decision
    /// The dry-run policy rule that matched, if any.
    public var match: RuleMatch?

    public init(action: PolicyAction, decision: Decision, match: RuleMatch?) {
        self.action = action
        self.decision = decision
        self.match = match
    }
}

/// The result of deciding one request. Deciding never throws: problems become `diagnostics` and a
/// fail-closed decision.
public struct DecisionResponse: Sendable, Hashable {
    public var decision: Decision
    public var reason: DecisionReason
    /// The policy rule that decided; nil when no rule did (`no_allow_policy`, `no_allow_matched`, `not_ready`).
    public var decidedBy: RuleMatch?
    /// AUDIT policy rules that matched: the request should be audited. They never change the decision.
    public var audits: RuleMatches
    /// The CUSTOM checks, dry-run outcomes and diagnostics, which most decisions lack: kept together and nil when
    /// all three are empty, so such a response holds no arrays to copy or release.
    private var extras: Extras?

    private struct Extras: Sendable, Hashable {
        var custom: [CustomCheck]
        var dryRun: [DryRunOutcome]
        var diagnostics: [Diagnostic]

        /// Nil when all are empty (so that equal responses have equal storage).
        static func make(_ custom: [CustomCheck], _ dryRun: [DryRunOutcome], _ diagnostics: [Diagnostic]) -> Extras? {
            custom.isEmpty && dryRun.isEmpty && diagnostics.isEmpty
                ? nil : Extras(custom: custom, dryRun: dryRun, diagnostics: diagnostics)
        }
    }

    /// CUSTOM policies that matched, with their providers' answers.
    public var custom: [CustomCheck] {
        get { extras?.custom ?? [] }
        set { extras = Extras.make(newValue, dryRun, diagnostics) }
    }

    /// What dry-run policies would have done.
    public var dryRun: [DryRunOutcome] {
        get { extras?.dryRun ?? [] }
        set { extras = Extras.make(custom, newValue, diagnostics) }
    }

    public var diagnostics: [Diagnostic] {
        get { extras?.diagnostics ?? [] }
        set { extras = Extras.make(custom, dryRun, newValue) }
    }

    public init(
        decision: Decision,
        reason: DecisionReason,
        decidedBy: RuleMatch? = nil,
        audits: RuleMatches = [],
        custom: [CustomCheck] = [],
        dryRun: [DryRunOutcome] = [],
        diagnostics: [Diagnostic] = []
    ) {
        self.decision = decision
        self.reason = reason
        self.decidedBy = decidedBy
        self.audits = audits
        extras = Extras.make(custom, dryRun, diagnostics)
    }

    /// A response without CUSTOM checks, dry-run outcomes or diagnostics (the common decision), built without
    /// empty arrays.
    public init(decision: Decision, reason: DecisionReason, decidedBy: RuleMatch?, audits: RuleMatches) {
        self.decision = decision
        self.reason = reason
        self.decidedBy = decidedBy
        self.audits = audits
        extras = nil
    }

    public var isAllowed: Bool { decision == .allow }
    public var audited: Bool { !audits.isEmpty }

    /// The answer of the CUSTOM provider that decided, if one did.
    public var customOutcome: CustomOutcome? {
        guard reason == .customDenied || reason == .customFailed else {
            return custom.last { $0.outcome?.allowed == true }?.outcome
        }
        return custom.first { $0.outcome?.allowed != true }?.outcome
    }

    /// A response for when no policy set can be used.
    public static let notReady = DecisionResponse(decision: .deny, reason: .notReady)

    /// The answer to a request that cannot be matched as sent, whatever the policies: denied, with why.
    public static func invalidRequest(_ refusal: String) -> DecisionResponse {
        DecisionResponse(
            decision: .deny, reason: .invalidRequest,
            diagnostics: [Diagnostic(code: "invalid_request", message: refusal)])
    }
}

extension DecisionResponse {
    /// The machine-readable form printed by `warden decide --format json` and written to decision logs.
    public var json: Value {
        var o: [String: Value] = [
            "decision": .string(decision.rawValue),
            "reason": .string(reason.rawValue),
            "audit": .bool(audited),
            "policy": decidedBy.map { .string($0.policy.description) } ?? .null,
            "rule": decidedBy?.rule.map { .int($0) } ?? .null,
            "action": decidedBy.map { .string($0.action.rawValue) } ?? .null,
        ]
        if !audits.isEmpty {
            o["audits"] = .array(audits.map { m in ["policy": .string(m.policy.description), "rule": m.rule.map(Value.int) ?? .null] })
        }
        if !custom.isEmpty {
            o["custom"] = .array(custom.map { c in
                var entry: [String: Value] = [
                    "policy": .string(c.match.policy.description),
                    "rule": c.match.rule.map(Value.int) ?? .null,
                    "provider": .string(c.provider),
                ]
                if let outcome = c.outcome {
                    entry["allowed"] = .bool(outcome.allowed)
                    if let status = outcome.httpStatus { entry["http_status"] = .int(status) }
                    if let failure = outcome.failure { entry["error"] = .string(failure.message) }
                }
                return .object(entry)
            })
        }
        if !dryRun.isEmpty {
            o["dry_run"] = .array(dryRun.map { d in
                [
                    "action": .string(d.action.rawValue),
                    "decision": .string(d.decision.rawValue),
                    "policy": d.match.map { .string($0.policy.description) } ?? .null,
                    "rule": d.match?.rule.map(Value.int) ?? .null,
                ]
            })
        }
        if !diagnostics.isEmpty {
            o["diagnostics"] = .array(diagnostics.map { .string($0.description) })
        }
        return .object(o)
    }
}
