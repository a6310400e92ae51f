import Foundation
import PolicyCore

/// The server's own log: one line per event on standard error, `level: message`, filtered by level.
/// (Decision logs are separate: see `DecisionLog`.)
public struct ServerLogger: Sendable {
    public let level: ServerConfiguration.LogLevel

    public init(level: ServerConfiguration.LogLevel) {
        self.level = level
    }

    public func log(_ level: ServerConfiguration.LogLevel, _ message: String) {
        guard level >= self.level else { return }
        FileHandle.standardError.write(Data("warden: \(level.rawValue): \(message)\n".utf8))
    }

    public func debug(_ message: String) { log(.debug, message) }
    public func info(_ message: String) { log(.info, message) }
    public func warning(_ message: String) { log(.warning, message) }
    public func error(_ message: String) { log(.error, message) }
}
