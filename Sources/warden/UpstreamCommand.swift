import ArgumentParser
import Networking
import Scenarios

/// `warden upstream`: a workload that records what reaches it, for scenarios and the demo.
struct UpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upstream",
        abstract: "Serve a test workload that answers every request and records each one it receives.",
        discussion: """
            Every request is answered with --status and a JSON body naming the upstream, method and target, and \
            recorded as one JSON line on standard output: {"method", "target", "headers": [[name, value], ...], \
            "body_bytes", "peer"}. Scenarios read these lines to tell what got through a proxy, and that a denied \
            request never did. SIGTERM or SIGINT stops it.
            """
    )

    @Option(help: "Listen address, host:port (port 0: any free port).")
    var listen = "127.0.0.1:8080"

    @Option(help: "The name the upstream answers with.")
    var name = "upstream"

    @Option(help: "The status of every answer.")
    var status = 200

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw ValidationError("--listen must be host:port, found `\(listen)`")
        }
        guard (200...599).contains(status) else { throw ValidationError("--status must be between 200 and 599") }
        EventLoops.sizeToUsableCores()
        do {
            try await RecordingUpstream(name: name, host: String(listen[..<colon]), port: port, status: status).run()
        } catch {
            writeError("warden: error: \(error)")
            throw ExitCode(Warden.Status.failed)
        }
    }
}
