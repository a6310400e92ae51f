import ArgumentParser
import Foundation
import PolicyCore
import Scenarios

/// `warden demo`: the seeds' zero-trust walkthrough on one machine. Starts a CA, the Bookinfo-style upstreams,
/// `warden serve` on the repository's policies and a `warden proxy` in front of each workload (and an outbound one
/// for `sleep`), all on 127.0.0.1 in a temporary directory; prints what runs where and, for each request of the
/// walkthrough, the curl command and the answer to expect.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the zero-trust walkthrough: CA, upstreams, server and proxies, with the curl commands to try.",
        discussion: """
            Runs until Ctrl-C, then stops everything and removes its temporary directory. With --check it sends \
            the walkthrough's requests itself, prints each with its answer, and exits 0 only when every answer was \
            the expected one. The walkthrough is a scenario file (examples/demo.yaml, in the format of \
            conformance/scenarios/).
            """
    )

    @Option(help: "The walkthrough to run.")
    var scenario = "examples/demo.yaml"

    @Option(help: "The repository root: the walkthrough's `${repo}` (its policies/) and `${file:...}` values.")
    var repository = "."

    @Flag(help: "Send the requests, print each result, and exit 0 only when all answered as expected.")
    var check = false

    func run() async throws {
        let (loaded, diagnostics) = Scenario.load(path: scenario)
        guard let walkthrough = loaded else {
            var renderer = DiagnosticRenderer()
            writeError(renderer.render(diagnostics.isEmpty ? [] : diagnostics))
            throw ExitCode(Warden.Status.unusable)
        }
        let missing = walkthrough.requiredCommands.subtracting(Warden.commandNames).sorted()
        guard missing.isEmpty else {
            writeError("warden demo needs " + missing.map { "`warden \($0)`" }.joined(separator: " and ") + ", which this build does not have")
            throw ExitCode(Warden.Status.unusable)
        }
        let requests: [(note: String, request: Scenario.Request)] = walkthrough.steps.compactMap { step in
            if case .request(let request) = step.action { return (step.note, request) }
            return nil
        }
        guard requests.count == walkthrough.steps.count else {
            writeError("\(scenario): a walkthrough holds only `request` steps (each becomes a curl command)")
            throw ExitCode(Warden.Status.unusable)
        }
        let root = URL(fileURLWithPath: repository).standardizedFileURL.path
        let run = try ScenarioRun(walkthrough, environment: ScenarioEnvironment(
            warden: Warden.executablePath, commands: Warden.commandNames, dataDirectory: root, repository: root))
        ChildProcesses.cleanUpOnSignals { signal in
            writeError("\nstopped; every process ended and \(run.directory) removed")
            Foundation.exit(signal == SIGINT || signal == SIGTERM ? 0 : 128 + signal)
        }
        writeError("starting the walkthrough in \(run.directory) ...")
        do {
            try await run.prepare()
            try await run.startAll()
        } catch {
            writeError("warden demo: \(error)\n\(run.logs(lines: 15))")
            await run.shutdown()
            throw ExitCode(Warden.Status.failed)
        }
        describe(run)
        let substitutions = try tokenVariables(run)
        if !substitutions.isEmpty {
            writeOutput("\nThe seeds' demo token (issuer testing@secure.istio.io, from conformance/scenarios/seed/):")
            for (value, name) in substitutions { writeOutput("  export \(name)=\(value)") }
        }
        writeOutput("\nThe walkthrough: paste a command, compare the answer.")
        var failures = 0
        for (index, item) in requests.enumerated() {
            let expected = item.request.expect.exit.map { exits in
                "curl fails with exit code \(exits.map(String.init).joined(separator: " or ")) "
                    + "(\(exits.contains(56) ? "connection reset: mTLS required" : "no answer"))"
            }
                ?? item.request.expect.status.map { "\($0)" } ?? "an answer"
            writeOutput("\n\(index + 1). \(item.note)\n   \(try run.curlCommand(item.request, substitutions: substitutions))\n   expect: \(expected)")
            if check {
                let result = try await run.send(item.request)
                if let failure = result.failure {
                    failures += 1
                    writeOutput("   got:    \(result.summary) ✗ \(failure)")
                } else {
                    writeOutput("   got:    \(result.summary) ✓")
                }
            }
        }
        if check {
            writeOutput("\n\(requests.count - failures) passed, \(failures) failed")
            if failures > 0 { writeError(run.logs(lines: 10)) }
            await run.shutdown()
            if failures > 0 { throw ExitCode(Warden.Status.failed) }
            return
        }
        writeOutput("\nEverything keeps running until Ctrl-C.")
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    /// The seed token is long: the commands name it `$TOKEN`.
    func tokenVariables(_ run: ScenarioRun) throws -> [(value: String, name: String)] {
        guard let token = try? run.resolve("${file:conformance/scenarios/seed/token.jwt}") else { return [] }
        return [(token, "TOKEN")]
    }

    func describe(_ run: ScenarioRun) {
        var lines = ["\nWhat runs where (all on 127.0.0.1):"]
        for component in run.scenario.components {
            var line = "  \(component.kind.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(component.name.padding(toLength: 18, withPad: " ", startingAt: 0))"
            switch component.kind {
            case .server:
                line += "gRPC ext_authz :\(run.port(component.name, "grpc_port") ?? 0), HTTP :\(run.port(component.name, "http_port") ?? 0)"
                line += ", admin :\(run.port(component.name, "admin_port") ?? 0)"
                line += ", policies \(component.string("policies").flatMap { try? run.resolve($0) } ?? "policies")"
            case .proxy:
                line += ":\(run.port(component.name) ?? 0) → \(component.string("upstream") ?? "")"
                if let identity = component.string("identity"), let spiffe = try? run.resolve("${\(identity).spiffe}") { line += " as \(spiffe)" }
                if component.options["outbound"]?.boolValue == true { line += " (outbound: plaintext in, mTLS out)" }
            case .upstream, .caServer:
                line += ":\(run.port(component.name) ?? 0)"
            case .agent:
                break
            }
            lines.append(line)
        }
        if run.scenario.trustDomain != nil {
            lines.append("  certificates in \(run.directory)/certs/<workload>/ (cert-chain.pem, key.pem, root-cert.pem), CA in \(run.directory)/ca/")
        }
        lines.append("  logs: \(run.directory)/logs/")
        writeOutput(lines.joined(separator: "\n"))
    }
}
