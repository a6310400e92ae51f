import PolicyCore
import Rego

/// A CUSTOM provider that evaluates a Rego rule, as OPA-Envoy does: the rule at `path` (default
/// `envoy/authz/allow`, that is `data.envoy.authz.allow`) receives OPA-Envoy's input document and returns
/// `true`/`false` or a decision object (see `OPAEnvoyDecision`). An undefined rule, an evaluation error or a
/// malformed decision fails closed.
public struct RegoProvider: CustomProvider {
    public static let defaultPath = "envoy/authz/allow"

    public let name: String
    /// The rule's path below `data`, slash-separated.
    public let path: String
    private let query: Result<RegoQuery, Diagnostic>

    public init(name: String, path: String = Self.defaultPath, policies: RegoPolicySet) {
        self.name = name
        self.path = path
        let parts = Self.pathParts(path)
        do {
            query = .success(try policies.prepare(path: parts))
        } catch {
            query = .failure(error.diagnostics.first ?? Diagnostic(
                code: "rego_compile_error", message: "cannot query `\(path)` for provider `\(name)`"))
        }
    }

    public func check(_ request: AuthzRequest) -> CustomOutcome {
        let prepared: RegoQuery
        switch query {
        case .failure(let problem): return .failed(problem)
        case .success(let q): prepared = q
        }
        let input = request.providerInput ?? ProviderInput.document(for: request)
        switch prepared.evaluateValue(input: input) {
        case .value(let decision):
            return OPAEnvoyDecision.decode(decision)
        case .undefined:
            return .failed(Diagnostic(
                code: "undefined_decision",
                message: "provider `\(name)`: the rule `data.\(Self.dotted(path))` is undefined for this request"))
        case .error(let problem):
            return .failed(problem)
        }
    }

    /// `envoy/authz/allow`, `envoy.authz.allow` and `data.envoy.authz.allow` all name the same rule.
    public static func pathParts(_ path: String) -> [String] {
        var parts = path.split(whereSeparator: { $0 == "/" || $0 == "." }).map(String.init)
        if parts.first == "data" { parts.removeFirst() }
        return parts
    }

    static func dotted(_ path: String) -> String { pathParts(path).joined(separator: ".") }
}

/// OPA-Envoy's input document rebuilt from a request's attributes, for requests that did not come with one
/// (`warden decide`, `warden replay`): the same keys a check from Envoy would have, for what the attributes hold.
public enum ProviderInput {
    public static func document(for request: AuthzRequest) -> Value {
        var http: [String: Value] = [:]
        if let method = request.http.method { http["method"] = .string(method) }
        if let host = request.http.host { http["host"] = .string(host) }
        let path = request.http.path ?? "/"
        let target = request.http.query.map { path + "?" + $0 } ?? path
        http["path"] = .string(target)
        var headers: [String: Value] = [:]
        for (name, value) in request.http.headers { headers[name] = .string(value) }
        http["headers"] = .object(headers)

        var source: [String: Value] = [:]
        if let principal = request.source.principal {
            source["principal"] = .string(request.source.identity?.uri ?? principal)
        }
        if let ip = request.source.ip { source["address"] = ["socketAddress": ["address": .string(ip.description)]] }
        var destination: [String: Value] = [:]
        if let ip = request.destination.ip {
            var socket: [String: Value] = ["address": .string(ip.description)]
            if let port = request.destination.port { socket["portValue"] = .int(port) }
            destination["address"] = ["socketAddress": .object(socket)]
        }
        if !request.destination.labels.isEmpty { destination["labels"] = .object(request.destination.labels.mapValues(Value.string)) }

        var attributes: [String: Value] = [
            "source": .object(source), "destination": .object(destination), "request": ["http": .object(http)],
        ]
        if let sni = request.connectionSNI { attributes["tlsSession"] = ["sni": .string(sni)] }
        if let auth = request.auth {
            attributes["metadataContext"] = ["filterMetadata": ["envoy.filters.http.jwt_authn": ["verified_jwt": auth.claims]]]
        }
        return [
            "attributes": .object(attributes),
            "parsed_path": parsedPath(path),
            "parsed_query": parsedQuery(request.http.query),
            "parsed_body": .null,
            "truncated_body": false,
            "version": ["ext_authz": "v3", "encoding": "protojson"],
        ]
    }

    static func parsedPath(_ path: String) -> Value {
        var trimmed = Substring(path)
        while trimmed.first == "/" { trimmed = trimmed.dropFirst() }
        return .array(trimmed.split(separator: "/", omittingEmptySubsequences: false).map { .string(decode(String($0), plus: false)) })
    }

    static func parsedQuery(_ query: String?) -> Value {
        var out: [String: [Value]] = [:]
        for pair in (query ?? "").split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            out[decode(String(parts[0]), plus: true), default: []].append(.string(parts.count > 1 ? decode(String(parts[1]), plus: true) : ""))
        }
        return .object(out.mapValues(Value.array))
    }

    static func decode(_ text: String, plus: Bool) -> String {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 65...70: c - 55
            case 97...102: c - 87
            default: nil
            }
        }
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(plus && bytes[i] == UInt8(ascii: "+") ? UInt8(ascii: " ") : bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
