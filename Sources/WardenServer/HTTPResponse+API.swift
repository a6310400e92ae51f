import Networking
import PolicyCore

extension HTTPResponse {
    public static func json(_ status: Int, _ value: Value, headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(
            status: status, headers: [("content-type", "application/json")] + headers,
            body: Array((JSONWriter.string(value) + "\n").utf8))
    }

    public static func text(_ status: Int, _ text: String, headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("content-type", "text/plain; charset=utf-8")] + headers, body: Array(text.utf8))
    }

    /// An error in OPA's REST API shape: `{"code": ..., "message": ..., "errors": [...]}`.
    public static func error(
        _ status: Int, code: String, message: String, errors: [Diagnostic] = [], headers: [(name: String, value: String)] = []
    ) -> HTTPResponse {
        var object: [String: Value] = ["code": .string(code), "message": .string(message)]
        if !errors.isEmpty { object["errors"] = .array(errors.map(\.apiJSON)) }
        return json(status, .object(object), headers: headers)
    }

    /// A request refused before it was whole, in OPA's error shape.
    public static func api(_ rejection: HTTPRejection) -> HTTPResponse {
        switch rejection {
        case .bodyTooLarge:
            .error(413, code: "request_too_large", message: rejection.message)
        case .malformed:
            .error(400, code: "invalid_parameter", message: rejection.message)
        case .overloaded:
            .error(503, code: "unavailable", message: rejection.message, headers: [("retry-after", "1")])
        }
    }
}

extension Diagnostic {
    /// OPA's error form: `{"code", "message", "location": {"file", "row", "col"}}`, with `"severity"` for a
    /// warning or a note.
    public var apiJSON: Value {
        var o: [String: Value] = ["code": .string(code), "message": .string(message)]
        if severity != .error { o["severity"] = .string(severity.rawValue) }
        if let span {
            o["location"] = ["file": .string(span.file), "row": .int(span.line), "col": .int(span.column)]
        }
        if let path, !path.isEmpty { o["path"] = .string(path.description) }
        return .object(o)
    }
}
