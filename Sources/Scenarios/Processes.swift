import Foundation
import Networking
import Synchronization

/// Every child process a scenario run or the demo has started and not yet seen exit, so that an interrupted run
/// (Ctrl-C, SIGTERM, a failed step, an early exit) never leaves anything listening.
public enum ChildProcesses {
    private static let running = Mutex<Set<Int32>>([])
    private static let directories = Mutex<Set<String>>([])

    static func track(_ pid: Int32) {
        running.withLock { _ = $0.insert(pid) }
        installExitCleanup
    }

    static func untrack(_ pid: Int32) {
        running.withLock { _ = $0.remove(pid) }
    }

    /// Removes `path` when the process is interrupted, unless it was already removed.
    public static func removeOnInterrupt(_ path: String) { directories.withLock { _ = $0.insert(path) } }
    public static func forget(_ path: String) { directories.withLock { _ = $0.remove(path) } }

    /// Kills every child still running (SIGTERM, then SIGKILL to those that linger) and removes the
    /// directories registered with `removeOnInterrupt`. Safe to call more than once.
    public static func killAll(grace: TimeInterval = 2) {
        let pids = running.withLock { $0 }
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        var alive = pids
        while !alive.isEmpty && Date() < deadline {
            alive = alive.filter(isAlive)
            if !alive.isEmpty { usleep(20_000) }
        }
        for pid in alive { kill(pid, SIGKILL) }
        running.withLock { $0.subtract(pids) }
        for path in directories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
        directories.withLock { $0.removeAll() }
    }

    /// Running and not a zombie (Foundation reaps its children itself, so this never calls `waitpid`).
    private static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return !stat[close...].hasPrefix(") Z")
    }

    private static let installExitCleanup: Void = {
        atexit { ChildProcesses.killAll(grace: 1) }
    }()

    /// On SIGINT, SIGTERM or SIGHUP: kill every child, remove the registered directories, then call `then` (which
    /// should exit). Signals are handled on a dispatch queue, never in the signal handler itself.
    public static func cleanUpOnSignals(then: @escaping @Sendable (Int32) -> Void) {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                killAll()
                then(number)
            }
            source.resume()
            signalSources.keep(source)
        }
    }

    private static let signalSources = SignalSources()

    /// Keeps the signal sources alive for the life of the process.
    private final class SignalSources: @unchecked Sendable {
        private let lock = NSLock()
        private var sources: [any DispatchSourceSignal] = []
        func keep(_ source: any DispatchSourceSignal) { lock.withLock { sources.append(source) } }
    }
}

/// A long-running program (a server, a proxy, an upstream) with its output captured as it runs.
public final class ChildProcess: @unchecked Sendable {
    public let name: String
    public let commandLine: [String]
    private let process = Process()
    private let lock = NSLock()
    private var outText = ""
    private var errText = ""

    /// Starts `executable` with `arguments`; the output is collected, never printed.
    public init(name: String, executable: String, arguments: [String], directory: String? = nil) throws {
        self.name = name
        commandLine = [executable] + arguments
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        // Stops by itself should this process end without stopping it (SIGKILL, a crash).
        process.environment = ParentWatch.childEnvironment()
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { [weak self] in self?.collect($0.availableData, standardOutput: true) }
        err.fileHandleForReading.readabilityHandler = { [weak self] in self?.collect($0.availableData, standardOutput: false) }
        try process.run()
        ChildProcesses.track(process.processIdentifier)
    }

    private func collect(_ data: Data, standardOutput: Bool) {
        guard !data.isEmpty else { return }
        let text = String(decoding: data, as: UTF8.self)
        lock.withLock {
            if standardOutput { outText += text } else { errText += text }
        }
    }

    public var standardOutput: String { lock.withLock { outText } }
    public var standardError: String { lock.withLock { errText } }
    public var isRunning: Bool { process.isRunning }
    public var processIdentifier: Int32 { process.processIdentifier }
    public var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// Waits (without blocking a thread) until `condition` holds, the process exits, or `timeout` passes.
    public func wait(until condition: @Sendable () -> Bool, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            if !process.isRunning { return condition() }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status (nil when it had to be killed).
    @discardableResult
    public func stop(grace: Duration = .seconds(10)) async -> Int32? {
        defer { ChildProcesses.untrack(process.processIdentifier) }
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        if await wait(until: { [process] in !process.isRunning }, timeout: grace) { return process.terminationStatus }
        kill(process.processIdentifier, SIGKILL)
        _ = await wait(until: { [process] in !process.isRunning }, timeout: .seconds(5))
        return nil
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        ChildProcesses.untrack(process.processIdentifier)
    }
}

/// The outcome of a program run to completion.
public struct ProgramOutput: Sendable {
    public var status: Int32
    public var standardOutput: String
    public var standardError: String
    /// True when the program was stopped for running past its time.
    public var timedOut: Bool
}

/// Runs short programs (curl, openssl, `warden ca issue`) to completion. The caller's task suspends; no thread
/// of Swift's cooperative pool ever blocks on the child.
public enum Program {
    public static func run(
        _ executable: String, _ arguments: [String], input: String? = nil, timeout: Duration = .seconds(30)
    ) async throws -> ProgramOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        if let input {
            let pipe = Pipe()
            process.standardInput = pipe
            try process.run()
            pipe.fileHandleForWriting.write(Data(input.utf8))
            try? pipe.fileHandleForWriting.close()
        } else {
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }
        let pid = process.processIdentifier
        ChildProcesses.track(pid)
        defer { ChildProcesses.untrack(pid) }

        let stopped = Mutex(false)
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            stopped.withLock { $0 = true }
            kill(pid, SIGKILL)
        }
        defer { watchdog.cancel() }
        // Each pipe is read to its end on a dispatch thread; the group's notification resumes the task.
        let (stdout, stderr) = await withCheckedContinuation { (continuation: CheckedContinuation<(Data, Data), Never>) in
            let group = DispatchGroup()
            let collected = Mutex((Data(), Data()))
            for (pipe, first) in [(out, true), (err, false)] {
                group.enter()
                DispatchQueue.global().async {
                    let data = pipe.fileHandleForReading.readDataToEndOfFile()
                    collected.withLock { if first { $0.0 = data } else { $0.1 = data } }
                    group.leave()
                }
            }
            group.notify(queue: .global()) { continuation.resume(returning: collected.withLock { $0 }) }
        }
        while process.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
        return ProgramOutput(
            status: process.terminationStatus, standardOutput: String(decoding: stdout, as: UTF8.self),
            standardError: String(decoding: stderr, as: UTF8.self), timedOut: stopped.withLock { $0 })
    }

    /// The full path of a program on the usual paths, or nil.
    public static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin", "/bin"]
        for directory in directories {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// TCP ports of 127.0.0.1 for the components of a run.
public enum LocalPorts {
    /// A port that was free a moment ago: bound to 0, read back, released. Ports are handed out before the
    /// components start so that every file and flag can name them.
    public static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ScenarioError("cannot open a socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw ScenarioError("cannot find a free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    public static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

/// A scenario that cannot be run or did not behave: a lowercase message, user input in backticks.
public struct ScenarioError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
