import Benchmark
import Foundation
import PolicyCore
import Rego

// Per-decision cost of the io.jwt builtins in a policy (policy/jwt.rego): each rule verifies one bearer token of
// the input with decode_verify (HS256 secret, RS256 PEM key, ES256 JWKS of two keys) and checks a claim, as
// OPA-Envoy policies do. Every input line holds tokens with their own subject, so each call verifies afresh (OPA's
// token cache is off by default). The same policy and inputs run in OPA with `opa-oracle bench` (BENCHMARKS.md).
//
// The inputs come from `make-jwt-inputs.py`; generate them once:
//   RegoBenchmarks/make-jwt-inputs.py > .build/jwt-inputs.jsonl
func tokenBenchmarks() {
    let workload = TokenWorkload.shared
    for (name, query) in workload.queries {
        Benchmark("io.jwt/\(name)") { benchmark in
            let inputs = workload.inputs
            var i = 0
            for _ in benchmark.scaledIterations {
                blackHole(query.evaluateValue(input: inputs[i % inputs.count]))
                i &+= 1
            }
        }
    }
}

struct TokenWorkload: Sendable {
    let queries: [(String, RegoQuery)]
    let inputs: [Value]

    static let shared = TokenWorkload()

    init() {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let policyPath = directory.appendingPathComponent("policy/jwt.rego").path
        let inputsPath = ProcessInfo.processInfo.environment["WARDEN_JWT_BENCH_INPUTS"]
            ?? directory.deletingLastPathComponent().appendingPathComponent(".build/jwt-inputs.jsonl").path
        guard let text = try? String(contentsOfFile: policyPath, encoding: .utf8) else {
            fatalError("cannot read \(policyPath)")
        }
        guard let inputText = try? String(contentsOfFile: inputsPath, encoding: .utf8) else {
            fatalError("cannot read \(inputsPath): run RegoBenchmarks/make-jwt-inputs.py > .build/jwt-inputs.jsonl")
        }
        do {
            let policy = try RegoPolicySet.compile(modules: [RegoModuleSource(path: policyPath, text: text)])
            queries = try ["decode_verify HS256": "data.jwt.hs256", "decode_verify RS256": "data.jwt.rs256",
                           "decode_verify ES256 JWKS": "data.jwt.es256", "verify_rs256": "data.jwt.verify_rs256",
                           "decode": "data.jwt.subject"]
                .sorted { $0.key < $1.key }
                .map { ($0.key, try policy.prepare(query: $0.value)) }
        } catch {
            fatalError("the io.jwt benchmark policy does not compile: \(error)")
        }
        inputs = inputText.split(separator: "\n").map { try! JSONReader.parse(Array($0.utf8)) }
        // Every query must hold for every input, or the benchmark would time a failure path.
        for (name, query) in queries {
            for input in inputs {
                guard case .value(let value) = query.evaluateValue(input: input), value != .bool(false) else {
                    fatalError("io.jwt/\(name) does not hold for \(input)")
                }
            }
        }
    }
}
