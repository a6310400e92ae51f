import Benchmark
import DecisionPoint
import Foundation
import PolicyCore
import PolicyLoading

// Decision cost of the AuthorizationPolicy engine on the workloads of `make-workload.py`: 100 policies over 20
// workloads and 1,000 over 200 (about five one-rule policies select each workload; rules cycle through every
// matcher kind; mesh-wide AUDIT and DENY policies in the root namespace), deciding 5,000 varied requests in turn.
// One iteration is one `PolicySnapshot.decide`, as `warden bench` times it (the request moved in and out); the
// malloc counter shows what a decision allocates, and `swift package benchmark thresholds check --target
// AuthzPolicyBenchmarks` fails when a decision allocates at all (the p90 thresholds under `Thresholds/` allow no
// malloc, with no tolerance).
//
// Write the workloads once:
//   AuthzPolicyBenchmarks/make-workload.py 100 20 .build/authz-100
//   AuthzPolicyBenchmarks/make-workload.py 1000 200 .build/authz-1000
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(5),
        maxIterations: 1_000_000,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])]
    )
    for (policies, workloads) in [(100, 20), (1_000, 200)] {
        // The workload is read before the first measured iteration.
        let workload = { policies == 100 ? Workload.small : Workload.large }
        Benchmark("decide_\(policies)_policies_\(workloads)_workloads") { benchmark in
            let workload = workload()
            let snapshot = workload.snapshot
            var requests = workload.requests
            // Each request is moved out of the array for its decision and back after it, as `warden bench` does:
            // deciding `requests[i]` copies the request first, retaining and releasing every string it holds
            // (about 900 instructions a decision that are the loop's, not the engine's).
            requests.withUnsafeMutableBufferPointer { buffer in
                var i = 0
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    let request = (buffer.baseAddress! + i).move()
                    blackHole(snapshot.decide(request, input: NoProviderInput()))
                    (buffer.baseAddress! + i).initialize(to: consume request)
                    i += 1
                    if i == buffer.count { i = 0 }
                }
                benchmark.stopMeasurement()
            }
        } setup: {
            _ = workload()
        }
    }
}

/// The workloads have no CUSTOM policies, so no provider ever asks for OPA-Envoy's input.
struct NoProviderInput: ProviderInputSource {
    func providerInput(for request: AuthzRequest) -> Value { .null }
}

struct Workload: Sendable {
    static let small = Workload(directory: ".build/authz-100")
    static let large = Workload(directory: ".build/authz-1000")

    let snapshot: PolicySnapshot
    let requests: [AuthzRequest]

    init(directory: String) {
        let (snapshot, result) = PolicyLoader().load(["\(directory)/policies.yaml"])
        guard let snapshot, !result.diagnostics.contains(where: { $0.severity == .error }) else {
            fatalError("cannot load \(directory)/policies.yaml (write it with make-workload.py): \(result.diagnostics)")
        }
        guard let text = try? String(contentsOfFile: "\(directory)/requests.jsonl", encoding: .utf8) else {
            fatalError("cannot read \(directory)/requests.jsonl (write it with make-workload.py)")
        }
        self.snapshot = snapshot
        var requests = text.split(separator: "\n").map { line in
            try! AuthzRequest(attributes: JSONReader.parse(String(line)))
        }
        // One labels dictionary per workload, as the server's check mapper hands them over.
        requests.shareWorkloadLabels()
        self.requests = requests
    }
}
