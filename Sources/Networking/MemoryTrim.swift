import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Gives freed heap memory back to the system after a connection that held a lot of it closes.
///
/// glibc's malloc keeps what a burst freed in its arenas (a server that read 100 MB of requests keeps most of that
/// resident once they are gone); `malloc_trim` returns the free pages. It walks every arena under their locks, so
/// it runs off the event loops, at most once a second however many connections close.
public enum MemoryTrim {
    private static let scheduled = Atomic(false)

    #if canImport(Glibc)
    /// glibc's `malloc_trim`, which `<malloc.h>` declares and Swift's Glibc module does not import.
    private static let trim: (@convention(c) (Int) -> Int32)? = dlsym(nil, "malloc_trim").map {
        unsafeBitCast($0, to: (@convention(c) (Int) -> Int32).self)
    }
    #endif

    /// Trims within a second, unless a trim is already on its way.
    public static func soon() {
        #if canImport(Glibc)
        guard let trim, scheduled.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + .seconds(1)) {
            scheduled.store(false, ordering: .relaxed)
            _ = trim(0)
        }
        #endif
    }
}

/// Gives the heap back once a process that was busy has been quiet for a while.
///
/// A burst (a load run, a thousand connections that then close) leaves glibc's arenas holding what it freed: a proxy
/// that served 64 connections flat out kept about 50 MB more than it started with, for good. Whoever does work calls
/// `noteActivity()` (a connection opened or closed, a request answered: one relaxed atomic add); `check()`, run every
/// few seconds by a `RepeatingService`, trims when nothing happened since the previous check and something happened
/// since the last trim. Busy processes are never trimmed, so reused memory is not given back only to be faulted in
/// again, and an idle one is trimmed once.
public final class QuietMemoryTrim: Sendable {
    private let activity = Atomic(0)
    private let seen = Mutex((lastCheck: 0, lastTrim: 0))

    public init() {}

    public func noteActivity() {
        activity.add(1, ordering: .relaxed)
    }

    /// Trims (within a second, off the caller's thread) when the process went quiet since the previous call.
    public func check() {
        let now = activity.load(ordering: .relaxed)
        let trim = seen.withLock { seen in
            defer { seen.lastCheck = now }
            guard now == seen.lastCheck, now != seen.lastTrim else { return false }
            seen.lastTrim = now
            return true
        }
        if trim { MemoryTrim.soon() }
    }
}

