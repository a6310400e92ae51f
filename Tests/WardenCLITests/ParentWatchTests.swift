import Foundation
import Testing
import WardenTesting

/// A `warden` process started by a launcher that names itself (`WARDEN_PARENT_PID`) stops once that launcher is
/// gone, though nothing stopped it; one started without it keeps running.
@Suite(.timeLimit(.minutes(1))) struct ParentWatchTests {
    /// A shell between the launcher and `warden` passes the variable on: the shell is not the named process, so
    /// nothing is watched and the command runs to its end.
    @Test func aVariablePassedOnThroughAShellIsNotWatched() async throws {
        let out = try await ProcessRunner.run(
            "/bin/bash", ["-c", "\"$1\" upstream --listen 127.0.0.1:0 & pid=$!; sleep 2.5; kill -0 $pid && echo alive; kill $pid",
                          "launcher", Repository.wardenBinary],
            timeout: .seconds(30))
        #expect(out.stdout.contains("alive"), "\(out)")
    }

    @Test func aWardenWhoseLauncherIsGoneStops() async throws {
        // The launcher, a Python program, starts two upstreams, names itself to one of them, and exits without
        // stopping either. (Python's children inherit none of its descriptors, so neither holds its output open.)
        let launcher = """
            import os, subprocess, sys, time
            quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            watched = subprocess.Popen([sys.argv[1], "upstream", "--listen", "127.0.0.1:0"],
                                       env=dict(os.environ, WARDEN_PARENT_PID=str(os.getpid())), **quiet)
            unwatched = subprocess.Popen([sys.argv[1], "upstream", "--listen", "127.0.0.1:0"],
                                         env={k: v for k, v in os.environ.items() if k != "WARDEN_PARENT_PID"}, **quiet)
            print(watched.pid, unwatched.pid, sep="\\n", flush=True)
            time.sleep(1)
            """
        let out = try await ProcessRunner.run(try tool("python3", package: "python3"), ["-c", launcher, Repository.wardenBinary], timeout: .seconds(30))
        let pids = out.stdout.split(separator: "\n").compactMap { Int32($0) }
        try #require(pids.count == 2, "\(out)")
        let (watched, unwatched) = (pids[0], pids[1])
        defer { kill(unwatched, SIGKILL); kill(watched, SIGKILL) }
        // The watch looks once a second; the stop is SIGTERM's graceful one.
        let deadline = ContinuousClock.now + .seconds(20)
        while ScenarioCommandTests.isRunning(watched) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!ScenarioCommandTests.isRunning(watched), "the upstream whose launcher is gone still runs")
        #expect(ScenarioCommandTests.isRunning(unwatched), "an upstream without a parent to watch stopped")
    }
}
