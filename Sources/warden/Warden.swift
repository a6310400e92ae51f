import ArgumentParser

import Foundation

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
            EvalCommand.self,
            TestCommand.self,
            CACommand.self,
            UpstreamCommand.self,
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
            let message = fullMessage(for: error)
            if !message.isEmpty { writeError(message) }
            Foundation.exit(Status.unusable)
        }
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
