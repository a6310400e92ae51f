import Foundation
import PolicyCore
import Rego
import Testing
import WardenTesting

/// Replays `Fixtures/builtins.jsonl` (the calls of `scripts/builtin-cases/*.cases` with OPA's answers, written by
/// `scripts/make-builtin-fixture.py`) through Warden's builtins and compares results as JSON text, and errors by
/// code and message.
@Suite struct BuiltinFixtureTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var args: [String]
        var want: String

        var testDescription: String { "\(name)(\(args.joined(separator: ", ")))" }
    }

    static let rows: [Row] = {
        let path = ProcessInfo.processInfo.environment["WARDEN_BUILTIN_FIXTURE"]
            ?? Repository.path("Tests/RegoTests/Fixtures/builtins.jsonl")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8)
        else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let value = try? JSONReader.parse(String(line)) else { return nil }
            let want: String
            if let result = value["result"]?.stringValue {
                // Through Warden's reader and writer, so escapes are spelled one way (numbers keep their text).
                want = (try? JSONReader.parse(result)).map { JSONWriter.string($0) } ?? result
            } else if let error = value["error"]?.stringValue {
                want = error
            } else {
                want = "undefined"
            }
            return Row(
                name: value["name"]!.stringValue!, args: value["args"]!.arrayValue!.map { $0.stringValue! }, want: want)
        }
    }()

    /// `{"$set": [...]}` stands for a set, at any depth.
    static func operand(_ text: String) throws -> Value {
        func convert(_ v: Value) -> Value {
            switch v {
            case .object(let o):
                if o.count == 1, let elements = o[.string("$set")]?.arrayValue { return .set(Set(elements.map(convert))) }
                return .object(o.mapValues(convert))
            case .array(let a): return .array(a.map(convert))
            default: return v
            }
        }
        return convert(try JSONReader.parse(text))
    }

    @Test func fixtureIsPresent() {
        #expect(Self.rows.count > 50)
    }

    @Test(arguments: rows)
    func matchesOPA(_ row: Row) throws {
        let operands = try row.args.map(Self.operand)
        let got: String
        switch callWith(row.name, operands) {
        case .value(let v): got = JSONWriter.string(v)
        case .undefined: got = "undefined"
        case .error(let kind, let message): got = "\(kind.rawValue): \(row.name): \(message)"
        }
        #expect(got == row.want)
    }
}
