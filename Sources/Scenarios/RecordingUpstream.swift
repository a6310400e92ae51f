import Foundation
import Logging
import Networking
import PolicyCore
import ServiceLifecycle
import UnixSignals

/// `warden upstream`: a workload for scenarios and the demo. It answers every request with `status` and a JSON
/// echo of what it received — `{"method", "path", "headers": {name: [values]}, "body_bytes", "name"}` — and, with
/// a record file, appends that line to the file before answering, so a scenario can tell what got through a proxy
/// (and that nothing did).
public struct RecordingUpstream: Sendable {
    public var name: String?
    public var host: String
    public var port: Int
    public var status: Int
    public var record: String?
    /// Answered instead of the JSON echo (the echo is still recorded).
    public var body: String?
    /// How long to wait before answering, for timeout tests.
    public var delay: Duration?
    public var maxBodyBytes: Int

    public init(
        name: String?, host: String, port: Int, status: Int = 200, record: String? = nil, body: String? = nil,
        delay: Duration? = nil, maxBodyBytes: Int = 16 << 20
    ) {
        self.name = name
        self.host = host
        self.port = port
        self.status = status
        self.record = record
        self.body = body
        self.delay = delay
        self.maxBodyBytes = maxBodyBytes
    }

    /// The JSON line of one request; header names lowercased, repeated ones kept in order.
    static func echo(_ request: HTTPRequest, name: String?) -> String {
        var headers: [String: [Value]] = [:]
        for (key, value) in request.headers { headers[key.lowercased(), default: []].append(.string(value)) }
        var object: [String: Value] = [
            "method": .string(request.method), "path": .string(request.target),
            "headers": .object(headers.mapValues(Value.array)), "body_bytes": .int(request.body.count),
        ]
        if let name { object["name"] = .string(name) }
        return JSONWriter.string(.object(object))
    }

    /// Serves until SIGTERM or SIGINT, then drains.
    public func run() async throws {
        let logger = Logger.standardError(level: .info)
        let recorder = try record.map(Recorder.init)
        let (name, status, fixedBody, delay) = (name, status, body, delay)
        let options = HTTPServer.Options(host: host, port: port, maxBodyBytes: maxBodyBytes, maxConnections: 10_000)
        let server = HTTPServer(options: options) { request, _ in
            let line = Self.echo(request, name: name)
            recorder?.append(line)
            if let delay { try? await Task.sleep(for: delay) }
            if let fixedBody {
                return HTTPResponse(
                    status: status, headers: [("content-type", "text/plain; charset=utf-8")], body: Array(fixedBody.utf8))
            }
            return HTTPResponse(status: status, headers: [("content-type", "application/json")], body: Array((line + "\n").utf8))
        }
        let listener = try await server.bind()
        logger.info("upstream listening on \(host):\(listener.port ?? port)")
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: listener, serviceName: "upstream")], gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

/// Appends lines to a file, each written whole before `append` returns.
final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path), !FileManager.default.createFile(atPath: path, contents: nil) {
            throw ScenarioError("cannot create `\(path)`")
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ScenarioError("cannot open `\(path)`") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func append(_ line: String) {
        lock.withLock { handle.write(Data((line + "\n").utf8)) }
    }
}
