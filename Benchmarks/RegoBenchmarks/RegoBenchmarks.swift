import Benchmark
import Foundation
import PolicyCore
import Rego

// Per-decision cost of the Rego engine on an OPA-Envoy authorization policy (policy/authz.rego: about twenty
// rules over SPIFFE principals, parsed paths, methods, headers and verified JWT claims) for 10,000 varied
// requests. Inputs are parsed before measuring: `evaluate` is the engine alone, `parse input` the JSON reading
// alone. The same policy and inputs run in OPA with `opa-oracle bench` (see BENCHMARKS.md).
//
// The inputs come from `make-inputs.py` (seeded); generate them once:
//   RegoBenchmarks/make-inputs.py > .build/rego-inputs.jsonl
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(5),
        maxIterations: 1_000_000
    )
    let workload = RegoWorkload.shared

    Benchmark("evaluate/allow") { benchmark in
        let inputs = workload.inputs
        var i = 0
        for _ in benchmark.scaledIterations {
            blackHole(workload.allow.evaluateValue(input: inputs[i % inputs.count]))
            i &+= 1
        }
    }

    Benchmark("evaluate/response object") { benchmark in
        let inputs = workload.inputs
        var i = 0
        for _ in benchmark.scaledIterations {
            blackHole(workload.response.evaluateValue(input: inputs[i % inputs.count]))
            i &+= 1
        }
    }

    Benchmark("parse input") { benchmark in
        let lines = workload.lines
        var i = 0
        for _ in benchmark.scaledIterations {
            blackHole(try? JSONReader.parse(lines[i % lines.count]))
            i &+= 1
        }
    }

    Benchmark("compile policy", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? RegoPolicySet.compile(modules: [workload.source]))
        }
    }

    tokenBenchmarks()
}

struct RegoWorkload: Sendable {
    let source: RegoModuleSource
    let allow: RegoQuery
    let response: RegoQuery
    let lines: [[UInt8]]
    let inputs: [Value]

    static let shared = RegoWorkload()

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    init() {
        let policyPath = Self.directory.appendingPathComponent("policy/authz.rego").path
        let inputsPath = ProcessInfo.processInfo.environment["WARDEN_REGO_BENCH_INPUTS"]
            ?? Self.directory.deletingLastPathComponent().appendingPathComponent(".build/rego-inputs.jsonl").path
        guard let text = try? String(contentsOfFile: policyPath, encoding: .utf8) else {
            fatalError("cannot read \(policyPath)")
        }
        guard let inputText = try? String(contentsOfFile: inputsPath, encoding: .utf8) else {
            fatalError("cannot read \(inputsPath): run RegoBenchmarks/make-inputs.py > .build/rego-inputs.jsonl")
        }
        source = RegoModuleSource(path: policyPath, text: text)
        do {
            let policy = try RegoPolicySet.compile(modules: [source])
            allow = try policy.prepare(query: "data.envoy.authz.allow")
            response = try policy.prepare(query: "data.envoy.authz.response")
        } catch {
            fatalError("the benchmark policy does not compile: \(error)")
        }
        lines = inputText.split(separator: "\n").map { Array($0.utf8) }
        inputs = lines.map { try! JSONReader.parse($0) }
    }
}
