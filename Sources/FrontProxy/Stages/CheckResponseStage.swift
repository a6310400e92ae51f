import ExtAuthz
import NIOHTTP1
import Networking
import PolicyCore
import SwiftProtobuf

/// How a check failed to produce an answer. Every kind fails closed the same way (`--failure-status`, never
/// forwarded); the kind only names the cause in the access log and the metrics.
public enum CheckFailure: String, Error, Sendable, Hashable, CaseIterable {
    /// No answer within `--check-timeout`.
    case timeout
    /// No connection to the authorization server (refused, reset, not yet connected).
    case unavailable
    /// The server answered the call with a gRPC status other than OK.
    case error
    /// The answer could not be decoded, or asks for what no request may carry (a header name or value HTTP forbids).
    case malformed
}

/// One header change the check asks for.
public struct HeaderMutation: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        /// Replace every value, or add.
        case set
        /// Add another value.
        case append
        case addIfAbsent
        case overwriteIfExists
    }

    public var name: String
    public var value: String
    public var action: Action

    public init(_ name: String, _ value: String, _ action: Action) {
        self.name = name
        self.value = value
        self.action = action
    }

    public func apply(to headers: inout HTTPHeaders) {
        switch action {
        case .set: headers.replaceOrAdd(name: name, value: value)
        case .append: headers.add(name: name, value: value)
        case .addIfAbsent: if !headers.contains(name: name) { headers.add(name: name, value: value) }
        case .overwriteIfExists: if headers.contains(name: name) { headers.replaceOrAdd(name: name, value: value) }
        }
    }
}

/// What the check decided, ready to apply.
public enum CheckVerdict: Sendable, Hashable {
    public struct Allowed: Sendable, Hashable {
        public var requestHeaders: [HeaderMutation]
        public var requestHeadersToRemove: [String]
        public var queryParametersToSet: [(name: String, value: String)]
        public var queryParametersToRemove: [String]
        public var responseHeaders: [HeaderMutation]

        public init(
            requestHeaders: [HeaderMutation] = [], requestHeadersToRemove: [String] = [],
            queryParametersToSet: [(name: String, value: String)] = [], queryParametersToRemove: [String] = [],
            responseHeaders: [HeaderMutation] = []
        ) {
            self.requestHeaders = requestHeaders
            self.requestHeadersToRemove = requestHeadersToRemove
            self.queryParametersToSet = queryParametersToSet
            self.queryParametersToRemove = queryParametersToRemove
            self.responseHeaders = responseHeaders
        }

        public static func == (a: Allowed, b: Allowed) -> Bool {
            a.requestHeaders == b.requestHeaders && a.requestHeadersToRemove == b.requestHeadersToRemove
                && a.queryParametersToSet.elementsEqual(b.queryParametersToSet, by: { $0 == $1 })
                && a.queryParametersToRemove == b.queryParametersToRemove && a.responseHeaders == b.responseHeaders
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(requestHeaders)
            hasher.combine(requestHeadersToRemove)
        }
    }

    case allow(Allowed)
    /// The server denied: its status, headers and body.
    case deny(LocalResponse)
    /// No usable answer: fail closed with `--failure-status`.
    case failed(CheckFailure, LocalResponse)

    public var isAllowed: Bool {
        if case .allow = self { return true }
        return false
    }
}

/// The stage after the check: an answer or a failure becomes a verdict. A denial is the server's response as it
/// gave it (status, default 403; headers; body); an allowed request gets the header and query changes; any failure,
/// and an answer that asks for a header HTTP forbids, fails closed with `failureStatus`.
public enum CheckResponseStage {
    public static func verdict(
        _ result: Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>, failureStatus: Int
    ) -> CheckVerdict {
        let response: Envoy_Service_Auth_V3_CheckResponse
        switch result {
        case .failure(let failure): return .failed(failure, failed(failure, status: failureStatus))
        case .success(let answer): response = answer
        }
        guard response.status.code == ExtAuthzDecision.RPCCode.ok else {
            let denied = response.deniedResponse
            let code = denied.hasStatus ? denied.status.code.rawValue : 0
            var local = LocalResponse(status: (200...599).contains(code) ? code : 403, body: denied.body)
            for option in denied.headers {
                guard let mutation = mutation(option, defaultAction: .set) else {
                    return .failed(.malformed, failed(.malformed, status: failureStatus))
                }
                local.headers.removeAll { $0.name.lowercased() == mutation.name.lowercased() && mutation.action == .set }
                local.headers.append(.init(mutation.name, mutation.value))
            }
            return .deny(local)
        }
        let ok = response.okResponse
        var allowed = CheckVerdict.Allowed()
        for option in ok.headers {
            guard let mutation = mutation(option, defaultAction: .set) else {
                return .failed(.malformed, failed(.malformed, status: failureStatus))
            }
            allowed.requestHeaders.append(mutation)
        }
        for option in ok.responseHeadersToAdd {
            guard let mutation = mutation(option, defaultAction: .append) else {
                return .failed(.malformed, failed(.malformed, status: failureStatus))
            }
            allowed.responseHeaders.append(mutation)
        }
        for name in ok.headersToRemove {
            guard HTTPResponse.isFieldName(name) else { return .failed(.malformed, failed(.malformed, status: failureStatus)) }
            // Envoy never removes the authority or a pseudo-header.
            if name.lowercased() != "host" { allowed.requestHeadersToRemove.append(name.lowercased()) }
        }
        for parameter in ok.queryParametersToSet {
            guard isQueryText(parameter.key), !parameter.key.isEmpty, isQueryText(parameter.value) else {
                return .failed(.malformed, failed(.malformed, status: failureStatus))
            }
            allowed.queryParametersToSet.append((parameter.key, parameter.value))
        }
        allowed.queryParametersToRemove = ok.queryParametersToRemove
        return .allow(allowed)
    }

    /// Applies an allowed check's changes to the request about to be forwarded.
    public static func apply(_ allowed: CheckVerdict.Allowed, to request: inout ProxiedRequest) {
        for name in allowed.requestHeadersToRemove { request.headers.remove(name: name) }
        for mutation in allowed.requestHeaders { mutation.apply(to: &request.headers) }
        if !allowed.queryParametersToRemove.isEmpty || !allowed.queryParametersToSet.isEmpty {
            var target = RequestAuthenticationStage.removingQueryParameters(
                allowed.queryParametersToRemove + allowed.queryParametersToSet.map(\.name), from: request.target)
            for (name, value) in allowed.queryParametersToSet {
                target += (target.contains("?") ? "&" : "?") + name + "=" + value
            }
            request.target = target
        }
    }

    /// The answer for a failed check.
    static func failed(_ failure: CheckFailure, status: Int) -> LocalResponse {
        .text(status, "access denied: the authorization check failed")
    }

    /// A header option as a mutation; nil when its name or value could not be sent (CR, LF, NUL, a bad name).
    /// `append` (deprecated, when present) wins over `append_action`, as in Envoy; `defaultAction` is the meaning of
    /// neither being set, which differs between request and response headers in ext_authz.
    static func mutation(_ option: Envoy_Config_Core_V3_HeaderValueOption, defaultAction: HeaderMutation.Action) -> HeaderMutation? {
        let name = option.header.key, value = option.header.value
        guard HTTPResponse.isFieldName(name), HTTPResponse.isFieldValue(value) else { return nil }
        let action: HeaderMutation.Action
        if option.hasAppend {
            action = option.append.value ? .append : .set
        } else {
            switch option.appendAction {
            case .appendIfExistsOrAdd: action = defaultAction
            case .addIfAbsent: action = .addIfAbsent
            case .overwriteIfExistsOrAdd: action = .set
            case .overwriteIfExists: action = .overwriteIfExists
            case .UNRECOGNIZED: return nil
            }
        }
        return HeaderMutation(name.lowercased(), value, action)
    }

    static func isQueryText(_ text: String) -> Bool {
        !text.utf8.contains { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "#") }
    }
}
