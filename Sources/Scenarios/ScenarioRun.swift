import Foundation
import PolicyCore

/// What a scenario run needs from its surroundings.
public struct ScenarioEnvironment: Sendable {
    /// The `warden` binary the components run.
    public var warden: String
    /// The subcommands that binary has; a scenario needing another is skipped, never run.
    public var commands: Set<String>
    /// The directory `${file:PATH}` reads from (the suite's `scenarios/`).
    public var dataDirectory: String
    /// The repository root, `${repo}`.
    public var repository: String
    /// How long a component may take to start.
    public var startTimeout: Duration

    public init(warden: String, commands: Set<String>, dataDirectory: String, repository: String,
                startTimeout: Duration = .seconds(90)) {
        self.warden = warden
        self.commands = commands
        self.dataDirectory = dataDirectory
        self.repository = repository
        self.startTimeout = startTimeout
    }
}

/// One run of a scenario: its temporary directory, its processes, the values its strings name. The runner, the
/// demo and the demo's `--check` all drive a scenario through it; `shutdown` stops every process and removes the
/// directory, and an interrupted run is cleaned up by `ChildProcesses`.
public final class ScenarioRun: @unchecked Sendable {
    public let scenario: Scenario
    public let environment: ScenarioEnvironment
    public let directory: String
    private var values: [String: String] = [:]
    private var ports: [String: [String: Int]] = [:]
    private var processes: [String: ChildProcess] = [:]
    private var commandLines: [String: [String]] = [:]

    public init(_ scenario: Scenario, environment: ScenarioEnvironment) throws {
        self.scenario = scenario
        self.environment = environment
        var template = Array(((NSTemporaryDirectory() as NSString).appendingPathComponent("warden-\(scenario.name)-XXXXXX")).utf8CString)
        guard let made = mkdtemp(&template) else { throw ScenarioError("cannot make a temporary directory") }
        directory = String(cString: made)
        ChildProcesses.removeOnInterrupt(directory)
        values["dir"] = directory
        values["repo"] = environment.repository
    }

    // MARK: - Values

    /// Replaces every `${name}` in `text`: `${dir}`, `${repo}`, `${file:PATH}`, `${COMPONENT.port}` (and
    /// `grpc_port`, `http_port`, `admin_port`), `${IDENTITY.spiffe}`, `.principal`, `.cert`, `.key`, `.bundle`.
    public func resolve(_ text: String) throws -> String {
        var out = ""
        var rest = text[...]
        while let open = rest.range(of: "${") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                throw ScenarioError("unclosed `${` in `\(text)`")
            }
            let name = String(rest[open.upperBound..<close])
            out += try value(name)
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    func value(_ name: String) throws -> String {
        if name.hasPrefix("file:") {
            let path = environment.dataDirectory + "/" + name.dropFirst(5)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ScenarioError("cannot read `\(path)` for `${\(name)}`")
            }
            return text.hasSuffix("\n") ? String(text.dropLast()) : text
        }
        guard let value = values[name] else { throw ScenarioError("unknown value `${\(name)}`") }
        return value
    }

    public func port(_ component: String, _ kind: String = "port") -> Int? { ports[component]?[kind] }

    func path(_ relative: String) throws -> String {
        let resolved = try resolve(relative)
        return resolved.hasPrefix("/") ? resolved : directory + "/" + resolved
    }

    // MARK: - Preparing

    /// Hands out ports, makes the CA and issues the identities, and writes the scenario's files.
    public func prepare() async throws {
        for component in scenario.components {
            var assigned: [String: Int] = [:]
            switch component.kind {
            case .upstream, .caServer: assigned["port"] = try LocalPorts.free()
            case .server:
                (assigned["grpc_port"], assigned["http_port"], assigned["admin_port"]) =
                    (try LocalPorts.free(), try LocalPorts.free(), try LocalPorts.free())
            case .proxy: (assigned["port"], assigned["admin_port"]) = (try LocalPorts.free(), try LocalPorts.free())
            case .agent: break
            }
            if component.kind == .server { assigned["port"] = assigned["grpc_port"] }
            ports[component.name] = assigned
            for (key, port) in assigned { values["\(component.name).\(key)"] = String(port) }
        }
        if let trustDomain = scenario.trustDomain {
            values["ca.root"] = directory + "/ca/root-cert.pem"
            try await warden(["ca", "init", "--dir", directory + "/ca", "--trust-domain", trustDomain])
        }
        for identity in scenario.identities {
            let spiffe = "spiffe://\(scenario.trustDomain ?? "cluster.local")/ns/\(identity.namespace)/sa/\(identity.serviceAccount)"
            let out = directory + "/certs/" + identity.name
            values["\(identity.name).spiffe"] = spiffe
            values["\(identity.name).principal"] = String(spiffe.dropFirst("spiffe://".count))
            values["\(identity.name).cert"] = out + "/cert-chain.pem"
            values["\(identity.name).key"] = out + "/key.pem"
            values["\(identity.name).bundle"] = out + "/root-cert.pem"
            // An identity an agent renews gets its first certificate from the agent (with a bootstrap token).
            let renewed = scenario.components.contains { $0.kind == .agent && $0.string("identity") == identity.name }
            if renewed { continue }
            try await warden(["ca", "issue", "--dir", directory + "/ca", "--spiffe", spiffe, "--out", out]
                             + identity.dnsNames.flatMap { ["--dns", $0] })
        }
        for (relative, text) in scenario.files { try write(relative, try resolve(text)) }
        try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
        // The body of `grpc` request steps: one empty message in gRPC's framing (not compressed, length 0).
        try Data(count: 5).write(to: URL(fileURLWithPath: grpcEmptyMessagePath))
    }

    func write(_ relative: String, _ text: String) throws {
        let full = try path(relative)
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // Written beside and renamed over the old file, as a deployment tool does it: a watcher never sees half.
        let temporary = full + ".writing"
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary, full) == 0 else { throw ScenarioError("cannot write `\(full)`: errno \(errno)") }
    }

    @discardableResult
    func warden(_ arguments: [String]) async throws -> String {
        let output = try await Program.run(environment.warden, arguments, timeout: .seconds(60))
        guard output.status == 0 else {
            throw ScenarioError("`warden \(arguments.prefix(2).joined(separator: " "))` failed (exit \(output.status)): \(output.standardError)")
        }
        return output.standardOutput
    }

    // MARK: - Components

    /// Starts every component in the order written and waits until each is ready.
    public func startAll() async throws {
        for component in scenario.components { try await start(component) }
    }

    public func component(_ name: String) -> Scenario.Component? { scenario.components.first { $0.name == name } }
    public func process(_ name: String) -> ChildProcess? { processes[name] }

    /// The command line a component runs with (resolved), after `prepare`.
    func arguments(for component: Scenario.Component) async throws -> [String] {
        let extra = try (component.options["args"]?.arrayValue ?? []).map { try resolve($0.stringValue ?? "") }
        let ports = self.ports[component.name] ?? [:]
        func listen(_ key: String = "port") -> String { "127.0.0.1:\(ports[key] ?? 0)" }
        switch component.kind {
        case .upstream:
            var arguments = ["upstream", "--listen", listen(), "--name", component.name, "--record", recordPath(component.name)]
            if let status = component.options["status"]?.intValue { arguments += ["--status", String(status)] }
            return arguments + extra
        case .server:
            var arguments = [
                "serve", "--grpc-address", listen("grpc_port"), "--http-address", listen("http_port"),
                "--admin-address", listen("admin_port"),
                "--policies", try path(component.string("policies") ?? "policies"),
                "--decision-log", directory + "/logs/\(component.name)-decisions.jsonl", "--watch-interval-ms", "250",
            ]
            if let config = component.string("config") { arguments += ["--config", try path(config)] }
            return arguments + extra
        case .proxy:
            let upstream = component.string("upstream") ?? ""
            let identity = component.string("identity") ?? ""
            guard let upstreamPort = port(upstream) else { throw ScenarioError("`\(upstream)` has no port") }
            let servers = scenario.components.filter { $0.kind == .server }
            guard let authz = component.string("authz") ?? (servers.count == 1 ? servers[0].name : nil),
                  let authzPort = port(authz, "grpc_port") else {
                throw ScenarioError("proxy `\(component.name)` needs `authz:` naming its server")
            }
            var labels = ""
            if case .object(let map)? = component.options["labels"] {
                labels = map.compactMap { key, value in key.stringValue.map { "\($0)=\(value.stringValue ?? "")" } }
                    .sorted().joined(separator: ",")
            }
            var arguments = [
                "proxy", "--listen", listen(), "--upstream", "127.0.0.1:\(upstreamPort)", "--authz", "127.0.0.1:\(authzPort)",
                "--cert", try value("\(identity).cert"), "--key", try value("\(identity).key"),
                "--trust-bundle", try value("\(identity).bundle"),
                "--policies", try path(component.string("policies") ?? "mesh"),
                "--namespace", component.string("namespace") ?? "default", "--labels", labels, "--admin", listen("admin_port"),
            ]
            if let declared = component.options["ports"]?.arrayValue {
                arguments += ["--ports", try declared.map { try resolve($0.stringValue ?? $0.intValue.map(String.init) ?? "") }.joined(separator: ",")]
            }
            if component.options["outbound"]?.boolValue == true {
                arguments += ["--outbound", "--expect-peer", try value("\(component.string("expect_peer") ?? "").spiffe")]
            }
            if component.options["upstream_http2"]?.boolValue == true { arguments.append("--upstream-http2") }
            return arguments + extra
        case .caServer:
            return ["ca", "serve", "--dir", directory + "/ca", "--listen", listen()] + extra
        case .agent:
            guard let caPort = port(component.string("ca") ?? "") else { throw ScenarioError("agent `\(component.name)` has no CA") }
            let identity = component.string("identity") ?? ""
            // The agent asks for the DNS names its bootstrap token grants, and keeps them on renewal.
            let names = scenario.identities.first { $0.name == identity }?.dnsNames.filter { !Self.isIPAddress($0) } ?? []
            let token = try await warden([
                "ca", "token", "--dir", directory + "/ca", "--spiffe", try value("\(identity).spiffe"), "--ttl", "1h",
            ] + names.flatMap { ["--dns", $0] }).trimmingCharacters(in: .whitespacesAndNewlines)
            var arguments = [
                "ca", "agent", "--ca", "127.0.0.1:\(caPort)", "--out", directory + "/certs/" + identity,
                "--root-cert", directory + "/ca/root-cert.pem", "--bootstrap-token", token,
            ]
            if let ttl = component.string("ttl") { arguments += ["--ttl", ttl] }
            return arguments + extra
        }
    }

    /// Starts (or restarts, with the same command line) a component and waits until it is ready: every port it
    /// was given accepts connections (an agent: it has written its first certificate).
    public func start(_ component: Scenario.Component) async throws {
        if let running = processes[component.name], running.isRunning { return }
        let arguments: [String]
        if let known = commandLines[component.name] {
            arguments = known
        } else {
            arguments = try await self.arguments(for: component)
            commandLines[component.name] = arguments
        }
        let certificate = component.kind == .agent ? try value("\(component.string("identity") ?? "").cert") : nil
        let before = certificate?.contentsIfReadable
        let process = try ChildProcess(name: component.name, executable: environment.warden, arguments: arguments,
                                       directory: directory)
        processes[component.name] = process
        let listening = Array((ports[component.name] ?? [:]).filter { $0.key != "port" || component.kind != .server }.values)
        let ready = await process.wait(until: {
            if let certificate { return certificate.contentsIfReadable != nil && certificate.contentsIfReadable != before }
            return listening.allSatisfy(LocalPorts.accepts)
        }, timeout: environment.startTimeout)
        guard ready, process.isRunning else {
            let status = process.exitStatus.map { "exited with status \($0)" } ?? "was not ready in time"
            throw ScenarioError("\(component.kind.rawValue) `\(component.name)` \(status):\n\(Self.tail(process.standardError, lines: 15))")
        }
    }

    /// Stops one component (SIGTERM, then SIGKILL after ten seconds).
    public func stop(_ name: String) async {
        await processes[name]?.stop()
    }

    /// Stops every component, last started first, and removes the run's directory.
    public func shutdown(keepDirectory: Bool = false) async {
        for component in scenario.components.reversed() { await processes[component.name]?.stop(grace: .seconds(5)) }
        processes.removeAll()
        if !keepDirectory { try? FileManager.default.removeItem(atPath: directory) }
        ChildProcesses.forget(directory)
    }

    /// The last lines of every component's log, for a failure report.
    public func logs(lines: Int = 8) -> String {
        scenario.components.compactMap { component in
            guard let process = processes[component.name] else { return nil }
            let text = Self.tail(process.standardError, lines: lines)
            return text.isEmpty ? nil : "  \(component.name):\n" + text.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    static func tail(_ text: String, lines: Int) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: true).suffix(lines).joined(separator: "\n")
    }

    var grpcEmptyMessagePath: String { directory + "/grpc-empty-message" }

    /// Where an upstream records the requests it receives.
    func recordPath(_ name: String) -> String { directory + "/logs/\(name)-requests.jsonl" }

    /// The requests an upstream has recorded so far, one JSON object each.
    func upstreamRecords(_ name: String) -> [Value] {
        (recordPath(name).contentsIfReadable ?? "").split(separator: "\n").compactMap { try? JSONReader.parse(String($0)) }
    }

    var decisionLogPath: (String) -> String { { [directory] name in directory + "/logs/\(name)-decisions.jsonl" } }
}

extension String {
    /// The file's text at this path, or nil when it cannot be read.
    var contentsIfReadable: String? { try? String(contentsOfFile: self, encoding: .utf8) }
}
