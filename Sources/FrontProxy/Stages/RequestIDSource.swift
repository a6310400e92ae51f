import PolicyCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Makes `x-request-id` values: random (version 4) UUIDs in lower case, as Envoy makes them. The random bytes come
/// from the kernel's generator 4 KiB at a time (`arc4random_buf`, one `getrandom` system call for 256 IDs); asking
/// for each ID apart (Foundation's `UUID()` opens, reads and closes `/dev/urandom` here) cost three system calls on
/// every request that came without an ID.
public final class RequestIDSource: Sendable {
    public static let shared = RequestIDSource()

    static let bufferSize = 4096
    private let pool = Mutex(Pool())

    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: RequestIDSource.bufferSize)
        /// Where the next ID's 16 bytes start; at the end, the pool is refilled first.
        var offset = RequestIDSource.bufferSize
    }

    public init() {}

    public func next() -> String {
        pool.withLock { pool in
            if pool.offset + 16 > pool.bytes.count {
                pool.bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
                pool.offset = 0
            }
            defer { pool.offset += 16 }
            return pool.bytes.withUnsafeBufferPointer { Self.format($0[pool.offset..<pool.offset + 16]) }
        }
    }

    /// 16 random bytes as a version 4, variant 1 UUID: `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
    static func format(_ random: Slice<UnsafeBufferPointer<UInt8>>) -> String {
        String(unsafeUninitializedCapacity: 36) { out in
            var written = 0
            for (index, var byte) in random.enumerated() {
                if index == 6 { byte = byte & 0x0F | 0x40 }  // version 4
                if index == 8 { byte = byte & 0x3F | 0x80 }  // RFC 9562 variant
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    out[written] = UInt8(ascii: "-")
                    written += 1
                }
                out[written] = LowercaseHex.digits[Int(byte >> 4)]
                out[written + 1] = LowercaseHex.digits[Int(byte & 0x0F)]
                written += 2
            }
            return written
        }
    }
}
