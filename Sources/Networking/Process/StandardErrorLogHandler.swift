import Foundation
import Logging

/// A process's own log (not its decision or access logs): one line per event on standard error,
/// `warden: <level>: <message>`, with metadata as `key=value` pairs after the message.
public struct StandardErrorLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String

    public init(label: String = "warden", level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "\(label): \(event.level): \(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

extension Logger {
    /// A logger writing `warden: <level>: <message>` lines to standard error, from `level` up.
    public static func standardError(label: String = "warden", level: Logger.Level) -> Logger {
        Logger(label: label) { _ in StandardErrorLogHandler(label: label, level: level) }
    }
}
