import Foundation
import WardenTesting

/// A `warden serve` process for end-to-end tests: started on ephemeral ports, found ready by its log lines,
/// stopped with a signal. Every wait is bounded.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var stderrText = ""
    private(set) var grpcPort = 0
    private(set) var httpPort = 0

    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    init(_ arguments: [String], currentDirectory: String = Repository.root, timeout: Duration = .seconds(60)) throws {
        process.executableURL = URL(fileURLWithPath: Repository.wardenBinary)
        process.arguments = ["serve", "--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory)
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.stderrText += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let grpc = port(after: "gRPC listening on "), let http = port(after: "HTTP listening on ") {
                grpcPort = grpc
                httpPort = http
                return
            }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop()
        throw StartError(description: "warden serve did not start:\n\(stderr)")
    }

    var stderr: String {
        lock.lock()
        defer { lock.unlock() }
        return stderrText
    }

    var httpBase: String { "http://127.0.0.1:\(httpPort)" }

    private func port(after marker: String) -> Int? {
        let text = stderr
        guard let range = text.range(of: marker) else { return nil }
        let rest = text[range.upperBound...].prefix { $0 != "\n" }
        guard text[range.upperBound...].contains("\n"), let colon = rest.lastIndex(of: ":") else { return nil }
        return Int(rest[rest.index(after: colon)...])
    }

    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    @discardableResult
    func stop(timeout: TimeInterval = 15) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        signal(SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// A program the end-to-end tests drive; fails the test naming the Debian package when it is missing.
func tool(_ name: String, package: String) throws -> String {
    for directory in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
        return directory + "/" + name
    }
    throw ServerProcess.StartError(description: "`\(name)` is not installed: install Debian's `\(package)` (scripts/test does)")
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
