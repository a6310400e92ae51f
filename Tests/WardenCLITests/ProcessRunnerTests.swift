import Foundation
import Testing
import WardenTesting

/// The test harness's own runner of programs keeps its time limit.
@Suite struct ProcessRunnerTests {
    /// A shell that leaves a background program behind (its output sent elsewhere) has exited, but Foundation learns
    /// of that only through a descriptor the background program inherited. The wait for the exit is bounded by the
    /// same time limit instead of lasting as long as the background program (20 s here).
    @Test func aChildWhoseExitIsHiddenByWhatItLeftRunningTimesOut() async throws {
        await #expect(throws: ProcessRunner.TimedOut.self) {
            try await ProcessRunner.run("/bin/bash", ["-c", "sleep 20 >/dev/null 2>&1 & echo $!"], timeout: .seconds(3))
        }
    }
}
