import Conformance
import Foundation
import PolicyCore
import Testing
import WardenTesting
@testable import Scenarios

/// The scenario format: every shipped scenario reads cleanly, mistakes are reported with their places, and the
/// values and patterns scenarios use behave as documented.
@Suite struct ScenarioFormatTests {
    static let shipped = ScenarioSuite.files(in: Repository.path("conformance/scenarios")) + [Repository.path("examples/demo.yaml")]

    @Test(arguments: shipped)
    func shippedScenarioReads(path: String) throws {
        let (scenario, diagnostics) = Scenario.load(path: path)
        #expect(diagnostics.isEmpty, "\(diagnostics.map(\.description).joined(separator: "\n"))")
        let loaded = try #require(scenario)
        #expect(!loaded.steps.isEmpty)
        #expect(!loaded.profiles.isEmpty)
    }

    @Test func everySeedScenarioOfTheIssueIsThere() {
        let names = Set(Self.shipped.map { ($0 as NSString).lastPathComponent })
        #expect(names.count >= 15)
        let titles = Self.shipped.compactMap { Scenario.load(path: $0).0?.title }
        #expect(Set(titles).count == titles.count, "titles are unique")
    }

    @Test func mistakesAreReportedWithTheirPlaces() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("broken.yaml", """
            title: broken
            profiles: [peer-authentication, mesh]
            components:
            - upstream: details
              colour: blue
            - proxy: details-proxy
              upstream: nowhere
              identity: details
            steps:
            - note: a request to nothing
              request: {to: missing, path: /}
              expect: {status: 200, exit: 56}
            - stop: details
              within: soon
            - note: a list of exits holds only integers
              request: {to: details, path: /}
              expect: {exit: [55, reset]}
            """)
        let (scenario, diagnostics) = Scenario.load(path: path)
        #expect(scenario == nil)
        let text = diagnostics.map(\.description).joined(separator: "\n")
        #expect(text.contains("broken.yaml:2:"), "\(text)")
        #expect(text.contains("unknown profile `mesh`"))
        #expect(text.contains("unknown field `colour`"))
        #expect(text.contains("`upstream: nowhere` names no proxy or server or upstream component"))
        #expect(text.contains("`identity: details` names no identity"))
        #expect(text.contains("`to: missing` names no component"))
        #expect(text.contains("expect either `status` or `exit`"))
        #expect(text.contains("broken.yaml:14:"), "the bad duration's place\n\(text)")
        #expect(text.contains("broken.yaml:17:23: steps[2].expect.exit[1]: expected an integer"), "\(text)")
    }

    @Test func anExitIsOneCodeOrAnyOfAList() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("exits.yaml", """
            title: exits
            profiles: [management-api]
            components:
            - upstream: details
            steps:
            - note: one code
              request: {to: details, path: /}
              expect: {exit: 56}
            - note: any of these
              request: {to: details, path: /}
              expect: {exit: [35, 55, 56]}
            """)
        let (scenario, diagnostics) = Scenario.load(path: path)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let exits = (scenario?.steps ?? []).compactMap { step -> [Int]? in
            if case .request(let request) = step.action { return request.expect.exit }
            return nil
        }
        #expect(exits == [[56], [35, 55, 56]])
    }

    @Test func aGRPCStepIsAnEmptyPOSTAndItsTrailersAreReadApart() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("grpc.yaml", """
            title: grpc
            profiles: [ext-authz-grpc]
            components:
            - server: workload
            steps:
            - note: a call
              request: {to: workload, grpc: true, path: /grpc.health.v1.Health/Check}
              expect: {status: 200, trailers: {grpc-status: "0"}}
            - note: a call has no body of its own
              request: {to: workload, grpc: true, body: x}
              expect: {status: 200}
            """)
        let (_, diagnostics) = Scenario.load(path: path)
        #expect(diagnostics.map(\.description).joined().contains("a `grpc` call is a POST with an empty message"))

        // curl's header dump: an interim answer, the response's fields, then the trailer section.
        let dump = "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 200 \r\ncontent-type: application/grpc\r\n\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n"
        let (headers, trailers) = ScenarioRun.lastResponseFields(dump)
        #expect(headers.map(\.name) == ["content-type"])
        #expect(trailers.map { "\($0.name)=\($0.value)" } == ["grpc-status=0", "grpc-message=ok"])
        #expect(ScenarioRun.lastResponseFields("HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\n").trailers.isEmpty)
    }

    @Test func requiredCommandsFollowTheComponents() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("s.yaml", """
            profiles: [ca]
            ca: {trust_domain: example.org}
            identities: {web: {}}
            components:
            - upstream: web
            - server: warden
            - proxy: web-proxy
              upstream: web
              identity: web
            steps:
            - request: {to: web-proxy, as: web}
              expect: {status: 200, certificate: web}
            """)
        let scenario = try #require(Scenario.load(path: path).0)
        #expect(scenario.requiredCommands == ["upstream", "serve", "proxy", "ca"])
        #expect(scenario.trustDomain == "example.org")
        #expect(scenario.identities.first?.dnsNames == ["web", "localhost", "127.0.0.1"])
    }

    @Test func globsMatchAsDocumented() {
        #expect(ValuePattern.glob("Bearer realm=*", "Bearer realm=\"https://x\""))
        #expect(ValuePattern.glob("By=a;Hash=*;URI=b", "By=a;Hash=00ff;URI=b"))
        #expect(!ValuePattern.glob("By=a;Hash=*;URI=b", "By=a;Hash=00ff;URI=b,By=evil"))
        #expect(ValuePattern.glob("*", ""))
        #expect(!ValuePattern.glob("a*a", "a"))
        #expect(ValuePattern.glob("exact", "exact"))
        #expect(!ValuePattern.glob("exact", "exactly"))
    }

    @Test func valuesMatchBySubset() throws {
        let line = try JSONReader.parse(#"{"result":"allow","audit":true,"decision":{"audits":[{"policy":"istio-system/a","rule":0}]}}"#)
        #expect(ValuePattern.matches(try JSONReader.parse(#"{"audit":true,"decision":{"audits":[{"policy":"istio-system/*"}]}}"#), line))
        #expect(!ValuePattern.matches(try JSONReader.parse(#"{"audit":false}"#), line))
        #expect(!ValuePattern.matches(try JSONReader.parse(#"{"decision":{"dry_run":[{"policy":"x"}]}}"#), line))
    }

    @Test func durationsParse() {
        #expect(ScenarioDecoder.parseDuration("500ms") == .milliseconds(500))
        #expect(ScenarioDecoder.parseDuration("1.5s") == .milliseconds(1500))
        #expect(ScenarioDecoder.parseDuration("2m") == .seconds(120))
        #expect(ScenarioDecoder.parseDuration("soon") == nil)
    }
}

/// A scenario needing a command the build lacks is skipped with the reason before anything starts.
@Suite struct ScenarioSkipTests {
    @Test func aMissingCommandSkipsTheScenario() async throws {
        let path = Repository.path("conformance/scenarios/mesh-fail-closed.yaml")
        let environment = ScenarioEnvironment(
            warden: "/nonexistent/warden", commands: ["serve", "upstream"], dataDirectory: Repository.path("conformance/scenarios"),
            repository: Repository.root)
        let result = await ScenarioSuite.run(file: path, environment: environment)
        #expect(!result.passed && !result.failed)
        #expect(result.skipped == "needs `warden ca` and `warden proxy`, which this build does not have")
        #expect(result.profiles == ["ext-authz-grpc"])
    }
}
