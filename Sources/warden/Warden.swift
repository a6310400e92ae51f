import ArgumentParser

import Foundation
import Networking

/// `warden`: the authorization server, the front proxy and the tools around them.
@main
struct Warden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warden",
        abstract: "Zero-trust authorization: Istio AuthorizationPolicy and Rego decisions for Envoy and Istio.",
        version: version,
        subcommands: [
            CheckCommand.self,
            BuildCommand.self,
            DecideCommand.self,
            ReplayCommand.self,
            BenchCommand.self,
            JWTCommand.self,
            ConformanceCommand.self,
            ServeCommand.self,
            ProxyCommand.self,
            UpstreamCommand.self,
            EvalCommand.self,
            TestCommand.self,
            CACommand.self,
            DemoCommand.self,
        ]
    )

    /// Warden's version, shown by `--version` and written into conformance reports.
    static let version = "0.1.0"

    /// The names of the subcommands this build has (`serve`, `proxy`, `ca`, ...).
    static var commandNames: Set<String> {
        Set(configuration.subcommands.compactMap { $0.configuration.commandName })
    }

    /// This program's own path, for starting more of itself (scenario components, the demo).
    static var executablePath: String {
        let link = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        if link != "/proc/self/exe", FileManager.default.isExecutableFile(atPath: link) { return link }
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }

    /// Exit statuses shared by every command.
    enum Status {
        static let ok: Int32 = 0
        /// A check or test found problems; a verification failed.
        static let failed: Int32 = 1
        /// The input could not be used (bad flags, unreadable files, invalid documents).
        static let unusable: Int32 = 2
    }

    /// Parses and runs a command; usage errors exit with status 2 (ArgumentParser alone would use 64).
    static func main() async {
        // Started by a launcher that names itself: stop when it is gone, however it ended.
        ParentWatch.start()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode {
                exit(withError: error)
            }
            var message = fullMessage(for: error)
            if !message.contains("Did you mean"), let suggestion = suggestion(for: Array(CommandLine.arguments.dropFirst())) {
                var lines = message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                lines.insert(suggestion, at: min(1, lines.count))
                message = lines.joined(separator: "\n")
            }
            if !message.isEmpty { writeError(message) }
            Foundation.exit(Status.unusable)
        }
    }
}

extension Warden {
    /// For a mistyped flag or subcommand, the nearest valid one: `did you mean `--policies`?`.
    static func suggestion(for arguments: [String]) -> String? {
        var command: any ParsableCommand.Type = Warden.self
        var index = 0
        while index < arguments.count, let sub = subcommand(of: command, named: arguments[index]) {
            command = sub
            index += 1
        }
        let subcommands = command.configuration.subcommands.map { $0.configuration.commandName ?? "" }
        let flags = Self.flags(inHelp: helpMessage(for: command))
        for argument in arguments[index...] {
            if argument.hasPrefix("--") {
                let name = String(argument.prefix { $0 != "=" })
                if !flags.contains(name), let near = nearest(name, in: flags) { return "Did you mean '\(near)'?" }
            } else if !argument.hasPrefix("-"), !subcommands.isEmpty {
                guard !subcommands.contains(argument), let near = nearest(argument, in: subcommands) else { return nil }
                return "Did you mean '\(near)'?"
            }
        }
        return nil
    }

    static func subcommand(of command: any ParsableCommand.Type, named name: String) -> (any ParsableCommand.Type)? {
        for sub in command.configuration.subcommands where sub.configuration.commandName == name { return sub }
        return nil
    }

    /// The `--names` a help text lists.
    static func flags(inHelp help: String) -> Set<String> {
        var flags: Set<String> = []
        for word in help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," || $0 == "[" || $0 == "]" || $0 == "|" }) {
            guard word.hasPrefix("--") else { continue }
            let name = word.prefix { $0.isLetter || $0.isNumber || $0 == "-" }
            if name.count > 2 { flags.insert(String(name)) }
        }
        return flags
    }

    /// The candidate closest to `word` by edit distance, when close enough to be a typo.
    static func nearest(_ word: String, in candidates: some Collection<String>) -> String? {
        let limit = word.count >= 8 ? 3 : 2
        var best: (name: String, distance: Int)?
        for candidate in candidates.sorted() {
            let distance = editDistance(word, candidate)
            if distance <= limit, distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        return best?.name
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}

/// Writes a line to standard error.
func writeError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    FileHandle.standardError.write(Data(line.utf8))
}

/// Writes a line to standard output.
func writeOutput(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    FileHandle.standardOutput.write(Data(line.utf8))
}
