import Foundation
import WardenTesting

/// A `warden serve` process for end-to-end tests: started on ephemeral ports, found ready by its log lines,
/// stopped with a signal, cleaned up whatever happens (`LaunchedProcess`).
final class ServerProcess: Sendable {
    let launched: LaunchedProcess
    let grpcPort: Int
    let httpPort: Int
    /// The management API's port; 0 when it is off.
    let adminPort: Int

    /// Starts `warden serve` with `arguments` after ephemeral data-plane and admin addresses (flags win over a
    /// `--config` file; `--admin-address` among the arguments says where the admin listener goes instead).
    init(_ arguments: [String], timeout: Duration = .seconds(60)) async throws {
        let adminOff = zip(arguments, arguments.dropFirst()).contains { $0 == ("--admin-address", "off") }
        let ownAdmin = arguments.contains("--admin-address")
        var markers = ["gRPC listening on ", "HTTP listening on "]
        if !adminOff { markers.append("admin listening on ") }
        launched = try await LaunchedProcess(
            warden: "warden serve",
            ["serve", "--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0"]
                + (ownAdmin ? [] : ["--admin-address", "127.0.0.1:0"]) + arguments,
            readyMarkers: markers, timeout: timeout)
        grpcPort = launched.port(after: "gRPC listening on ")!
        httpPort = launched.port(after: "HTTP listening on ")!
        adminPort = adminOff ? 0 : launched.port(after: "admin listening on ") ?? 0
    }

    var stderr: String { launched.stderr }
    var httpBase: String { "http://127.0.0.1:\(httpPort)" }
    var adminBase: String { "http://127.0.0.1:\(adminPort)" }
    func signal(_ number: Int32) { launched.signal(number) }
    @discardableResult
    func stop(timeout: TimeInterval = 15) -> Int32? { launched.stop(timeout: timeout) }
}

/// A program the end-to-end tests drive; fails the test naming the Debian package when it is missing.
func tool(_ name: String, package: String) throws -> String {
    for directory in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
        return directory + "/" + name
    }
    throw LaunchedProcess.StartError(description: "`\(name)` is not installed: install Debian's `\(package)` (scripts/test does)")
}

/// Runs curl and returns the status code and body.
func curl(_ arguments: [String]) async throws -> (status: Int, body: String, headers: String) {
    let headersFile = NSTemporaryDirectory() + "/warden-curl-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: headersFile) }
    let out = try await ProcessRunner.run(
        try tool("curl", package: "curl"),
        ["-sS", "-o", "-", "-D", headersFile, "-w", "\n%{http_code}", "--max-time", "20"] + arguments,
        timeout: .seconds(30))
    var lines = out.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    let status = Int(lines.popLast() ?? "") ?? 0
    let headers = (try? String(contentsOfFile: headersFile, encoding: .utf8)) ?? ""
    return (status, lines.joined(separator: "\n"), headers)
}

/// A memory figure of a process from `/proc/PID/status`, in kilobytes: `VmRSS` (resident now) or `VmHWM` (the most it
/// ever held resident).
func memoryKilobytes(of pid: Int32, _ field: String) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
    else { return nil }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
}
