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
