import DecisionPoint
import ExtAuthz
import Foundation
import Networking
import PolicyCore
import PolicyLoading
import WardenServer

// The server's whole check without the network, for counting instructions per check with callgrind: the bytes
// of the load test's CheckRequest (Benchmarks/check-request.py) go PASSES times through the in-place gRPC method
// `warden serve` answers Check with (decode, map, decide on the policies of POLICIES, render, encode, metrics).
// Two runs differing only in PASSES give the cost of the extra checks (see BENCHMARKS.md).
//
//   swift build -c release --product CheckPathRun
//   .build/release/CheckPathRun POLICIES REQUEST PASSES      (REQUEST as check-request.py writes it)
let arguments = CommandLine.arguments
guard arguments.count == 4, let passes = Int(arguments[3]), passes >= 0,
    let framed = FileManager.default.contents(atPath: arguments[2]), framed.count > 5
else { fatalError("usage: CheckPathRun POLICIES REQUEST PASSES") }
let request = [UInt8](framed.dropFirst(5))  // the gRPC message prefix: compression flag and length
let (snapshot, diagnostics) = PolicyLoader().load([arguments[1]])
guard let snapshot else { fatalError("cannot load \(arguments[1]): \(diagnostics)") }
let handler = CheckHandler(
    decisionPoint: DecisionPoint(snapshot: snapshot), mapper: CheckRequestMapper(), metrics: ServerMetrics(), log: nil)
let check = InPlaceMethod.check(handler)

@inline(never)
func pass(_ check: InPlaceMethod, _ request: [UInt8]) throws -> Int {
    try check.respond(request, nil).count
}

var bytes = 0
for _ in 0..<passes { bytes += try pass(check, request) }
print("\(passes) checks, \(bytes) response bytes")
