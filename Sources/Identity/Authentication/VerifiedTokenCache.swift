import Crypto
import JOSE
import Synchronization

/// A bounded least-recently-used cache of verified tokens, so a repeated token costs a hash and a lookup rather than
/// a signature check.
///
/// Entries are keyed by the SHA-256 of the token (the token itself is not kept) and the location it came from; an
/// entry lives until the token expires (with the clock skew), at most `maximumLifetime`, and only while the key set
/// that verified it keeps the same revision.
final class VerifiedTokenCache: Sendable {
    struct Key: Hashable, Sendable {
        var digest: (UInt64, UInt64, UInt64, UInt64)
        var location: Int

        static func == (a: Key, b: Key) -> Bool {
            a.digest.0 == b.digest.0 && a.digest.1 == b.digest.1 && a.digest.2 == b.digest.2
                && a.digest.3 == b.digest.3 && a.location == b.location
        }

        func hash(into hasher: inout Hasher) {
            // The digest is already uniform; one word is enough to spread the buckets.
            hasher.combine(digest.0)
            hasher.combine(location)
        }

        init(token: Substring, location: Int) {
            let digest = token.utf8.withContiguousStorageIfAvailable { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
                ?? SHA256.hash(data: Array(token.utf8))
            self.digest = digest.withUnsafeBytes { raw in
                (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                 raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            }
            self.location = location
        }
    }

    struct Entry: Sendable {
        /// The whole result, ready to return: a hit allocates nothing.
        var result: AuthenticationResult
        var validUntil: Double
        var keyRevision: UInt64

        var token: AuthenticatedToken { result.token! }
    }

    private struct Slot {
        var key: Key
        var entry: Entry
        var previous: Int
        var next: Int
    }

    private struct State: ~Copyable {
        var index: [Key: Int] = [:]
        var slots: [Slot] = []
        var free: [Int] = []
        /// Most recently used.
        var head = -1
        /// Least recently used: evicted first.
        var tail = -1

        mutating func unlink(_ i: Int) {
            let previous = slots[i].previous, next = slots[i].next
            if previous >= 0 { slots[previous].next = next } else { head = next }
            if next >= 0 { slots[next].previous = previous } else { tail = previous }
        }

        mutating func pushFront(_ i: Int) {
            slots[i].previous = -1
            slots[i].next = head
            if head >= 0 { slots[head].previous = i }
            head = i
            if tail < 0 { tail = i }
        }

        mutating func remove(_ i: Int) {
            unlink(i)
            index.removeValue(forKey: slots[i].key)
            free.append(i)
        }
    }

    let capacity: Int
    let maximumLifetime: Double
    private let state = Mutex(State())

    init(capacity: Int, maximumLifetime: Double) {
        self.capacity = max(1, capacity)
        self.maximumLifetime = maximumLifetime
    }

    /// The entry for `key` when it is still valid at `now`. The caller checks the key revision and calls
    /// `remove` for a stale entry (outside this lock, so looking up a revision never nests locks).
    func lookup(_ key: Key, now: Double) -> Entry? {
        state.withLock { state in
            guard let i = state.index[key] else { return nil }
            let entry = state.slots[i].entry
            guard now < entry.validUntil else {
                state.remove(i)
                return nil
            }
            if state.head != i {
                state.unlink(i)
                state.pushFront(i)
            }
            return entry
        }
    }

    func insert(_ key: Key, _ entry: Entry, now: Double) {
        var entry = entry
        entry.validUntil = min(entry.validUntil, now + maximumLifetime)
        guard entry.validUntil > now else { return }
        state.withLock { state in
            if let i = state.index[key] {
                state.slots[i].entry = entry
                state.unlink(i)
                state.pushFront(i)
                return
            }
            let i: Int
            if let reused = state.free.popLast() {
                i = reused
                state.slots[i] = Slot(key: key, entry: entry, previous: -1, next: -1)
            } else if state.slots.count < capacity {
                i = state.slots.count
                state.slots.append(Slot(key: key, entry: entry, previous: -1, next: -1))
            } else {
                i = state.tail
                state.unlink(i)
                state.index.removeValue(forKey: state.slots[i].key)
                state.slots[i] = Slot(key: key, entry: entry, previous: -1, next: -1)
            }
            state.index[key] = i
            state.pushFront(i)
        }
    }

    func remove(_ key: Key) {
        state.withLock { state in
            if let i = state.index[key] { state.remove(i) }
        }
    }

    var count: Int { state.withLock { $0.index.count } }
}
