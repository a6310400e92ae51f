import Foundation

/// Stops a process whose launcher is gone.
///
/// A launcher (the conformance runner, `warden demo`, the test harness) names itself in `WARDEN_PARENT_PID` when it
/// starts a `warden` process. Once that process is no longer this one's parent — it exited, however it ended, SIGKILL
/// and crashes included, and this process was handed to another — this process sends itself SIGTERM, the graceful
/// stop every long-running command handles, and exits 10 s later if that stop has not ended it. Launchers clean up
/// after themselves when they can; this covers the times they cannot.
public enum ParentWatch {
    public static let environmentKey = "WARDEN_PARENT_PID"

    /// The environment for a child this process launches: `base` with this process named as the parent to watch.
    public static func childEnvironment(_ base: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var environment = base
        environment[environmentKey] = String(getpid())
        return environment
    }

    /// Starts watching when `environment` names a parent (checked once a second, on a thread of its own). A named
    /// process that is alive but not this one's parent passed the variable on through another program (a shell the
    /// launcher ran): that one is not watched. One already gone is.
    public static func start(environment: [String: String] = ProcessInfo.processInfo.environment, interval: TimeInterval = 1) {
        guard let text = environment[environmentKey], let parent = Int32(text), parent > 1 else { return }
        if getppid() != parent && kill(parent, 0) == 0 { return }
        let thread = Thread {
            while getppid() == parent { Thread.sleep(forTimeInterval: interval) }
            kill(getpid(), SIGTERM)
            Thread.sleep(forTimeInterval: 10)
            exit(1)
        }
        thread.name = "parent-watch"
        thread.start()
    }
}
