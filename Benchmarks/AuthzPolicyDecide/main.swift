import AuthzPolicy
import Documents
import Foundation
import PolicyCore

// The AuthorizationPolicy engine alone, for counting instructions and mallocs per decision with callgrind: it
// builds only PolicyCore, AuthzPolicy and Documents (not Rego), so a release build takes minutes. It decides every
// request of DIR/requests.jsonl PASSES times with `CompiledPolicySet.decide`, the call `PolicySnapshot.decide`
// makes; two runs differing only in PASSES give the cost of the extra decisions (see BENCHMARKS.md).
//
//   swift build -c release --product AuthzPolicyDecide
//   .build/release/AuthzPolicyDecide DIR PASSES
let arguments = CommandLine.arguments
guard arguments.count == 3, let passes = Int(arguments[2]), passes >= 0 else {
    fatalError("usage: AuthzPolicyDecide DIR PASSES (DIR as make-workload.py writes it)")
}
let directory = arguments[1]
guard let policyText = try? String(contentsOfFile: "\(directory)/policies.yaml", encoding: .utf8),
    let requestText = try? String(contentsOfFile: "\(directory)/requests.jsonl", encoding: .utf8)
else { fatalError("cannot read \(directory)/policies.yaml and requests.jsonl (write them with make-workload.py)") }
let parsed = YAMLDocuments.parse(policyText, file: "policies.yaml")
let decoder = DocumentDecoder()
let policies = parsed.documents.compactMap { AuthorizationPolicy.decode($0, decoder: decoder) }
guard parsed.diagnostics.isEmpty, policies.count == parsed.documents.count else {
    fatalError("cannot load \(directory)/policies.yaml: \(parsed.diagnostics + decoder.diagnostics)")
}
let set = CompiledPolicySet(policies: policies)
var requests = requestText.utf8.split(separator: UInt8(ascii: "\n")).map { line in
    try! AuthzRequest(attributes: JSONReader.parse(String(decoding: line, as: UTF8.self)))
}
// One labels dictionary per workload, as the server's check mapper hands them over.
requests.shareWorkloadLabels()

// Each request is moved out of the array for its decision and back after it, as a server decides the request it
// has just built: deciding `requests[i]` would copy it first (the compiler cannot borrow an element across the
// call), retaining and releasing every string it holds, a cost of the loop and not of the decision.
@inline(never)
func pass(_ set: CompiledPolicySet, _ requests: inout [AuthzRequest]) -> Int {
    requests.withUnsafeMutableBufferPointer { buffer in
        var allowed = 0
        for i in buffer.indices {
            let request = (buffer.baseAddress! + i).move()
            if set.decide(request).decision == .allow { allowed += 1 }
            (buffer.baseAddress! + i).initialize(to: consume request)
        }
        return allowed
    }
}

var allowed = 0
for _ in 0..<passes { allowed += pass(set, &requests) }
print("\(policies.count) policies, \(requests.count) requests, \(passes) passes, \(allowed) allowed")
