import Foundation
import Networking
import Synchronization

/// A real program (usually the `warden` binary) started for an end-to-end test: found ready by its log, stopped
/// with a signal, and always cleaned up — when the test stops it, when the value is released, and when the test
/// process exits, so an interrupted or failed run leaves nothing listening.
public final class LaunchedProcess: @unchecked Sendable {
    public let name: String
    private let process = Process()
    private let lock = NSLock()
    private var stdoutText = ""
    private var stderrText = ""

    public struct StartError: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// Starts `executable` and waits (bounded) until `isReady` holds for its standard error so far.
    public init(
        _ name: String,
        executable: String = Repository.wardenBinary,
        _ arguments: [String],
        currentDirectory: String = Repository.root,
        environment: [String: String] = [:],
        timeout: Duration = .seconds(60),
        isReady: @escaping @Sendable (_ stderr: String) -> Bool
    ) async throws {
        self.name = name
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory)
        // The child stops by itself should this process die without stopping it (a crash, a fatal error).
        process.environment = ParentWatch.childEnvironment().merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in self?.append(handle.availableData, isOut: true) }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in self?.append(handle.availableData, isOut: false) }
        try process.run()
        Self.running.withLock { _ = $0.insert(process.processIdentifier) }
        Self.installExitCleanup
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isReady(stderr) { return }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        stop()
        throw StartError(description: "\(name) did not start:\n\(stderr)")
    }

    /// Starts a `warden` command whose log names the ports it listens on (`... listening on host:port`) and
    /// waits until every one of `markers` has been logged.
    public convenience init(warden name: String, _ arguments: [String], readyMarkers markers: [String],
                            environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws {
        try await self.init(name, arguments, environment: environment, timeout: timeout) { stderr in
            markers.allSatisfy { Self.port(after: $0, in: stderr) != nil }
        }
    }

    private func append(_ data: Data, isOut: Bool) {
        guard !data.isEmpty else { return }
        lock.lock()
        if isOut { stdoutText += String(decoding: data, as: UTF8.self) } else { stderrText += String(decoding: data, as: UTF8.self) }
        lock.unlock()
    }

    public var stderr: String {
        lock.lock()
        defer { lock.unlock() }
        return stderrText
    }

    public var stdout: String {
        lock.lock()
        defer { lock.unlock() }
        return stdoutText
    }

    public var isRunning: Bool { process.isRunning }
    public var processIdentifier: Int32 { process.processIdentifier }

    /// The port in the first log line holding `marker` (`gRPC listening on 127.0.0.1:41234` → 41234).
    public func port(after marker: String) -> Int? { Self.port(after: marker, in: stderr) }

    static func port(after marker: String, in text: String) -> Int? {
        guard let range = text.range(of: marker) else { return nil }
        let rest = text[range.upperBound...].prefix { $0 != "\n" }
        guard text[range.upperBound...].contains("\n"), let colon = rest.lastIndex(of: ":") else { return nil }
        return Int(rest[rest.index(after: colon)...].prefix { $0.isNumber })
    }

    public func signal(_ number: Int32) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, number)
    }

    /// Sends SIGTERM and waits (bounded) for the exit status; SIGKILL when it does not exit in time.
    @discardableResult
    public func stop(timeout: TimeInterval = 15) -> Int32? {
        defer { Self.running.withLock { _ = $0.remove(process.processIdentifier) } }
        guard process.isRunning else { return process.terminationStatus }
        signal(SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    /// Kills the process at once (a crash, as far as its peers can tell).
    public func kill9() {
        signal(SIGKILL)
        process.waitUntilExit()
        Self.running.withLock { _ = $0.remove(process.processIdentifier) }
    }

    deinit { stop(timeout: 5) }

    private static let running = Mutex<Set<Int32>>([])
    private static let installExitCleanup: Void = {
        atexit {
            for pid in LaunchedProcess.running.withLock({ $0 }) { kill(pid, SIGKILL) }
        }
    }()
}

/// Ports for components that cannot report the one they bound.
public enum FreePort {
    /// A TCP port of 127.0.0.1 that was free a moment ago (bound to 0, then released).
    public static func allocate() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                bind(fd, sockaddrPointer, length) == 0 && getsockname(fd, sockaddrPointer, &length) == 0
            }
        }
        guard bound else { throw CocoaError(.fileWriteUnknown) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
