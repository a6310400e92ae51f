import Conformance
import Testing

/// The summary, table, JUnit and report of a conformance run.
@Suite struct ConformanceReportTests {
    func results() -> ConformanceResults {
        var skipped = CaseResult(file: "/suite/scenarios/mesh.yaml", note: "through the proxy")
        skipped.skipped = "needs `warden proxy`, which this build does not have"
        skipped.profiles = ["peer-authentication"]
        skipped.features = ["STRICT"]
        var scenario = CaseResult(file: "/suite/scenarios/grpc.yaml", note: "over gRPC")
        scenario.profiles = ["authorization-policy", "ext-authz-grpc"]
        scenario.features = ["DENY"]
        return ConformanceResults(areas: [
            .init(name: "authz", results: [
                CaseResult(file: "/suite/authz/conditions.yaml", note: "a"),
                CaseResult(file: "/suite/authz/conditions.yaml", note: "b"),
                CaseResult(file: "/suite/authz/source.yaml", note: "c", failure: "expected deny, got allow"),
            ]),
            .init(name: "scenarios", results: [scenario, skipped]),
        ], root: "/suite")
    }

    @Test func summaryAndTableCountEachArea() {
        let r = results()
        #expect(r.summary == "3 passed, 1 failed, 1 skipped")
        #expect(r.table == """
            area       cases  passed  failed  skipped
            authz          3       2       1        0
            scenarios      2       1       0        1
            """)
        #expect(ConformanceResults(areas: [.init(name: "rego", results: [CaseResult(file: "f", note: "n")])], root: "/").summary
                == "1 passed, 0 failed")
    }

    @Test func junitHasOneSuitePerAreaWithFailuresAndSkips() {
        let xml = results().junit
        #expect(xml.contains(#"<testsuites name="warden conformance" tests="5" failures="1" skipped="1">"#))
        #expect(xml.contains(#"<testsuite name="authz" tests="3" failures="1" skipped="0">"#))
        #expect(xml.contains(#"<testcase classname="authz.source" name="c" file="/suite/authz/source.yaml">"#))
        #expect(xml.contains(#"<failure message="expected deny, got allow">"#))
        #expect(xml.contains(#"<skipped message="needs `warden proxy`, which this build does not have"/>"#))
    }

    @Test func reportGivesEachProfileItsCountsAndFeatures() {
        let report = results().report(.init(version: "0.1.0", commit: "abc", date: "2030-01-01T00:00:00Z"))
        #expect(report.contains("""
            - name: authorization-policy
              title: "authorization policy"
              result: failure
              statistics: {passed: 3, failed: 1, skipped: 0}
              coveredFeatures:
              - "DENY"
              - "authz/conditions"
              failedFeatures:
              - "authz/source"
              skippedFeatures: []
            """), "\(report)")
        #expect(report.contains("""
            - name: peer-authentication
              title: "peer authentication"
              result: partial
              statistics: {passed: 0, failed: 0, skipped: 1}
              coveredFeatures: []
              failedFeatures: []
              skippedFeatures:
              - "STRICT"
              skipped:
              - {file: "scenarios/mesh.yaml", reason: "needs `warden proxy`, which this build does not have"}
            """), "\(report)")
        #expect(report.contains("- name: ca\n  title: \"CA\"\n  result: not-run"))
        #expect(report.contains("mode: full"))
    }

    @Test func twoReportsOfTheSameRunDifferOnlyInTheirDate() {
        let a = results().report(.init(version: "0.1.0", commit: "abc", date: "2030-01-01T00:00:00Z"))
        let b = results().report(.init(version: "0.1.0", commit: "abc", date: "2030-01-02T00:00:00Z"))
        let different = zip(a.split(separator: "\n"), b.split(separator: "\n")).filter { $0 != $1 }
        #expect(different.count == 1)
        #expect(different.first?.0.hasPrefix("date:") == true)
    }
}
