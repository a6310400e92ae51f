import ArgumentParser
import Foundation
import Networking
import PolicyCore
import Scenarios

/// `warden upstream`: a workload that says, and records, what it received — for scenarios and the demo.
struct UpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upstream",
        abstract: "Run a test workload that answers every request with what it received, and records it.",
        discussion: """
            Every request is answered with --status and a JSON echo of the request: {"method", "path", "headers": \
            {name: [values]}, "body_bytes", "name"}. With --record FILE each request is also appended to FILE as \
            one such JSON line, before the response is sent, so a scenario can read what the workload saw (or that \
            it saw nothing). Logs `upstream listening on HOST:PORT`; SIGTERM or SIGINT stops it.
            """
    )

    @Option(help: "Listen address, host:port (port 0 picks a free one).")
    var listen: String

    @Option(help: "Append one JSON line per request received to this file.")
    var record: String?

    @Option(help: "The status of every answer.")
    var status = 200

    @Option(help: "Answer with this body instead of the JSON echo (the echo is still recorded).")
    var body: String?

    @Option(help: "Wait this long before answering, as 250ms or 2s.")
    var delay: String?

    @Option(name: .customLong("max-body"), help: "Largest request body accepted, in bytes.")
    var maxBody = 16 << 20

    @Option(help: "A name put in the echo and the record, to tell upstreams apart.")
    var name: String?

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65535).contains(port), colon != listen.startIndex else {
            throw ValidationError("--listen must be host:port, found `\(listen)`")
        }
        guard (100...599).contains(status) else { throw ValidationError("--status must be an HTTP status") }
        let wait = try delay.map { text in
            guard let parsed = parseDuration(text) else { throw ValidationError("--delay must be a duration such as 2s") }
            return parsed
        }
        let host = listen[..<colon].trimmingCharacters(in: ["[", "]"])
        do {
            try await RecordingUpstream(
                name: name, host: host, port: port, status: status, record: record, body: body, delay: wait,
                maxBodyBytes: maxBody
            ).run()
        } catch {
            writeError("warden: error: \(error)")
            throw ExitCode(Warden.Status.failed)
        }
    }
}
