import Foundation
import Logging
import Networking
import PolicyCore
import ServiceLifecycle
import UnixSignals

/// `warden upstream`: a workload for scenarios and the demo. It answers every request with `status` and a small
/// JSON body naming itself, and records what it received — method, target, headers in order, body size — as one
/// JSON line per request on standard output, so a scenario can tell what got through a proxy (and that nothing
/// did).
public struct RecordingUpstream: Sendable {
    public var name: String
    public var host: String
    public var port: Int
    public var status: Int

    public init(name: String, host: String, port: Int, status: Int = 200) {
        self.name = name
        self.host = host
        self.port = port
        self.status = status
    }

    /// One request as recorded.
    static func record(_ request: HTTPRequest, _ connection: HTTPServer.Connection) -> Value {
        [
            "method": .string(request.method),
            "target": .string(request.target),
            "headers": .array(request.headers.map { .array([.string($0.name), .string($0.value)]) }),
            "body_bytes": .int(request.body.count),
            "peer": .string("\(connection.remoteIP ?? ""):\(connection.remotePort ?? 0)"),
        ]
    }

    /// Serves until SIGTERM or SIGINT, then drains.
    public func run() async throws {
        let logger = Logger.standardError(level: .info)
        let output = FileHandle.standardOutput
        let lock = NSLock()
        let (name, status) = (name, status)
        let server = HTTPServer(options: .init(host: host, port: port)) { request, connection in
            let line = JSONWriter.string(Self.record(request, connection)) + "\n"
            lock.withLock { output.write(Data(line.utf8)) }
            let body: Value = ["upstream": .string(name), "method": .string(request.method), "target": .string(request.target)]
            return HTTPResponse(
                status: status, headers: [("content-type", "application/json")], body: Array((JSONWriter.string(body) + "\n").utf8))
        }
        let listener = try await server.bind()
        logger.info("upstream \(name) listening on \(host):\(listener.port ?? port)")
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: listener, serviceName: "upstream")], gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}
