import ArgumentParser
import DecisionPoint
import Foundation
import PolicyCore

/// `warden bench`: measures decision cost inside one process, in the manner of `opa bench`.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure how long decisions take: warm up, then repeated timed passes over the requests."
    )

    @Option(name: .long, help: "Policy files or directories (repeatable).")
    var policies: [String]

    @Option(name: .long, help: "Requests, one per line in the flat attribute form (JSON Lines; `-` for standard input).")
    var requests: String

    @OptionGroup var policyOptions: PolicyOptions

    @Option(help: "Timed passes over all requests.")
    var passes = 20

    @Option(help: "Untimed passes first, to warm caches.")
    var warmup = 2

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    func validate() throws {
        guard passes > 0, warmup >= 0 else { throw ValidationError("--passes must be positive and --warmup not negative") }
    }

    func run() throws {
        let snapshot = try loadSnapshot(policies, options: policyOptions)
        var batch: [AuthzRequest] = []
        var lineNumber = 0
        for line in try readInput(requests).split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy(\.isWhitespace) { continue }
            do {
                batch.append(try AuthzRequest(attributes: JSONReader.parse(String(line))))
            } catch {
                throw usage("\(requests):\(lineNumber): \(error)")
            }
        }
        guard !batch.isEmpty else { throw usage("\(requests): no requests") }
        let result = Bench.measure(passes: passes, warmup: warmup, count: batch.count) {
            var allowed = 0
            for request in batch where snapshot.decide(request).decision == .allow { allowed += 1 }
            return allowed
        }
        switch format {
        case .json: writeOutput(JSONWriter.string(result.json(kind: "authorization-policy", items: batch.count), pretty: true))
        case .text: writeOutput(result.text(kind: "AuthorizationPolicy decisions", items: batch.count))
        }
    }
}

/// Timing shared by the bench modes: per-pass nanoseconds per item, summarised over passes.
enum Bench {
    struct Result {
        var passes: [Double]  // ns per item, one entry per timed pass
        var median: Double { percentile(0.5) }

        func percentile(_ p: Double) -> Double {
            let sorted = passes.sorted()
            let rank = Int((p * Double(sorted.count - 1)).rounded())
            return sorted[min(max(rank, 0), sorted.count - 1)]
        }

        func json(kind: String, items: Int) -> Value {
            [
                "kind": .string(kind),
                "items": .int(items),
                "passes": .int(passes.count),
                "median_ns": .double(median.rounded(toPlaces: 1)),
                "per_second": .int(Int(1e9 / median)),
                "p50_ns": .double(percentile(0.5).rounded(toPlaces: 1)),
                "p99_ns": .double(percentile(0.99).rounded(toPlaces: 1)),
                "allocations_per_decision": .null,
            ]
        }

        func text(kind: String, items: Int) -> String {
            """
            \(kind): \(items) per pass, \(passes.count) timed passes
              median     \(String(format: "%.1f", median)) ns per decision (\(Int(1e9 / median)) per second)
              p50 / p99  \(String(format: "%.1f", percentile(0.5))) / \(String(format: "%.1f", percentile(0.99))) ns across passes
              allocations per decision: not measured by this command (see BENCHMARKS.md)
            """
        }
    }

    static func measure(passes: Int, warmup: Int, count: Int, _ pass: () -> Int) -> Result {
        var sink = 0
        for _ in 0..<warmup { sink &+= pass() }
        var times: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<passes {
            let elapsed = clock.measure { sink &+= pass() }
            let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
            times.append(ns / Double(count))
        }
        blackHole(sink)
        return Result(passes: times)
    }
}

@inline(never)
func blackHole(_ value: Int) {
    if value == Int.min { print("") }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
