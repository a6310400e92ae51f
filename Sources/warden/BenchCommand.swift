import ArgumentParser
import DecisionPoint
import Foundation
import PolicyCore
import Rego

/// `warden bench`: measures decision cost inside one process, in the manner of `opa bench`.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure how long decisions take: warm up, then repeated timed passes over the requests."
    )

    @Option(name: .long, help: "AuthorizationPolicy files or directories (repeatable); with --requests.")
    var policies: [String] = []

    @Option(name: .long, help: "Requests, one per line in the flat attribute form (JSON Lines; `-` for standard input).")
    var requests: String?

    @OptionGroup var policyOptions: PolicyOptions

    @Option(name: [.customShort("d"), .customLong("data-path")], help: "Rego mode: a policy or data file, or a directory of them.")
    var regoPaths: [String] = []

    @Option(name: .customLong("data"), help: "Rego mode: a JSON or YAML file merged into `data` at the root.")
    var dataFiles: [String] = []

    @Option(name: [.customShort("i"), .customLong("input")], help: "Rego mode: one input document (JSON or YAML).")
    var inputFile: String?

    @Option(name: .customLong("inputs"), help: "Rego mode: input documents, one JSON value per line (`-` for standard input).")
    var inputsFile: String?

    @Argument(help: "Rego mode: the query, such as `data.envoy.authz.allow`.")
    var query: String?

    @Option(help: "Timed passes over all requests.")
    var passes = 20

    @Option(help: "Untimed passes first, to warm caches.")
    var warmup = 2

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    func validate() throws {
        guard passes > 0, warmup >= 0 else { throw ValidationError("--passes must be positive and --warmup not negative") }
        if regoPaths.isEmpty {
            guard !policies.isEmpty, requests != nil else {
                throw ValidationError(
                    "give --policies DIR --requests FILE for AuthorizationPolicy decisions, or -d REGO (-i INPUT | --inputs FILE) QUERY for Rego")
            }
            guard query == nil, inputFile == nil, inputsFile == nil else {
                throw ValidationError("a query, -i and --inputs need -d (Rego mode)")
            }
        } else {
            guard policies.isEmpty, requests == nil else {
                throw ValidationError("--policies/--requests and -d are different modes: give one of them")
            }
            guard query != nil else { throw ValidationError("Rego mode needs a query, such as `data.envoy.authz.allow`") }
            guard (inputFile == nil) != (inputsFile == nil) else { throw ValidationError("Rego mode needs one of -i and --inputs") }
        }
    }

    func run() throws {
        if let query { try benchRego(query) } else { try benchAuthorizationPolicy() }
    }

    private func benchAuthorizationPolicy() throws {
        let snapshot = try loadSnapshot(policies, options: policyOptions)
        let source = requests ?? "-"
        var batch = try Bench.lines(source) { try AuthzRequest(attributes: JSONReader.parse($0)) }
        // One labels dictionary per workload, as the server's check mapper hands them over.
        batch.shareWorkloadLabels()
        let count = batch.count
        let result = Bench.measure(passes: passes, warmup: warmup, count: count) {
            // Each request is moved out of the array for its decision and back after it, as the server decides the
            // request it has just built: deciding `batch[i]` would copy it first (the compiler does not borrow an
            // array element across the call), retaining and releasing every string it holds, which is the loop's
            // cost, not the decision's.
            batch.withUnsafeMutableBufferPointer { requests in
                var allowed = 0
                for i in requests.indices {
                    let request = (requests.baseAddress! + i).move()
                    if snapshot.decide(attributes: request).decision == .allow { allowed += 1 }
                    (requests.baseAddress! + i).initialize(to: consume request)
                }
                return allowed
            }
        }
        report(result, kind: "authorization-policy", title: "AuthorizationPolicy decisions", items: count)
    }

    private func benchRego(_ query: String) throws {
        let (files, problems) = RegoFiles.load(regoPaths, dataFiles: dataFiles, limits: policyOptions.limits.applied())
        var inputs: [Value] = []
        var inputProblems: [Diagnostic] = []
        if let inputFile, let input = RegoFiles.readValue(inputFile, &inputProblems, limits: files.limits) { inputs = [input] }
        if let problem = (problems + inputProblems).first { throw usage(problem.description) }
        if let inputsFile { inputs = try Bench.lines(inputsFile) { try JSONReader.parse($0) } }
        let prepared: RegoQuery
        do {
            prepared = try RegoPolicySet.compile(modules: files.modules, data: files.data, limits: files.limits)
                .prepare(query: query)
        } catch {
            throw usage(error.diagnostics.map(RegoError.render).joined(separator: "\n"))
        }
        // Evaluation errors would make the timings meaningless: refuse them before measuring.
        for (index, input) in inputs.enumerated() {
            if case .error(let diagnostic) = prepared.evaluate(input: input) {
                throw usage("input \(index + 1): \(RegoError.render(diagnostic))")
            }
        }
        let result = Bench.measure(passes: passes, warmup: warmup, count: inputs.count) {
            var defined = 0
            for input in inputs {
                if case .results(let results) = prepared.evaluate(input: input), !results.isEmpty { defined += 1 }
            }
            return defined
        }
        report(result, kind: "rego", title: "Rego evaluations of `\(query)`", items: inputs.count)
    }

    private func report(_ result: Bench.Result, kind: String, title: String, items: Int) {
        switch format {
        case .json: writeOutput(JSONWriter.string(result.json(kind: kind, items: items), pretty: true))
        case .text: writeOutput(result.text(kind: title, items: items))
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

    /// Reads a JSON Lines file (`-`: standard input), one item per non-blank line; a bad line is a usage error
    /// naming its place.
    static func lines<T>(_ path: String, _ parse: (String) throws -> T) throws -> [T] {
        var items: [T] = []
        var lineNumber = 0
        for line in try readInput(path).split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy(\.isWhitespace) { continue }
            do {
                items.append(try parse(String(line)))
            } catch {
                throw usage("\(path):\(lineNumber): \(error)")
            }
        }
        guard !items.isEmpty else { throw usage("\(path): nothing to measure") }
        return items
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
        let scale = Foundation.pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
