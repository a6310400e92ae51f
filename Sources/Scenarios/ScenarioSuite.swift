import Conformance
import Documents
import Foundation
import PolicyCore

/// Runs the scenarios of `conformance/scenarios/`, one after another (each starts several processes; the
/// machines this runs on have few cores).
public enum ScenarioSuite {
    /// The scenario files directly under `directory` (its subdirectories hold data the scenarios read).
    public static func files(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { directory + "/" + $0 }
    }

    /// Loads, then runs, one scenario file. `progress` hears which step is running.
    public static func run(
        file: String, environment: ScenarioEnvironment, progress: @Sendable (String) -> Void = { _ in }
    ) async -> CaseResult {
        let (loaded, diagnostics) = Scenario.load(path: file)
        guard let scenario = loaded else {
            let errors = diagnostics.filter(\.isError).sortedByPlace().map(\.description)
            return CaseResult(file: file, note: "(file)", failure: errors.joined(separator: "\n"))
        }
        return await run(scenario, environment: environment, progress: progress)
    }

    public static func run(
        _ scenario: Scenario, environment: ScenarioEnvironment, progress: @Sendable (String) -> Void = { _ in }
    ) async -> CaseResult {
        var result = CaseResult(file: scenario.file, note: scenario.title)
        result.profiles = scenario.profiles
        result.features = scenario.features
        let missing = scenario.requiredCommands.subtracting(environment.commands).sorted()
        if !missing.isEmpty {
            result.skipped = "needs " + missing.map { "`warden \($0)`" }.joined(separator: " and ") + ", which this build does not have"
            return result
        }
        if Program.find("curl") == nil, scenario.steps.contains(where: { if case .request = $0.action { true } else { false } }) {
            result.failure = "`curl` is not installed (Debian's `curl`; scripts/test installs it)"
            return result
        }
        let run: ScenarioRun
        do {
            run = try ScenarioRun(scenario, environment: environment)
        } catch {
            result.failure = "\(error)"
            return result
        }
        do {
            progress("starting")
            try await run.prepare()
            try await run.startAll()
            for (index, step) in scenario.steps.enumerated() {
                progress("step \(index + 1)/\(scenario.steps.count): \(step.note)")
                if let failure = await run.perform(step) {
                    result.failure = "\(scenario.file):\(step.line): \(step.note): \(failure)\nlogs:\n\(run.logs())"
                    break
                }
            }
        } catch {
            result.failure = "\(error)\nlogs:\n\(run.logs())"
        }
        await run.shutdown()
        return result
    }
}
