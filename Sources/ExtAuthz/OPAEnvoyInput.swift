import Foundation
import PolicyCore
import SwiftProtobuf

/// The `input` document OPA-Envoy gives a Rego policy for a check, so policies written for OPA-Envoy run
/// unchanged: the `CheckRequest` in protobuf's JSON mapping (`input.attributes.request.http.headers`,
/// `input.attributes.source.address.socketAddress.address`, ...), plus `parsed_path`, `parsed_query`,
/// `parsed_body`, `truncated_body` and `version`.
///
/// One difference, on purpose: `attributes.request.http.path` and `parsed_path` carry the normalized path (see
/// `PathNormalizer`), the same path AuthorizationPolicies match, so a Rego rule on `/admin` cannot be bypassed
/// with `//admin`.
public enum OPAEnvoyInput {
    public static let version: Value = ["ext_authz": "v3", "encoding": "protojson"]

    /// The document for a request given as attributes: that of the `CheckRequest` Envoy would have sent for it.
    public static func document(forAttributesOf request: AuthzRequest) -> Value {
        document(for: Envoy_Service_Auth_V3_CheckRequest(attributes: request), normalizedPath: nil)
    }

    public static func document(for check: Envoy_Service_Auth_V3_CheckRequest, normalizedPath: String?) -> Value {
        var input: [Value: Value] = [:]
        if let json = try? check.jsonString(), case .object(let members)? = try? JSONReader.parse(json) {
            input = members
        }
        let http = check.attributes.request.http
        let target = http.path.isEmpty ? http.headers[":path"] ?? "" : http.path
        let (rawPath, query) = AuthzRequest.HTTPAttributes.split(target: target)
        let path = normalizedPath ?? rawPath
        if let normalizedPath, !http.path.isEmpty {
            let full = normalizedPath + (query.map { "?" + $0 } ?? "")
            input = setting(input, ["attributes", "request", "http", "path"], to: .string(full))
        }
        input[.string("version")] = version
        input[.string("parsed_path")] = parsedPath(path)
        input[.string("parsed_query")] = parsedQuery(query ?? (http.query.isEmpty ? nil : http.query))
        let (body, truncated) = parsedBody(http)
        input[.string("parsed_body")] = body
        input[.string("truncated_body")] = .bool(truncated)
        return .object(input)
    }

    /// The path's segments, percent-decoded, without the leading slashes: `/a/b` → `["a", "b"]`, `/` → `[""]`.
    public static func parsedPath(_ path: String) -> Value {
        var trimmed = Substring(path)
        while trimmed.first == "/" { trimmed = trimmed.dropFirst() }
        let decoded = percentDecoded(trimmed, plusAsSpace: false)
        return .array(decoded.split(separator: "/", omittingEmptySubsequences: false).map { .string(String($0)) })
    }

    /// Each query parameter with the list of its values, decoded as HTML forms are (`+` is a space).
    public static func parsedQuery(_ query: String?) -> Value {
        var out: [String: [Value]] = [:]
        for pair in (query ?? "").split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = percentDecoded(parts[0], plusAsSpace: true)
            let value = parts.count > 1 ? percentDecoded(parts[1], plusAsSpace: true) : ""
            out[key, default: []].append(.string(value))
        }
        return .object(out.mapValues(Value.array))
    }

    /// A JSON body, when the request says it is JSON and Envoy sent all of it; truncated when Envoy sent less
    /// than `content-length` (its `max_request_bytes`).
    public static func parsedBody(_ http: Envoy_Service_Auth_V3_AttributeContext.HttpRequest) -> (Value, Bool) {
        guard let contentType = http.headers["content-type"], contentType.contains("application/json") else {
            return (.null, false)
        }
        let bytes = http.body.isEmpty ? Array(http.rawBody) : Array(http.body.utf8)
        guard !bytes.isEmpty else { return (.null, false) }
        if let length = http.headers["content-length"].flatMap(Int.init), length > bytes.count { return (.null, true) }
        return ((try? JSONReader.parse(bytes)) ?? .null, false)
    }

    static func percentDecoded(_ text: Substring, plusAsSpace: Bool) -> String {
        guard text.contains("%") || (plusAsSpace && text.contains("+")) else { return String(text) }
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "%"), i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(plusAsSpace && c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func setting(_ object: [Value: Value], _ path: ArraySlice<String>, to value: Value) -> [Value: Value] {
        guard let first = path.first else { return object }
        var copy = object
        if path.count == 1 {
            copy[.string(first)] = value
        } else {
            let inner = copy[.string(first)]?.objectValue ?? [:]
            copy[.string(first)] = .object(setting(inner, path.dropFirst(), to: value))
        }
        return copy
    }

    private static func setting(_ object: [Value: Value], _ path: [String], to value: Value) -> [Value: Value] {
        setting(object, path[...], to: value)
    }
}
