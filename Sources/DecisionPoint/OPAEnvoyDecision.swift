import PolicyCore

/// Reads what a CUSTOM provider's rule evaluated to, in OPA-Envoy's decision format, into a typed
/// `CustomOutcome` once: `true`/`false`, or an object with `allowed` (required) and optionally `headers`,
/// `response_headers_to_add`, `request_headers_to_remove`, `body`, `http_status` and `dynamic_metadata`.
/// Anything else is an error, and the check fails closed.
public enum OPAEnvoyDecision {
    public static let errorCode = "invalid_decision"

    public static func decode(_ decision: Value) -> CustomOutcome {
        do {
            return try outcome(decision)
        } catch {
            return .failed(error)
        }
    }

    static func outcome(_ decision: Value) throws(Diagnostic) -> CustomOutcome {
        switch decision {
        case .bool(let allowed):
            return CustomOutcome(allowed: allowed)
        case .object:
            break
        default:
            throw problem("the decision must be a boolean or an object, found \(decision.typeName)")
        }
        guard let allowedValue = decision["allowed"] else { throw problem("the decision object has no `allowed` key") }
        guard case .bool(let allowed) = allowedValue else {
            throw problem("`allowed` must be a boolean, found \(allowedValue.typeName)")
        }
        var outcome = CustomOutcome(allowed: allowed)
        if let headers = decision["headers"] { outcome.headers = try self.headers(headers, field: "headers") }
        if let headers = decision["response_headers_to_add"] {
            outcome.responseHeadersToAdd = try self.headers(headers, field: "response_headers_to_add")
        }
        if let names = decision["request_headers_to_remove"] {
            guard case .array(let items) = names else {
                throw problem("`request_headers_to_remove` must be an array of strings, found \(names.typeName)")
            }
            outcome.requestHeadersToRemove = try items.map { item throws(Diagnostic) in
                guard let s = item.stringValue else {
                    throw problem("`request_headers_to_remove` must hold strings, found \(item.typeName)")
                }
                return s
            }
        }
        if let body = decision["body"] {
            guard let text = body.stringValue else { throw problem("`body` must be a string, found \(body.typeName)") }
            outcome.body = text
        }
        if let status = decision["http_status"] {
            guard let code = status.numberValue?.intValue else {
                throw problem("`http_status` must be an integer, found \(status)")
            }
            guard knownStatuses.contains(code) else { throw problem("invalid HTTP status code `\(code)`") }
            outcome.httpStatus = code
        }
        if let metadata = decision["dynamic_metadata"] {
            guard case .object = metadata else {
                throw problem("`dynamic_metadata` must be an object, found \(metadata.typeName)")
            }
            outcome.dynamicMetadata = metadata
        }
        return outcome
    }

    /// An object of names to a string or an array of strings, or an array of such objects.
    static func headers(_ value: Value, field: String) throws(Diagnostic) -> [HeaderValue] {
        var out: [HeaderValue] = []
        func add(_ object: Value) throws(Diagnostic) {
            guard case .object(let members) = object else {
                throw problem("`\(field)` must be an object, found \(object.typeName)")
            }
            for (key, value) in members.sorted(by: { $0.key < $1.key }) {
                guard let name = key.stringValue else { throw problem("`\(field)` names must be strings") }
                switch value {
                case .string(let s):
                    out.append(HeaderValue(name, s))
                case .array(let items):
                    for item in items {
                        guard let s = item.stringValue else {
                            throw problem("invalid value type \(item.typeName) for header `\(name)` in `\(field)`")
                        }
                        out.append(HeaderValue(name, s))
                    }
                default:
                    throw problem("invalid value type \(value.typeName) for header `\(name)` in `\(field)`")
                }
            }
        }
        if case .array(let objects) = value {
            for object in objects { try add(object) }
        } else {
            try add(value)
        }
        return out
    }

    static func problem(_ message: String) -> Diagnostic {
        Diagnostic(code: errorCode, message: message)
    }

    /// The statuses Envoy's `envoy.type.v3.StatusCode` can carry.
    static let knownStatuses: Set<Int> = [
        100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401,
        402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426,
        428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
    ]
}
