import Foundation
import PolicyCore
import Rego
import Testing
import WardenTesting

/// Replays `Fixtures/numbers.jsonl` (seeded random operations with OPA's answers, written by
/// `scripts/make-number-fixture.py`) through Warden's builtins and compares the exact text.
@Suite struct NumberFixtureTests {
    struct Row {
        var op: String
        var args: [String]
        var result: String?
        var error: String?
    }

    static func rows() throws -> [Row] {
        let text = try String(contentsOfFile: Repository.path("Tests/RegoTests/Fixtures/numbers.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let value = try JSONReader.parse(String(line))
            return Row(
                op: value["op"]!.stringValue!,
                args: value["args"]!.arrayValue!.map { $0.stringValue! },
                result: value["result"]?.stringValue,
                error: value["error"]?.stringValue
            )
        }
    }

    @Test func everyRowMatchesOPA() throws {
        let rows = try Self.rows()
        #expect(rows.count >= 1000)
        var failures: [String] = []
        for row in rows {
            let operands = row.args.map { Value.number(Number(literal: $0)!) }
            let got: String
            switch callWith(row.op, operands) {
            case .value(let v): got = JSONWriter.string(v)
            case .undefined: got = "undefined"
            case .error(let kind, let message): got = "\(kind.rawValue): \(row.op): \(message)"
            }
            let want = row.result ?? row.error ?? "?"
            if got != want { failures.append("\(row.op)(\(row.args.joined(separator: ", "))): got \(got), want \(want)") }
        }
        let report = failures.prefix(40).joined(separator: "\n")
        #expect(failures.isEmpty, "\(failures.count) of \(rows.count) differ:\n\(report)")
    }
}
