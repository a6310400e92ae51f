import Foundation
import Networking

/// The outcome of running a program to completion.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs real programs (the `warden` binary, curl, openssl) for end-to-end tests, with a time limit.
public enum ProcessRunner {
    public static func run(
        _ executable: String,
        _ arguments: [String],
        stdin: String? = nil,
        currentDirectory: String? = nil,
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(60)
    ) throws -> ProcessOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        process.environment = ParentWatch.childEnvironment().merging(environment ?? [:]) { $1 }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        // A child may exit without reading its input (EPIPE): the throwing write reports that instead of trapping.
        if let stdin { try? input.fileHandleForWriting.write(contentsOf: Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()

        // Drain both pipes concurrently so a chatty child never blocks on a full pipe.
        let collected = Collected()
        let group = DispatchGroup()
        for (pipe, isOut) in [(out, true), (err, false)] {
            group.enter()
            DispatchQueue.global().async {
                let data = Self.readToEnd(pipe.fileHandleForReading)
                collected.set(data, isOut: isOut)
                group.leave()
            }
        }
        let deadline = DispatchTime.now() + .milliseconds(Int(timeout.components.seconds * 1000))
        if group.wait(timeout: deadline) == .timedOut {
            process.terminate()
            _ = group.wait(timeout: .now() + 5)
            throw TimedOut(command: ([executable] + arguments).joined(separator: " "))
        }
        // Bounded too: Foundation learns of a child's exit through a descriptor the child inherits, so a background
        // program the child left running (its output sent elsewhere) can hide the exit for as long as it runs.
        while process.isRunning {
            guard DispatchTime.now() < deadline else {
                process.terminate()
                throw TimedOut(command: ([executable] + arguments).joined(separator: " "))
            }
            usleep(10_000)
        }
        return ProcessOutput(status: process.terminationStatus, stdout: collected.stdout, stderr: collected.stderr)
    }

    /// `run`, waiting on a thread of its own rather than on one of Swift's cooperative threads, so tests that run
    /// programs in parallel never starve the tasks (servers under test, say) that need those threads.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        stdin: String? = nil,
        currentDirectory: String? = nil,
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(60)
    ) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    try run(executable, arguments, stdin: stdin, currentDirectory: currentDirectory,
                            environment: environment, timeout: timeout) as ProcessOutput
                })
            }
        }
    }

    /// Runs the `warden` binary built with the tests.
    public static func warden(
        _ arguments: [String], stdin: String? = nil, currentDirectory: String? = nil
    ) async throws -> ProcessOutput {
        try await run(Repository.wardenBinary, arguments, stdin: stdin, currentDirectory: currentDirectory ?? Repository.root)
    }

    /// Everything until end of file, reading again when a signal interrupts a read (Foundation's
    /// `readDataToEndOfFile` traps on `EINTR`).
    static func readToEnd(_ handle: FileHandle) -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                data.append(contentsOf: buffer[..<count])
            } else if count < 0, errno == EINTR {
                continue
            } else {
                return data
            }
        }
    }

    public struct TimedOut: Error, CustomStringConvertible {
        public var command: String
        public var description: String { "timed out: \(command)" }
    }

    private final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var out = Data(), err = Data()
        func set(_ data: Data, isOut: Bool) {
            lock.lock()
            if isOut { out = data } else { err = data }
            lock.unlock()
        }
        var stdout: String { lock.lock(); defer { lock.unlock() }; return String(decoding: out, as: UTF8.self) }
        var stderr: String { lock.lock(); defer { lock.unlock() }; return String(decoding: err, as: UTF8.self) }
    }
}
