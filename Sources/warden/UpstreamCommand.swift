import ArgumentParser
import Foundation
import Identity
import Networking
import PolicyCore
import Logging
import ServiceLifecycle
import UnixSignals

/// `warden upstream`: a small HTTP/1.1 workload for tests and demos that says, and records, what it received.
struct UpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upstream",
        abstract: "Run a test workload that answers every request with what it received, and records it.",
        discussion: """
            Every request is answered with --status (default 200) and, unless --body is given, a JSON echo of the \
            request: {"method", "path", "headers": {name: [values]}, "body_bytes", "name"}. With --record FILE each \
            request is also appended to FILE as one such JSON line, written before the response is sent, so a test \
            can read what the workload saw (or that it saw nothing). Logs `upstream listening on HOST:PORT`.
            """
    )

    @Option(help: "Listen address, host:port (port 0 picks a free one).")
    var listen: String

    @Option(help: "Append one JSON line per request received to this file.")
    var record: String?

    @Option(help: "The status of every answer (default 200).")
    var status: Int = 200

    @Option(help: "Answer with this body instead of the JSON echo.")
    var body: String?

    @Option(help: "Wait this long before answering, as 250ms or 2s.")
    var delay: String?

    @Option(help: "A name put in the echo and the record, to tell upstreams apart.")
    var name: String?

    @Option(name: .customLong("max-body"), help: "Largest request body accepted in bytes (default 16777216).")
    var maxBody: Int = 16 << 20

    func run() async throws {
        guard let address = Self.address(listen) else { throw ValidationError("--listen must be host:port, found `\(listen)`") }
        guard (100...599).contains(status) else { throw ValidationError("--status must be an HTTP status") }
        var delayed: Duration?
        if let delay {
            guard let parsed = parseDuration(delay) else { throw ValidationError("--delay must be a duration such as 2s") }
            delayed = parsed
        }
        let wait = delayed
        let recorder = try record.map { try Recorder(path: $0) }
        let status = self.status, fixedBody = body, name = self.name
        let server = try await HTTPServer(
            options: .init(host: address.host, port: address.port, maxBodyBytes: maxBody, maxConnections: 10_000)
        ) { request, _ in
            let line = Self.echo(request, name: name)
            recorder?.append(line)
            if let wait { try? await Task.sleep(for: wait) }
            if let fixedBody {
                return HTTPResponse(status: status, headers: [("content-type", "text/plain; charset=utf-8")], body: Array(fixedBody.utf8))
            }
            return HTTPResponse(status: status, headers: [("content-type", "application/json")], body: Array((line + "\n").utf8))
        }.bind()
        writeError("warden: info: upstream listening on \(address.host):\(server.port ?? address.port)")
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint],
            logger: .standardError(level: .warning)))
        try await group.run()
    }

    /// The JSON line of one request.
    static func echo(_ request: HTTPRequest, name: String?) -> String {
        var headers: [Value: Value] = [:]
        for (key, value) in request.headers {
            let lower = Value.string(key.lowercased())
            if case .array(let existing)? = headers[lower] {
                headers[lower] = .array(existing + [.string(value)])
            } else {
                headers[lower] = .array([.string(value)])
            }
        }
        var object: [Value: Value] = [
            "method": .string(request.method), "path": .string(request.target), "headers": .object(headers),
            "body_bytes": .int(request.body.count),
        ]
        if let name { object["name"] = .string(name) }
        return JSONWriter.string(.object(object))
    }

    static func address(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
        else { return nil }
        let host = text[..<colon]
        return host.isEmpty ? nil : (String(host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))), port)
    }
}

/// Appends lines to a file, each written whole before the call returns.
private final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw ValidationError("cannot create `\(path)`")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError("cannot open `\(path)`") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func append(_ line: String) {
        lock.lock()
        handle.write(Data((line + "\n").utf8))
        lock.unlock()
    }
}
