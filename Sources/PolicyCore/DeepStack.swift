#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs work whose recursion follows the nesting of its input (parsing and compiling Rego) on a thread of its
/// own with a stack sized for the deepest input `InputLimits` lets through, and waits for it.
///
/// The nesting bound keeps the recursion finite; this keeps it independent of the caller's stack, which may be
/// a small one (a thread pool's, or a process started with a low `ulimit -s`). The stack is reserved address
/// space: only the pages the work touches are ever committed.
public enum DeepStack {
    /// The stack `run` gives the work for a nesting bound: 64 KiB per level (a debug build's recursive-descent
    /// parser and compiler use about a third of that), and at least 16 MiB.
    public static func bytes(forDepth depth: Int) -> Int {
        max(16 << 20, min(depth, 1 << 14) * (64 << 10))
    }

    /// Runs `body` on a new thread with a stack of `stackBytes` and returns its result. When no thread can be
    /// started, `body` runs on the caller's thread.
    public static func run<T>(stackBytes: Int, _ body: () -> T) -> T {
        withoutActuallyEscaping(body) { body in
            var result: T?
            let job = Job { result = body() }
            let context = Unmanaged.passRetained(job).toOpaque()
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            defer { pthread_attr_destroy(&attributes) }
            pthread_attr_setstacksize(&attributes, stackBytes)
            #if canImport(Darwin)
            var thread: pthread_t?
            #else
            var thread = pthread_t()
            #endif
            let started = pthread_create(&thread, &attributes, { context in
                #if canImport(Darwin)
                Unmanaged<Job>.fromOpaque(context).takeRetainedValue().work()
                #else
                Unmanaged<Job>.fromOpaque(context!).takeRetainedValue().work()
                #endif
                return nil
            }, context)
            guard started == 0 else {
                Unmanaged<Job>.fromOpaque(context).release()
                return body()
            }
            #if canImport(Darwin)
            pthread_join(thread!, nil)
            #else
            pthread_join(thread, nil)
            #endif
            return result!
        }
    }

    /// The work, handed to the thread that runs it; the caller reads its result only after joining that thread.
    private final class Job: @unchecked Sendable {
        let work: () -> Void

        init(_ work: @escaping () -> Void) { self.work = work }
    }
}
