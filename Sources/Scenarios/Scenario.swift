import Documents
import Foundation
import PolicyCore

/// One end-to-end scenario of `conformance/scenarios/`: the files to write, the identities to issue, the
/// components to start (real `warden` processes on 127.0.0.1) and the steps to take against them. The format is
/// documented in `conformance/README.md`; strings may name `${...}` values, resolved when the scenario runs.
public struct Scenario: Sendable {
    public var file: String
    public var name: String
    public var title: String
    /// The report's profiles this scenario counts towards (`peer-authentication`, ...).
    public var profiles: [String]
    public var features: [String]
    public var files: [(path: String, text: String)]
    /// The trust domain of the scenario's CA; nil when the scenario issues no certificates.
    public var trustDomain: String?
    public var identities: [Identity]
    public var components: [Component]
    public var steps: [Step]

    /// A workload identity: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
    public struct Identity: Sendable {
        public var name: String
        public var namespace: String
        public var serviceAccount: String
        /// DNS names (and IP addresses) of its certificate besides the SPIFFE ID.
        public var dnsNames: [String]
    }

    public struct Component: Sendable {
        public enum Kind: String, Sendable, CaseIterable {
            case upstream, server, proxy
            case caServer = "ca_server"
            case agent
        }

        public var kind: Kind
        public var name: String
        /// Every other field as written (strings may hold `${...}`); each kind reads its own.
        public var options: [String: Value]
        public var line: Int

        /// The `warden` subcommand the component runs.
        public var command: String {
            switch kind {
            case .upstream: "upstream"
            case .server: "serve"
            case .proxy: "proxy"
            case .caServer, .agent: "ca"
            }
        }

        public func string(_ key: String) -> String? { options[key]?.stringValue }
    }

    public struct Step: Sendable {
        public var note: String
        public var action: Action
        /// Retry until the expectation holds, for at most this long (a reload, a rotation).
        public var within: Duration?
        public var line: Int
    }

    public enum Action: Sendable {
        case request(Request)
        case check(Check)
        case write(path: String, text: String)
        case remove(path: String)
        case stop(String)
        case start(String)
        case log(of: String, contains: String)
        case decisionLog(of: String, match: Value, expect: Value)
        case rotated(identity: String)
    }

    /// An HTTP request sent with curl.
    public struct Request: Sendable {
        public var to: String
        /// The identity whose certificate the client presents; implies TLS.
        public var identity: String?
        public var tls: Bool
        public var host: String?
        public var method: String
        public var path: String
        public var headers: [(name: String, value: String)]
        public var token: String?
        public var body: String?
        /// A unary gRPC call with an empty message over HTTP/2 (h2 by ALPN over TLS, else prior knowledge): POST,
        /// `content-type: application/grpc`, `te: trailers`.
        public var grpc: Bool
        public var expect: Expectation
    }

    /// An ext_authz `Check` sent over gRPC, as an Envoy sidecar sends it.
    public struct Check: Sendable {
        public var to: String
        /// The source peer: an identity's name, or a SPIFFE ID.
        public var peer: String?
        /// A JWT whose payload goes into the `jwt_authn` metadata, as Envoy's jwt_authn filter puts a verified one.
        public var token: String?
        public var namespace: String?
        public var labels: [String: String]
        public var host: String
        public var method: String
        public var path: String
        public var headers: [(name: String, value: String)]
        public var expect: Expectation
    }

    public struct Expectation: Sendable {
        public var status: Int?
        /// curl's exit codes, any of which a connection that fails may end with (56: the connection was reset;
        /// a TLS handshake the server refuses after it finished on the client's side can also surface as 55 or 35).
        public var exit: [Int]?
        /// Header patterns (`*` matches any run of characters); names are compared without case.
        public var headers: [(name: String, pattern: String)]
        public var absentHeaders: [String]
        /// Trailer patterns (a gRPC call's `grpc-status`), as `headers`.
        public var trailers: [(name: String, pattern: String)]
        public var bodyContains: [String]
        /// What each named upstream saw while the step ran.
        public var upstreams: [(name: String, saw: UpstreamExpectation)]
        /// The identity whose current certificate (the first of its `cert-chain.pem`) the server presented.
        public var certificate: String?
    }

    public enum UpstreamExpectation: Sendable {
        case nothing
        /// `path`: the target (path and query) of the last request it received.
        case requests(count: Int?, path: String?, headers: [(name: String, pattern: String)], absentHeaders: [String])
    }
}

extension Scenario {
    /// The profiles of the conformance report, in report order.
    public static let profiles = [
        "authorization-policy", "peer-authentication", "request-authentication", "ext-authz-grpc", "ext-authz-http",
        "rego", "ca", "management-api",
    ]

    /// The `warden` subcommands the scenario runs.
    public var requiredCommands: Set<String> {
        var commands = Set(components.map(\.command))
        if trustDomain != nil { commands.insert("ca") }
        return commands
    }

    /// Reads a scenario file; every problem is a diagnostic with its place.
    public static func load(path: String) -> (Scenario?, [Diagnostic]) {
        switch DocumentFiles.read(path) {
        case .failure(let error):
            return (nil, [error])
        case .success(let text):
            let parsed = YAMLDocuments.parse(text, file: path)
            if parsed.diagnostics.hasErrors { return (nil, parsed.diagnostics) }
            guard parsed.documents.count == 1, let root = parsed.documents.first else {
                return (nil, [Diagnostic(code: Diagnostic.Code.invalidValue, message: "a scenario file holds one document", span: nil)])
            }
            let decoder = ScenarioDecoder(file: path)
            let scenario = decoder.scenario(root)
            return (decoder.base.hasErrors ? nil : scenario, decoder.base.diagnostics)
        }
    }
}

/// Strict decoding of a scenario document: unknown fields and wrong types are errors with their places.
final class ScenarioDecoder {
    let base = DocumentDecoder()
    let file: String

    init(file: String) { self.file = file }

    static let topFields = ["name", "title", "profiles", "features", "files", "ca", "identities", "components", "steps"]
    static let stepKinds = ["request", "check", "write", "remove", "stop", "start", "log", "decision_log", "rotated"]

    func scenario(_ root: DocumentNode) -> Scenario? {
        guard let fields = base.fields(root, at: .root, known: Self.topFields) else { return nil }
        let defaultName = String(file.split(separator: "/").last ?? "").replacingOccurrences(of: ".yaml", with: "")
        var scenario = Scenario(
            file: file, name: optionalString(fields, "name") ?? defaultName, title: optionalString(fields, "title") ?? defaultName,
            profiles: strings(fields, "profiles"), features: strings(fields, "features"), files: [], trustDomain: nil,
            identities: [], components: [], steps: [])
        if scenario.profiles.isEmpty { missing("profiles", in: fields) }
        for profile in scenario.profiles where !Scenario.profiles.contains(profile) {
            base.invalid("unknown profile `\(profile)`; profiles are \(Scenario.profiles.joined(separator: ", "))", at: fields["profiles"]!, fields.path("profiles"))
        }
        if let node = fields["files"], case .mapping(let entries) = node.content {
            scenario.files = entries.compactMap { entry in
                guard let text = base.string(entry.value, at: fields.path("files") / entry.key) else { return nil }
                return (entry.key, text.value)
            }
        } else if let node = fields["files"] {
            base.mismatch(node, fields.path("files"), expected: "an object")
        }
        if let node = fields["ca"], let ca = base.fields(node, at: fields.path("ca"), known: ["trust_domain"]) {
            scenario.trustDomain = ca["trust_domain"].flatMap { base.string($0, at: ca.path("trust_domain"))?.value } ?? "cluster.local"
        }
        if let node = fields["identities"], case .mapping(let entries) = node.content {
            for entry in entries {
                let path = fields.path("identities") / entry.key
                guard let identity = base.fields(entry.value, at: path, known: ["namespace", "service_account", "dns"]) else { continue }
                scenario.identities.append(Scenario.Identity(
                    name: entry.key, namespace: optionalString(identity, "namespace") ?? "default",
                    serviceAccount: optionalString(identity, "service_account") ?? entry.key,
                    dnsNames: identity.has("dns") ? strings(identity, "dns") : [entry.key, "localhost", "127.0.0.1"]))
            }
        } else if let node = fields["identities"] {
            base.mismatch(node, fields.path("identities"), expected: "an object")
        }
        if let node = fields["components"], let items = base.sequence(node, at: fields.path("components")) {
            scenario.components = items.compactMap { component($0.node, at: $0.path) }
        }
        if let node = fields["steps"], let items = base.sequence(node, at: fields.path("steps")) {
            scenario.steps = items.compactMap { step($0.node, at: $0.path) }
        } else {
            missing("steps", in: fields)
        }
        checkReferences(scenario, fields)
        return scenario
    }

    // MARK: - Components

    func component(_ node: DocumentNode, at path: FieldPath) -> Scenario.Component? {
        guard case .mapping(let entries) = node.content else {
            base.mismatch(node, path, expected: "an object")
            return nil
        }
        // The first key says what the component is (`- proxy: details-proxy`); the others are its options.
        guard let kindEntry = entries.first, let kind = Scenario.Component.Kind(rawValue: kindEntry.key) else {
            let names = Scenario.Component.Kind.allCases.map { "`\($0.rawValue)`" }.joined(separator: ", ")
            base.invalid("a component starts with its kind (\(names)) and its name", at: node, path)
            return nil
        }
        guard let name = base.string(kindEntry.value, at: path / kindEntry.key) else { return nil }
        let known: [String] = switch kind {
        case .upstream: ["status"]
        case .server: ["policies", "config", "args"]
        case .proxy: ["upstream", "upstream_http2", "identity", "policies", "namespace", "labels", "ports", "outbound", "expect_peer", "authz", "args"]
        case .caServer: ["args"]
        case .agent: ["identity", "ca", "ttl", "args"]
        }
        _ = base.fields(node, at: path, known: [kind.rawValue] + known)
        var options: [String: Value] = [:]
        for entry in entries where entry.key != kind.rawValue { options[entry.key] = entry.value.value }
        return Scenario.Component(kind: kind, name: name.value, options: options, line: node.span.line)
    }

    // MARK: - Steps

    func step(_ node: DocumentNode, at path: FieldPath) -> Scenario.Step? {
        guard let fields = base.fields(node, at: path, known: ["note", "within"] + Self.stepKinds + ["expect"]) else { return nil }
        let kinds = Self.stepKinds.filter { fields.has($0) }
        guard kinds.count == 1, let kind = kinds.first, let body = fields[kind] else {
            base.invalid("a step does exactly one of \(Self.stepKinds.map { "`\($0)`" }.joined(separator: ", "))", at: node, path)
            return nil
        }
        let within = fields["within"].flatMap { duration($0, at: fields.path("within")) }
        let expected: Scenario.Expectation? = ["request", "check"].contains(kind)
            ? fields["expect"].flatMap { self.expectation($0, at: fields.path("expect")) } : nil
        if fields.has("expect") && !["request", "check", "decision_log"].contains(kind) {
            base.invalid("only `request`, `check` and `decision_log` steps take `expect`", at: fields["expect"]!, fields.path("expect"))
        }
        let bodyPath = fields.path(kind)
        let action: Scenario.Action?
        switch kind {
        case "request":
            action = request(body, at: bodyPath, expect: expected ?? requireExpect(fields, node, path))
        case "check":
            action = check(body, at: bodyPath, expect: expected ?? requireExpect(fields, node, path))
        case "write":
            guard let write = base.fields(body, at: bodyPath, known: ["path", "text"]) else { return nil }
            guard let file = requiredString(write, "path"), let text = requiredString(write, "text") else { return nil }
            action = .write(path: file, text: text)
        case "remove":
            action = base.string(body, at: bodyPath).map { .remove(path: $0.value) }
        case "stop":
            action = base.string(body, at: bodyPath).map { .stop($0.value) }
        case "start":
            action = base.string(body, at: bodyPath).map { .start($0.value) }
        case "rotated":
            action = base.string(body, at: bodyPath).map { .rotated(identity: $0.value) }
        case "log":
            guard let log = base.fields(body, at: bodyPath, known: ["of", "contains"]) else { return nil }
            guard let of = requiredString(log, "of"), let contains = requiredString(log, "contains") else { return nil }
            action = .log(of: of, contains: contains)
        case "decision_log":
            guard let log = base.fields(body, at: bodyPath, known: ["of", "request"]) else { return nil }
            guard let of = requiredString(log, "of") else { return nil }
            guard let expect = fields["expect"] else {
                base.report(Diagnostic.Code.missingField, "a `decision_log` step needs `expect`", span: node.span, path: path)
                return nil
            }
            action = .decisionLog(of: of, match: log["request"]?.value ?? Value.object([Value: Value]()), expect: expect.value)
        default:
            action = nil
        }
        guard let action else { return nil }
        let note = optionalString(fields, "note") ?? "step \(path.description)"
        return Scenario.Step(note: note, action: action, within: within, line: node.span.line)
    }

    func requireExpect(_ fields: DocumentDecoder.Fields, _ node: DocumentNode, _ path: FieldPath) -> Scenario.Expectation {
        base.report(Diagnostic.Code.missingField, "a `request` or `check` step needs `expect`", span: node.span, path: path)
        return Scenario.Expectation(
            status: nil, exit: nil, headers: [], absentHeaders: [], trailers: [], bodyContains: [], upstreams: [], certificate: nil)
    }

    func request(_ node: DocumentNode, at path: FieldPath, expect: Scenario.Expectation) -> Scenario.Action? {
        let known = ["to", "as", "tls", "host", "method", "path", "headers", "token", "body", "grpc"]
        guard let fields = base.fields(node, at: path, known: known), let to = requiredString(fields, "to") else { return nil }
        let identity = optionalString(fields, "as")
        let tls = fields["tls"].flatMap { base.bool($0, at: fields.path("tls")) } ?? (identity != nil)
        if identity != nil && !tls { base.invalid("a client certificate needs `tls: true`", at: node, path) }
        let grpc = fields["grpc"].flatMap { base.bool($0, at: fields.path("grpc")) } ?? false
        if grpc && (fields["body"] != nil || fields["method"] != nil) {
            base.invalid("a `grpc` call is a POST with an empty message: no `method` or `body`", at: node, path)
        }
        return .request(Scenario.Request(
            to: to, identity: identity, tls: tls, host: optionalString(fields, "host"),
            method: optionalString(fields, "method") ?? (grpc ? "POST" : "GET"), path: optionalString(fields, "path") ?? "/",
            headers: headerList(fields, "headers"), token: optionalString(fields, "token"), body: optionalString(fields, "body"),
            grpc: grpc, expect: expect))
    }

    func check(_ node: DocumentNode, at path: FieldPath, expect: Scenario.Expectation) -> Scenario.Action? {
        let known = ["to", "peer", "token", "namespace", "labels", "host", "method", "path", "headers"]
        guard let fields = base.fields(node, at: path, known: known), let to = requiredString(fields, "to") else { return nil }
        let labels = fields["labels"].flatMap { base.stringMap($0, at: fields.path("labels")) }?.mapValues(\.value) ?? [:]
        return .check(Scenario.Check(
            to: to, peer: optionalString(fields, "peer"), token: optionalString(fields, "token"),
            namespace: optionalString(fields, "namespace"), labels: labels, host: optionalString(fields, "host") ?? "localhost",
            method: optionalString(fields, "method") ?? "GET", path: optionalString(fields, "path") ?? "/",
            headers: headerList(fields, "headers"), expect: expect))
    }

    func expectation(_ node: DocumentNode, at path: FieldPath) -> Scenario.Expectation? {
        let known = ["status", "exit", "headers", "absent_headers", "trailers", "body", "upstream", "certificate"]
        guard let fields = base.fields(node, at: path, known: known) else { return nil }
        var expect = Scenario.Expectation(
            status: int(fields, "status"), exit: ints(fields, "exit"), headers: patterns(fields, "headers"),
            absentHeaders: strings(fields, "absent_headers"), trailers: patterns(fields, "trailers"), bodyContains: [], upstreams: [],
            certificate: optionalString(fields, "certificate"))
        if let body = fields["body"] {
            if case .sequence = body.content { expect.bodyContains = strings(fields, "body") }
            else if let text = base.string(body, at: fields.path("body")) { expect.bodyContains = [text.value] }
        }
        if expect.status != nil && expect.exit != nil {
            base.invalid("expect either `status` or `exit`", at: node, path)
        }
        if let upstream = fields["upstream"], case .mapping(let entries) = upstream.content {
            for entry in entries {
                let entryPath = fields.path("upstream") / entry.key
                if case .scalar(let s) = entry.value.content, s.text == "nothing" {
                    expect.upstreams.append((entry.key, Scenario.UpstreamExpectation.nothing))
                    continue
                }
                guard let saw = base.fields(entry.value, at: entryPath, known: ["count", "path", "headers", "absent_headers"])
                else { continue }
                expect.upstreams.append((entry.key, Scenario.UpstreamExpectation.requests(
                    count: int(saw, "count"), path: optionalString(saw, "path"), headers: patterns(saw, "headers"),
                    absentHeaders: strings(saw, "absent_headers"))))
            }
        } else if let upstream = fields["upstream"] {
            base.mismatch(upstream, fields.path("upstream"), expected: "an object")
        }
        return expect
    }

    // MARK: - References

    func checkReferences(_ scenario: Scenario, _ fields: DocumentDecoder.Fields) {
        let components = Dictionary(scenario.components.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let identities = Set(scenario.identities.map(\.name))
        var seen: Set<String> = []
        for component in scenario.components where !seen.insert(component.name).inserted {
            report("two components are named `\(component.name)`", line: component.line)
        }
        if !scenario.identities.isEmpty && scenario.trustDomain == nil, let node = fields["identities"] {
            base.invalid("identities are issued by the scenario's CA: add `ca: {trust_domain: cluster.local}`", at: node, fields.path("identities"))
        }
        for component in scenario.components {
            func needs(_ key: String, _ kinds: Set<Scenario.Component.Kind>? = nil) {
                guard let name = component.string(key) else {
                    report("a \(component.kind.rawValue) component needs `\(key)`", line: component.line)
                    return
                }
                if let kinds {
                    if components[name].map({ kinds.contains($0.kind) }) != true {
                        report("`\(key): \(name)` names no \(kinds.map(\.rawValue).sorted().joined(separator: " or ")) component", line: component.line)
                    }
                } else if !identities.contains(name) {
                    report("`\(key): \(name)` names no identity", line: component.line)
                }
            }
            switch component.kind {
            case .proxy:
                // A server is a gRPC workload (its Health service), for a proxy with `upstream_http2`.
                needs("upstream", [.upstream, .proxy, .server])
                needs("identity")
                if component.options["outbound"]?.boolValue == true { needs("expect_peer") }
                if let authz = component.string("authz"), components[authz]?.kind != .server {
                    report("`authz: \(authz)` names no server component", line: component.line)
                }
            case .agent:
                needs("identity")
                needs("ca", [.caServer])
            case .caServer:
                if scenario.trustDomain == nil { report("a `ca_server` needs the scenario's `ca`", line: component.line) }
            case .upstream, .server:
                break
            }
        }
        for step in scenario.steps {
            switch step.action {
            case .request(let request):
                if components[request.to] == nil { report("`to: \(request.to)` names no component", line: step.line) }
                if let identity = request.identity, !identities.contains(identity) { report("`as: \(identity)` names no identity", line: step.line) }
                for (name, _) in request.expect.upstreams where components[name]?.kind != .upstream {
                    report("`upstream: \(name)` names no upstream component", line: step.line)
                }
                if let identity = request.expect.certificate {
                    if !identities.contains(identity) { report("`certificate: \(identity)` names no identity", line: step.line) }
                    if !request.tls { report("`certificate` needs a TLS request", line: step.line) }
                }
            case .check(let check):
                if components[check.to]?.kind != .server { report("`to: \(check.to)` names no server component", line: step.line) }
            case .stop(let name), .start(let name), .log(of: let name, contains: _):
                if components[name] == nil { report("`\(name)` names no component", line: step.line) }
            case .decisionLog(of: let name, match: _, expect: _):
                if components[name]?.kind != .server { report("`of: \(name)` names no server component", line: step.line) }
            case .rotated(let identity):
                if !scenario.components.contains(where: { $0.kind == .agent && $0.string("identity") == identity }) {
                    report("`rotated: \(identity)` names no identity an agent renews", line: step.line)
                }
            case .write, .remove:
                break
            }
        }
    }

    // MARK: - Fields

    func report(_ message: String, line: Int) {
        base.report(Diagnostic.Code.invalidValue, message, span: SourceSpan(file: file, line: line, column: 1), path: .root)
    }

    func missing(_ key: String, in fields: DocumentDecoder.Fields) {
        base.report(Diagnostic.Code.missingField, "missing field `\(key)`", span: fields.node.span, path: fields.path)
    }

    func optionalString(_ fields: DocumentDecoder.Fields, _ key: String) -> String? {
        fields[key].flatMap { base.string($0, at: fields.path(key))?.value }
    }

    func requiredString(_ fields: DocumentDecoder.Fields, _ key: String) -> String? {
        guard fields.has(key) else {
            missing(key, in: fields)
            return nil
        }
        return optionalString(fields, key)
    }

    func strings(_ fields: DocumentDecoder.Fields, _ key: String) -> [String] {
        fields[key].flatMap { base.strings($0, at: fields.path(key)) }?.map(\.value) ?? []
    }

    /// An integer, or a list of them.
    func ints(_ fields: DocumentDecoder.Fields, _ key: String) -> [Int]? {
        guard let node = fields[key] else { return nil }
        guard case .sequence(let items) = node.content else { return int(fields, key).map { [$0] } }
        var out: [Int] = []
        for (index, item) in items.enumerated() {
            guard case .scalar(let s) = item.content, s.kind == .int, let value = Int(s.text) else {
                base.mismatch(item, fields.path(key) / index, expected: "an integer")
                return nil
            }
            out.append(value)
        }
        return out
    }

    func int(_ fields: DocumentDecoder.Fields, _ key: String) -> Int? {
        guard let node = fields[key] else { return nil }
        guard case .scalar(let s) = node.content, s.kind == .int, let value = Int(s.text) else {
            base.mismatch(node, fields.path(key), expected: "an integer")
            return nil
        }
        return value
    }

    /// `{name: value}` pairs in written order.
    func headerList(_ fields: DocumentDecoder.Fields, _ key: String) -> [(name: String, value: String)] {
        guard let node = fields[key] else { return [] }
        guard case .mapping(let entries) = node.content else {
            base.mismatch(node, fields.path(key), expected: "an object")
            return []
        }
        return entries.compactMap { entry in
            base.string(entry.value, at: fields.path(key) / entry.key).map { (entry.key, $0.value) }
        }
    }

    func patterns(_ fields: DocumentDecoder.Fields, _ key: String) -> [(name: String, pattern: String)] {
        headerList(fields, key).map { (name: $0.name, pattern: $0.value) }
    }

    /// `500ms`, `1s`, `1.5s`, `2m`.
    func duration(_ node: DocumentNode, at path: FieldPath) -> Duration? {
        guard let text = base.string(node, at: path)?.value, let duration = Self.parseDuration(text) else {
            base.invalid("a duration is a number with `ms`, `s` or `m`, such as `500ms` or `2s`", at: node, path)
            return nil
        }
        return duration
    }

    static func parseDuration(_ text: String) -> Duration? { PolicyCore.parseDuration(text) }
}
