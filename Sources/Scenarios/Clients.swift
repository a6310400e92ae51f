import ExtAuthz
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import JOSE
import PolicyCore

/// What one curl request got.
public struct CurlResult: Sendable {
    public var exitCode: Int32
    public var status: Int
    public var headers: [(name: String, value: String)]
    /// The fields curl wrote after the response's body (HTTP/2 trailers).
    public var trailers: [(name: String, value: String)]
    public var body: String
    public var error: String
    /// Set when the step's expectation did not hold.
    public var failure: String?
    /// The first certificate the server presented (PEM), for TLS requests.
    public var serverCertificate: String?

    /// `200`, or `exit 56` for a connection that failed.
    public var summary: String { exitCode == 0 ? String(status) : "exit \(exitCode) (\(error.trimmingCharacters(in: .whitespacesAndNewlines)))" }
}

extension ScenarioRun {
    // MARK: - curl

    /// The curl arguments for a request step, and the URL, resolved.
    public func curlArguments(_ request: Scenario.Request) throws -> [String] {
        guard let target = component(request.to) else { throw ScenarioError("no component `\(request.to)`") }
        let portKey = target.kind == .server ? (Self.isManagementPath(request.path) ? "admin_port" : "http_port") : "port"
        guard let port = port(request.to, portKey) else { throw ScenarioError("`\(request.to)` has no port") }
        let host = try request.host.map(resolve) ?? defaultHost(target)
        var arguments: [String] = []
        if host != "127.0.0.1" { arguments += ["--resolve", "\(host):\(port):127.0.0.1"] }
        if request.tls {
            arguments += ["--cacert", try value("ca.root")]
            if let identity = request.identity {
                arguments += ["--cert", try value("\(identity).cert"), "--key", try value("\(identity).key")]
            }
        }
        switch request.method {
        case "GET": break
        case "HEAD": arguments.append("--head")
        default: arguments += ["-X", request.method]
        }
        for (name, value) in request.headers { arguments += ["-H", "\(name): \(try resolve(value))"] }
        if let token = request.token { arguments += ["-H", "Authorization: Bearer \(try resolve(token))"] }
        if let body = request.body { arguments += ["--data-binary", try resolve(body)] }
        if request.grpc {
            arguments += ["-H", "content-type: application/grpc", "-H", "te: trailers", "--data-binary", "@" + grpcEmptyMessagePath]
            arguments.append(request.tls ? "--http2" : "--http2-prior-knowledge")
        }
        let path = try resolve(request.path)
        // The path as written: curl would otherwise resolve dot segments itself.
        if path.contains("/.") { arguments.append("--path-as-is") }
        // An upgrade (WebSocket) exists only in HTTP/1.1: curl would otherwise offer h2 and drop the fields.
        if request.headers.contains(where: { $0.name.lowercased() == "upgrade" }) { arguments.append("--http1.1") }
        arguments.append("\(request.tls ? "https" : "http")://\(host):\(port)\(path)")
        return arguments
    }

    /// Whether a server serves `path` on its management listener (`/v1/policies`, `/v1/status`, `/metrics`) rather
    /// than on its data plane.
    static func isManagementPath(_ path: String) -> Bool {
        let bare = path.prefix { $0 != "?" }
        return bare == "/v1/status" || bare == "/metrics" || bare == "/v1/policies" || bare.hasPrefix("/v1/policies/")
    }

    /// A proxy is called by the first DNS name of its identity (Bookinfo's `details`), resolved to 127.0.0.1, so
    /// that curl verifies its certificate as it would any server's; anything else by its address.
    func defaultHost(_ target: Scenario.Component) -> String {
        guard target.kind == .proxy, let identity = scenario.identities.first(where: { $0.name == target.string("identity") }),
              let name = identity.dnsNames.first(where: { !Self.isIPAddress($0) }) else { return "127.0.0.1" }
        return name
    }

    static func isIPAddress(_ text: String) -> Bool {
        text.contains(":") || (!text.isEmpty && text.allSatisfy { $0.isNumber || $0 == "." })
    }

    /// Sends a request step with curl and compares what came back (and what the upstreams saw) with its
    /// expectation.
    public func send(_ request: Scenario.Request) async throws -> CurlResult {
        guard let curl = Program.find("curl") else { throw ScenarioError("`curl` is not installed (Debian's `curl`)") }
        let before = Dictionary(request.expect.upstreams.map { ($0.name, upstreamRecords($0.name).count) }, uniquingKeysWith: { a, _ in a })
        let headersFile = directory + "/logs/curl-headers"
        let bodyFile = directory + "/logs/curl-body"
        let output = try await Program.run(
            curl, ["-sS", "-o", bodyFile, "-D", headersFile, "-w", request.tls ? "%{http_code}\n%{certs}" : "%{http_code}",
                   "--max-time", "10"] + (try curlArguments(request)),
            timeout: .seconds(20))
        let written = output.standardOutput.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        let (headers, trailers) = Self.lastResponseFields(headersFile.contentsIfReadable ?? "")
        var result = CurlResult(
            exitCode: output.status, status: Int(written.first ?? "") ?? 0, headers: headers, trailers: trailers,
            body: bodyFile.contentsIfReadable ?? "", error: output.standardError)
        result.serverCertificate = written.count > 1 ? Self.firstPEMBlock(String(written[1])) : nil
        try? FileManager.default.removeItem(atPath: headersFile)
        try? FileManager.default.removeItem(atPath: bodyFile)
        result.failure = try compare(result, request.expect, upstreamsBefore: before)
        return result
    }

    func compare(_ result: CurlResult, _ expect: Scenario.Expectation, upstreamsBefore: [String: Int]) throws -> String? {
        if let exits = expect.exit {
            let wanted = exits.map(String.init).joined(separator: " or ")
            return exits.contains(Int(result.exitCode)) ? nil : "expected curl to fail with exit \(wanted), got \(result.summary)"
        }
        guard result.exitCode == 0 else { return "curl failed: \(result.summary)" }
        var problems: [String] = []
        if let status = expect.status, status != result.status {
            problems.append("expected status \(status), got \(result.status)" + (result.body.isEmpty ? "" : ": \(result.body.prefix(300))"))
        }
        problems += try headerProblems(result.headers, expect.headers, absent: expect.absentHeaders, what: "the response")
        problems += try headerProblems(result.trailers, expect.trailers, absent: [], what: "the trailer section")
        for text in expect.bodyContains {
            let wanted = try resolve(text)
            if !result.body.contains(wanted) { problems.append("the body does not contain `\(wanted)`: \(result.body.prefix(300))") }
        }
        if let identity = expect.certificate {
            let current = try value("\(identity).cert").contentsIfReadable.flatMap(Self.firstPEMBlock)
            if current == nil || current != result.serverCertificate {
                problems.append("the server did not present the current certificate of `\(identity)`")
            }
        }
        for (name, saw) in expect.upstreams {
            let records = Array(upstreamRecords(name).dropFirst(upstreamsBefore[name] ?? 0))
            switch saw {
            case .nothing:
                if !records.isEmpty { problems.append("`\(name)` received \(records.count) request(s), expected none") }
            case .requests(let count, let path, let headers, let absent):
                if let count, records.count != count {
                    problems.append("`\(name)` received \(records.count) request(s), expected \(count)")
                } else if records.isEmpty {
                    problems.append("`\(name)` received nothing")
                }
                if let path, let last = records.last, last["path"]?.stringValue != path {
                    problems.append("`\(name)` received `\(last["path"]?.stringValue ?? "")`, expected `\(path)`")
                }
                if let last = records.last {
                    var received: [(name: String, value: String)] = []
                    for (key, values) in last["headers"]?.objectValue ?? [:] {
                        for value in values.arrayValue ?? [] {
                            if let name = key.stringValue, let text = value.stringValue { received.append((name, text)) }
                        }
                    }
                    problems += try headerProblems(received, headers, absent: absent, what: "`\(name)`'s request")
                }
            }
        }
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }

    /// Every value of each named header must match its pattern (a forged copy beside the real one fails).
    func headerProblems(_ headers: [(name: String, value: String)], _ patterns: [(name: String, pattern: String)],
                        absent: [String], what: String) throws -> [String] {
        var problems: [String] = []
        for (name, pattern) in patterns {
            let wanted = try resolve(pattern)
            let values = headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
            if values.isEmpty || !values.allSatisfy({ ValuePattern.glob(wanted, $0) }) {
                problems.append(values.isEmpty ? "\(what) has no `\(name)` header" : "\(what) has `\(name): \(values.joined(separator: ", "))`, expected `\(wanted)`")
            }
        }
        for name in absent {
            if let found = headers.first(where: { $0.name.caseInsensitiveCompare(name) == .orderedSame }) {
                problems.append("\(what) has `\(found.name): \(found.value)`, expected no such header")
            }
        }
        return problems
    }

    /// The base64 text of the first PEM block in `text`, without line breaks.
    static func firstPEMBlock(_ text: String) -> String? {
        guard let begin = text.range(of: "-----BEGIN CERTIFICATE-----"),
              let end = text.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<text.endIndex) else { return nil }
        return text[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
    }

    /// The header fields of the last response curl wrote with `-D` (after any `100 Continue`), and the trailer
    /// fields written after it.
    static func lastResponseFields(_ text: String) -> (headers: [(name: String, value: String)], trailers: [(name: String, value: String)]) {
        let blocks = text.replacingOccurrences(of: "\r", with: "").components(separatedBy: "\n\n").filter { !$0.isEmpty }
        guard let head = blocks.lastIndex(where: { $0.hasPrefix("HTTP/") }) else { return ([], []) }
        func fields<Lines: Sequence>(_ lines: Lines) -> [(name: String, value: String)] where Lines.Element == Substring {
            lines.compactMap { line in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
        }
        return (fields(blocks[head].split(separator: "\n").dropFirst()),
                fields(blocks[(head + 1)...].flatMap { $0.split(separator: "\n") }))
    }

    /// The request as a command a person can paste into a shell (`-s -o /dev/null -w '%{http_code}'` prints the
    /// status, as the seeds' commands do). `substitutions` shortens long values to shell variables.
    public func curlCommand(_ request: Scenario.Request, substitutions: [(value: String, name: String)] = []) throws -> String {
        var words = ["curl", "-s", "-o", "/dev/null", "-w", "'%{http_code}\\n'"]
        for argument in try curlArguments(request) {
            var word = argument
            for (value, name) in substitutions { word = word.replacingOccurrences(of: value, with: "$" + name) }
            words.append(Self.shellQuoted(word))
        }
        return words.joined(separator: " ")
    }

    static func shellQuoted(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,@%+".contains($0) }
        if plain && !word.isEmpty { return word }
        if !word.contains("\"") && !word.contains("\\") && !word.contains("`") {
            return "\"" + word + "\""  // lets $TOKEN expand
        }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    // MARK: - ext_authz over gRPC

    /// Sends a `Check` as an Envoy sidecar would and compares the answer: an OK status is 200, a denial its
    /// HTTP status (403 when it names none), with the headers and body it carries.
    func sendCheck(_ check: Scenario.Check) async throws -> String? {
        guard let port = port(check.to, "grpc_port") else { throw ScenarioError("`\(check.to)` has no gRPC port") }
        var parts = CheckRequestParts(
            destination: .init(address: "127.0.0.1", port: port), namespace: try check.namespace.map(resolve),
            labels: try check.labels.mapValues(resolve), method: check.method, host: try resolve(check.host),
            target: try resolve(check.path), headers: try check.headers.map { ($0.name, try resolve($0.value)) })
        if let peer = check.peer {
            let text = try (try? value("\(peer).spiffe")) ?? resolve(peer)
            do {
                parts.source = .init(identity: try SPIFFEID(principalOrURI: text), address: "127.0.0.1", port: 40000)
            } catch {
                throw ScenarioError("`peer: \(peer)` is not an identity or SPIFFE ID: \(error)")
            }
        }
        if let token = check.token {
            let jws: JWS
            do { jws = try JWS.parse(try resolve(token)) } catch { throw ScenarioError("`token` is not a JWT: \(error)") }
            let payload = try JSONReader.parse(jws.payload)
            parts.verifiedTokens = [(payload["iss"]?.stringValue ?? "", payload)]
            parts.headers.append(("authorization", "Bearer " + jws.compact))
        }
        let request = parts.checkRequest
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        let response = try await withGRPCClient(transport: transport) { client in
            try await Envoy_Service_Auth_V3_Authorization.Client(wrapping: client).check(request)
        }
        let status: Int
        var headers: [(name: String, value: String)] = []
        var body = ""
        if response.status.code == 0 {
            status = 200
            headers = response.okResponse.headers.map { ($0.header.key, $0.header.value) }
                + response.okResponse.responseHeadersToAdd.map { ($0.header.key, $0.header.value) }
        } else {
            let code = Int(response.deniedResponse.status.code.rawValue)
            status = code == 0 ? 403 : code
            headers = response.deniedResponse.headers.map { ($0.header.key, $0.header.value) }
            body = response.deniedResponse.body
        }
        let result = CurlResult(exitCode: 0, status: status, headers: headers, trailers: [], body: body, error: "")
        return try compare(result, check.expect, upstreamsBefore: [:])
    }
}

extension Value {
    var intValue: Int? { numberValue?.intValue }
}
