import Foundation
import PolicyCore

/// The results of one `warden conformance` run, grouped by area (`authz`, `extauthz`, `jwt`, `rego`,
/// `scenarios`), and the ways to show them: a table per area, JUnit XML, JSON, and a conformance report in the
/// manner of the Gateway API's (per profile: counts and the features covered), stable from run to run so that two
/// reports diff cleanly.
public struct ConformanceResults: Sendable {
    public struct Area: Sendable {
        public var name: String
        public var results: [CaseResult]

        public init(name: String, results: [CaseResult]) {
            self.name = name
            self.results = results
        }

        public var passed: Int { results.count { $0.passed } }
        public var failed: Int { results.count { $0.failed } }
        public var skipped: Int { results.count { $0.skipped != nil } }
    }

    public var areas: [Area]
    /// The suite's root, stripped from file names in features.
    public var root: String

    public init(areas: [Area], root: String) {
        self.areas = areas
        self.root = root
    }

    public var all: [CaseResult] { areas.flatMap(\.results) }
    public var passed: Int { areas.reduce(0) { $0 + $1.passed } }
    public var failed: Int { areas.reduce(0) { $0 + $1.failed } }
    public var skipped: Int { areas.reduce(0) { $0 + $1.skipped } }

    /// `N passed, N failed`, with `, N skipped` when some were.
    public var summary: String {
        "\(passed) passed, \(failed) failed" + (skipped > 0 ? ", \(skipped) skipped" : "")
    }

    // MARK: - Profiles

    /// The report's profiles, in order, with their titles.
    public static let profiles: [(name: String, title: String)] = [
        ("authorization-policy", "authorization policy"), ("peer-authentication", "peer authentication"),
        ("request-authentication", "request authentication"), ("ext-authz-grpc", "ext_authz gRPC"),
        ("ext-authz-http", "ext_authz HTTP"), ("rego", "Rego"), ("ca", "CA"), ("management-api", "management API"),
    ]

    /// The profile of an in-process area's cases.
    public static let areaProfiles: [String: String] = [
        "authz": "authorization-policy", "extauthz": "ext-authz-grpc", "jwt": "request-authentication", "rego": "rego",
    ]

    func profiles(of result: CaseResult, area: String) -> [String] {
        if !result.profiles.isEmpty { return result.profiles }
        return Self.areaProfiles[area].map { [$0] } ?? []
    }

    /// A case's features: as declared, else its file relative to the suite (`authz/conditions`).
    func features(of result: CaseResult) -> [String] {
        if !result.features.isEmpty { return result.features }
        var path = result.file
        if path.hasPrefix(root + "/") { path = String(path.dropFirst(root.count + 1)) }
        for suffix in [".yaml", ".yml"] where path.hasSuffix(suffix) { path = String(path.dropLast(suffix.count)) }
        return [path]
    }

    // MARK: - Text

    /// One row per area: cases, passed, failed, skipped.
    public var table: String {
        let rows = areas.map { [$0.name, String($0.results.count), String($0.passed), String($0.failed), String($0.skipped)] }
        let header = ["area", "cases", "passed", "failed", "skipped"]
        let widths = (0..<header.count).map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == 0 ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[index] - cell.count) + cell
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    // MARK: - JSON

    public var json: Value {
        func entry(_ result: CaseResult) -> Value {
            var o: [Value: Value] = ["file": .string(result.file), "note": .string(result.note)]
            o["result"] = .string(result.failed ? "failed" : result.skipped != nil ? "skipped" : "passed")
            if let failure = result.failure { o["failure"] = .string(failure) }
            if let skipped = result.skipped { o["reason"] = .string(skipped) }
            return .object(o)
        }
        return [
            "passed": .int(passed), "failed": .int(failed), "skipped": .int(skipped),
            "areas": .array(areas.map { area in
                ["area": .string(area.name), "passed": .int(area.passed), "failed": .int(area.failed), "skipped": .int(area.skipped)]
            }),
            "failures": .array(all.filter(\.failed).map(entry)),
            "skips": .array(all.filter { $0.skipped != nil }.map(entry)),
        ]
    }

    // MARK: - JUnit

    /// JUnit XML as CI systems read it: one test suite per area, one test case per case or scenario.
    public var junit: String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"warden conformance\" tests=\"\(all.count)\" failures=\"\(failed)\" skipped=\"\(skipped)\">\n"
        for area in areas {
            out += "  <testsuite name=\"\(Self.xml(area.name))\" tests=\"\(area.results.count)\" failures=\"\(area.failed)\" skipped=\"\(area.skipped)\">\n"
            for result in area.results {
                let className = features(of: result).first.map { $0.replacingOccurrences(of: "/", with: ".") } ?? area.name
                out += "    <testcase classname=\"\(Self.xml(className))\" name=\"\(Self.xml(result.note))\" file=\"\(Self.xml(result.file))\""
                if let failure = result.failure {
                    let message = failure.split(separator: "\n").first.map(String.init) ?? failure
                    out += ">\n      <failure message=\"\(Self.xml(message))\">\(Self.xml(failure))</failure>\n    </testcase>\n"
                } else if let reason = result.skipped {
                    out += ">\n      <skipped message=\"\(Self.xml(reason))\"/>\n    </testcase>\n"
                } else {
                    out += "/>\n"
                }
            }
            out += "  </testsuite>\n"
        }
        return out + "</testsuites>\n"
    }

    static func xml(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n", "\t", "\r": out.unicodeScalars.append(scalar)
            default:
                // Control characters are not allowed in XML 1.0.
                if scalar.value < 0x20 { out += "?" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    // MARK: - The conformance report

    /// Who produced the results.
    public struct Implementation: Sendable {
        public var version: String
        public var commit: String
        public var date: String
        /// How the run was narrowed (`--only`, `--filter`); nil for a full run.
        public var narrowedBy: String?

        public init(version: String, commit: String, date: String, narrowedBy: String? = nil) {
            self.version = version
            self.commit = commit
            self.date = date
            self.narrowedBy = narrowedBy
        }
    }

    /// The report as YAML: per profile, a result (`success`, `partial` when some cases were skipped, `failure`),
    /// the counts, and the features covered (some case of the feature passed, none failed), failed (some case
    /// failed) and skipped (no case of the feature ran). Lists are
    /// sorted and the layout fixed, so only real changes show in a diff of two reports.
    public func report(_ implementation: Implementation) -> String {
        func quoted(_ text: String) -> String { JSONWriter.string(.string(text)) }
        var out = """
            # Warden conformance report: keep it with a release; diff two reports to see what changed.
            apiVersion: warden.conformance/v1
            kind: ConformanceReport
            implementation:
              project: warden
              version: \(quoted(implementation.version))
              commit: \(quoted(implementation.commit))
            date: \(quoted(implementation.date))
            mode: \(implementation.narrowedBy.map { quoted("partial: " + $0) } ?? "full")
            statistics: {passed: \(passed), failed: \(failed), skipped: \(skipped)}
            profiles:

            """
        for (name, title) in Self.profiles {
            var counts = (passed: 0, failed: 0, skipped: 0)
            var byFeature: [String: (passed: Int, failed: Int, skipped: Int)] = [:]
            var skips: [String: String] = [:]
            for area in areas {
                for result in area.results where profiles(of: result, area: area.name).contains(name) {
                    if result.failed { counts.failed += 1 } else if result.skipped != nil { counts.skipped += 1 } else { counts.passed += 1 }
                    for feature in features(of: result) {
                        var entry = byFeature[feature] ?? (0, 0, 0)
                        if result.failed { entry.failed += 1 } else if result.skipped != nil { entry.skipped += 1 } else { entry.passed += 1 }
                        byFeature[feature] = entry
                    }
                    if let reason = result.skipped { skips[result.file] = reason }
                }
            }
            let covered = byFeature.filter { $0.value.failed == 0 && $0.value.passed > 0 }.keys.sorted()
            let failedFeatures = byFeature.filter { $0.value.failed > 0 }.keys.sorted()
            let skippedFeatures = byFeature.filter { $0.value.failed == 0 && $0.value.passed == 0 }.keys.sorted()
            let result = counts.failed > 0 ? "failure" : counts.passed + counts.skipped == 0 ? "not-run"
                : counts.skipped > 0 ? "partial" : "success"
            out += "- name: \(name)\n  title: \(quoted(title))\n  result: \(result)\n"
            out += "  statistics: {passed: \(counts.passed), failed: \(counts.failed), skipped: \(counts.skipped)}\n"
            func list(_ key: String, _ items: [String]) {
                out += items.isEmpty ? "  \(key): []\n" : "  \(key):\n" + items.map { "  - \(quoted($0))\n" }.joined()
            }
            list("coveredFeatures", covered)
            list("failedFeatures", failedFeatures)
            list("skippedFeatures", skippedFeatures)
            if !skips.isEmpty {
                out += "  skipped:\n" + skips.sorted { $0.key < $1.key }.map {
                    "  - {file: \(quoted(relative($0.key))), reason: \(quoted($0.value))}\n"
                }.joined()
            }
        }
        return out
    }

    func relative(_ path: String) -> String {
        path.hasPrefix(root + "/") ? String(path.dropFirst(root.count + 1)) : path
    }
}
