import ArgumentParser
import AuthzPolicy
import DecisionPoint
import Documents
import Foundation
import PolicyCore
import PolicyLoading

/// `warden decide`: decides one request (or a JSONL file of them) against a directory of policies.
struct DecideCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decide",
        abstract: "Decide requests against AuthorizationPolicy files.",
        discussion: """
            A request is an object whose keys are Istio attribute names: source.principal, source.namespace, \
            source.ip, remote.ip, destination.ip, destination.port, destination.namespace, \
            destination.workload_labels, request.host, request.method, request.path, request.headers, \
            request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims, \
            connection.sni. An absent key is an absent attribute.
            Exit status: 0 when decisions were made (allow or deny), 2 when the input is unusable.
            """
    )

    @Option(name: .long, help: "Policy files or directories (repeatable).")
    var policies: [String]

    @Option(name: .long, help: "One request: a YAML or JSON file (`-` for standard input).")
    var request: String?

    @Option(name: .long, help: "Many requests: a JSON Lines file, one request per line (`-` for standard input).")
    var requests: String?

    @OptionGroup var policyOptions: PolicyOptions

    @Flag(help: "Show, for every policy that applies to the workload, which rule matched or which condition failed.")
    var explain = false

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    func validate() throws {
        guard (request == nil) != (requests == nil) else {
            throw ValidationError("give exactly one of --request or --requests")
        }
        if requests != nil && explain { throw ValidationError("--explain works with --request, not --requests") }
    }

    func run() throws {
        let loaded = try loadSnapshot(policies, options: policyOptions)
        if let request {
            try decideOne(request, snapshot: loaded)
        } else if let requests {
            try decideBatch(requests, snapshot: loaded)
        }
    }

    private func decideOne(_ path: String, snapshot: PolicySnapshot) throws {
        let text = try readInput(path)
        let parsed = YAMLDocuments.parse(text, file: path == "-" ? "<stdin>" : path)
        if let error = parsed.diagnostics.first { throw usage(DiagnosticRenderer().renderOne(error)) }
        guard let document = parsed.documents.first else { throw usage("\(path): no request found") }
        let request: AuthzRequest
        do {
            request = try AuthzRequest(attributes: document.value)
        } catch {
            throw usage("\(path): \(error)")
        }
        let response = snapshot.decide(attributes: request)
        let explanation = explain ? snapshot.authorization.explain(request) : nil
        switch format {
        case .json:
            var json = response.json
            if let explanation, case .object(var o) = json {
                o["explain"] = .array(explanation.map(\.json))
                json = .object(o)
            }
            writeOutput(JSONWriter.string(json, pretty: true))
        case .text:
            writeOutput(DecisionText.describe(response, request: request, set: snapshot.authorization))
            if let explanation {
                writeOutput(DecisionText.describe(explanation, request: request, set: snapshot.authorization))
            }
        }
    }

    private func decideBatch(_ path: String, snapshot: PolicySnapshot) throws {
        let text = try readInput(path)
        var output = BufferedOutput()
        var failures = 0
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy(\.isWhitespace) { continue }
            do {
                let request = try AuthzRequest(attributes: JSONReader.parse(String(line)))
                let response = snapshot.decide(attributes: request)
                switch format {
                case .json: output.line(JSONWriter.string(response.json))
                case .text: output.line(DecisionText.oneLine(response))
                }
            } catch {
                failures += 1
                let message = "line \(lineNumber): \(error)"
                switch format {
                case .json: output.line(JSONWriter.string(["line": .int(lineNumber), "error": .string(message)]))
                case .text: output.line("error \(message)")
                }
            }
        }
        output.flush()
        if failures > 0 {
            writeError("\(failures) \(plural(failures, "line", "lines")) could not be read as requests")
            throw ExitCode(Warden.Status.unusable)
        }
    }
}

/// Loads policies for a command that needs a usable set: errors are printed and exit with status 2.
func loadSnapshot(_ paths: [String], options: PolicyOptions) throws -> PolicySnapshot {
    let (snapshot, result) = options.loader.load(paths)
    var renderer = DiagnosticRenderer()
    let problems = result.diagnostics.filter { $0.severity != .note }
    if !problems.isEmpty { writeError(renderer.render(problems)) }
    guard let snapshot else {
        throw ExitCode(Warden.Status.unusable)
    }
    return snapshot
}

/// Reads a file, or standard input for `-`.
func readInput(_ path: String) throws -> String {
    if path == "-" {
        return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    }
    switch DocumentFiles.read(path) {
    case .success(let text): return text
    case .failure(let error): throw usage(error.message)
    }
}

/// An unusable-input failure: the message goes to stderr and the exit status is 2. (Declared as `ExitCode`, not
/// `some Error`: Swift 6.3.1 crashes generating release code for callers of the opaque form.)
func usage(_ message: String) -> ExitCode {
    writeError(message)
    return ExitCode(Warden.Status.unusable)
}

extension DiagnosticRenderer {
    func renderOne(_ diagnostic: Diagnostic) -> String {
        var copy = self
        return copy.render(diagnostic)
    }
}

/// Collects output lines and writes them in large chunks.
struct BufferedOutput {
    private var buffer = ""

    mutating func line(_ text: String) {
        buffer += text
        buffer += "\n"
        if buffer.utf8.count > 1 << 16 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer.utf8))
        buffer = ""
    }
}
