import Foundation
import NIOCore
import NIOPosix

/// How many event loops a process runs, and where blocking work goes.
public enum EventLoops {
    /// Sizes the process's event loops to `threads` and runs Swift tasks on them too, so a request is read,
    /// handled and answered on one thread. Without it each request hops from the loop to Swift's thread pool and
    /// back, and on a machine with few cores those hops (context switches) cost more than the work. Call once,
    /// before anything starts: blocking work then goes to `NIOThreadPool` (`blocking(_:)`).
    public static func runTasksOnEventLoops(threads: Int) {
        NIOSingletons.groupLoopCountSuggestion = threads
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// Sizes the event loops to one per core the process may run on. NIO counts cgroup limits; this also honours
    /// the CPU affinity mask (taskset, a cpuset), so a process pinned to one core does not run loops that take
    /// turns on it. Call once, before anything starts.
    public static func sizeToUsableCores() {
        NIOSingletons.groupLoopCountSuggestion = usableCores()
    }

    static func usableCores() -> Int {
        let cores = System.coreCount
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }),
              let allowed = allowedCPUCount(String(line.dropFirst("Cpus_allowed_list:".count)))
        else { return cores }
        return max(1, min(cores, allowed))
    }

    /// The number of CPUs in a Linux CPU list such as `0-3,8,10-11`; nil when it does not parse.
    static func allowedCPUCount(_ list: String) -> Int? {
        var count = 0
        for range in list.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let bounds = range.split(separator: "-").map { Int($0) }
            switch bounds.count {
            case 1: guard bounds[0] != nil else { return nil }; count += 1
            case 2:
                guard let low = bounds[0], let high = bounds[1], high >= low else { return nil }
                count += high - low + 1
            default: return nil
            }
        }
        return count > 0 ? count : nil
    }

    /// Runs blocking work (compiling a policy set, reading files) on NIO's blocking pool, never on an event loop.
    public static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }
}
