import ArgumentParser
import DecisionPoint
import Foundation
import PolicyCore

/// `warden replay`: re-decides recorded traffic under a new policy set and reports what would change.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-decide logged requests under new policies and report the decisions that change.",
        discussion: """
            Reads a decision log written by `warden serve` (JSON lines whose `attributes` hold the request), or any \
            JSON Lines file of requests in the flat attribute form. The earlier decision is the one recorded in the \
            log, or the one --policies-before gives. Exit status 3 when any allowed request would now be denied, \
            so a CI job can gate policy changes on it; 0 otherwise; 2 for unusable input.
            """
    )

    @Option(help: "The decision log or requests (JSON Lines; `-` for standard input).")
    var log: String

    @Option(name: .long, help: "The new policy files or directories (repeatable).")
    var policies: [String]

    @Option(name: .customLong("policies-before"), help: "Decide the earlier outcome with these policies instead of the log's.")
    var policiesBefore: [String] = []

    @OptionGroup var policyOptions: PolicyOptions

    @Option(help: "How many changed requests to show in full.")
    var show = 10

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    static let allowBecameDeny: Int32 = 3

    func run() throws {
        let after = try loadSnapshot(policies, options: policyOptions)
        let before = policiesBefore.isEmpty ? nil : try loadSnapshot(policiesBefore, options: policyOptions)
        var report = ReplayReport()
        var lineNumber = 0
        for line in try readInput(log).split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy(\.isWhitespace) { continue }
            let entry: Value
            let request: AuthzRequest
            do {
                entry = try JSONReader.parse(String(line))
                request = try AuthzRequest(attributes: entry["attributes"] ?? entry)
            } catch {
                throw usage("\(log):\(lineNumber): \(error)")
            }
            let earlier: Decision
            if let before {
                earlier = before.decide(attributes: request).decision
            } else if let recorded = Self.recordedDecision(entry) {
                earlier = recorded
            } else {
                throw usage("\(log):\(lineNumber): no recorded decision; give --policies-before to decide the earlier outcome")
            }
            report.add(line: lineNumber, request: request, before: earlier, after: after.decide(attributes: request), set: after)
        }
        switch format {
        case .json: writeOutput(JSONWriter.string(report.json(show: show), pretty: true))
        case .text: writeOutput(report.text(show: show))
        }
        if report.allowToDeny > 0 { throw ExitCode(Self.allowBecameDeny) }
    }

    /// The decision a log line recorded: `"decision": "allow"`, or the decision object's `decision`.
    static func recordedDecision(_ entry: Value) -> Decision? {
        let candidates: [Value?] = [entry["decision"], entry["result"]?["decision"], entry["result"], entry["decision"]?["decision"]]
        for candidate in candidates {
            if let text = candidate?.stringValue, let d = Decision(rawValue: text) { return d }
        }
        return nil
    }
}

/// What changed between two decisions over the same requests.
struct ReplayReport {
    struct Change {
        var line: Int
        var request: AuthzRequest
        var before: Decision
        var after: DecisionResponse
    }

    private(set) var total = 0
    private(set) var changes: [Change] = []
    var allowToDeny: Int { changes.filter { $0.before == .allow }.count }
    var denyToAllow: Int { changes.filter { $0.before == .deny }.count }

    private var byWorkload: [String: Int] = [:]
    private var byPrincipal: [String: Int] = [:]
    private var byPath: [String: Int] = [:]
    private var byPolicy: [String: Int] = [:]

    mutating func add(line: Int, request: AuthzRequest, before: Decision, after: DecisionResponse, set: PolicySnapshot) {
        total += 1
        guard before != after.decision else { return }
        changes.append(Change(line: line, request: request, before: before, after: after))
        byWorkload[DecisionText.workload(request, set.authorization), default: 0] += 1
        byPrincipal[request.source.principal ?? "(no peer identity)", default: 0] += 1
        byPath[request.http.path ?? "(no path)", default: 0] += 1
        byPolicy[after.decidedBy.map { "\($0.action.rawValue) \($0.policy)" } ?? after.reason.rawValue, default: 0] += 1
    }

    /// Largest groups first, then by name, so output is stable.
    private static func ranked(_ counts: [String: Int]) -> [(String, Int)] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
    }

    private var groups: [(String, [String: Int])] {
        [("workload", byWorkload), ("source principal", byPrincipal), ("path", byPath), ("now decided by", byPolicy)]
    }

    func text(show: Int) -> String {
        var lines = [
            "\(total) \(plural(total, "request", "requests")) replayed: \(changes.count) \(plural(changes.count, "decision changes", "decisions change")) "
                + "(\(allowToDeny) allow → deny, \(denyToAllow) deny → allow)",
        ]
        if changes.isEmpty { return lines.joined(separator: "\n") }
        for (title, counts) in groups {
            lines.append("")
            lines.append("by \(title):")
            for (key, count) in Self.ranked(counts) { lines.append("  \(String(count).leftPadded(6))  \(key)") }
        }
        lines.append("")
        lines.append("first \(min(show, changes.count)) of \(changes.count) changed requests:")
        for change in changes.prefix(show) {
            lines.append("  line \(change.line): \(change.before.rawValue) → \(DecisionText.oneLine(change.after))")
            lines.append("    \(JSONWriter.string(change.request.attributes))")
        }
        return lines.joined(separator: "\n")
    }

    func json(show: Int) -> Value {
        func table(_ counts: [String: Int]) -> Value {
            .array(Self.ranked(counts).map { ["key": .string($0.0), "count": .int($0.1)] })
        }
        return [
            "total": .int(total),
            "changed": .int(changes.count),
            "allow_to_deny": .int(allowToDeny),
            "deny_to_allow": .int(denyToAllow),
            "by_workload": table(byWorkload),
            "by_source_principal": table(byPrincipal),
            "by_path": table(byPath),
            "by_policy": table(byPolicy),
            "changes": .array(changes.prefix(show).map { change in
                [
                    "line": .int(change.line),
                    "before": .string(change.before.rawValue),
                    "after": change.after.json,
                    "attributes": change.request.attributes,
                ]
            }),
        ]
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
