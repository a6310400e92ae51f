/// A read-only hash table from strings to values, built once per policy set, looked up by raw bytes.
///
/// It uses a cheap unseeded hash instead of Swift's seeded SipHash. That is safe here because the table is built
/// from policy values only: a key taken from a request is hashed once and costs one probe run in a table whose
/// layout it cannot influence, so crafted requests cannot make lookups slower.
final class StaticTable<Value: Sendable>: @unchecked Sendable {
    private let keys: ByteStore
    private let hashes: UnsafeMutableBufferPointer<UInt64>
    private let slots: UnsafeMutableBufferPointer<Int32>
    private let mask: Int
    let values: [Value]

    convenience init(_ pairs: [(String, Value)]) {
        self.init(bytes: pairs.map { (Array($0.0.utf8), $0.1) })
    }

    init(bytes pairs: [([UInt8], Value)]) {
        var keys: [[UInt8]] = [], values: [Value] = []
        var position: [[UInt8]: Int] = [:]
        for (key, value) in pairs {
            if let i = position[key] {
                values[i] = value
            } else {
                position[key] = keys.count
                keys.append(key)
                values.append(value)
            }
        }
        var capacity = 8
        while capacity < keys.count * 2 { capacity <<= 1 }
        self.keys = ByteStore(bytes: keys)
        hashes = .allocate(capacity: max(1, keys.count))
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: -1)
        for i in keys.indices {
            let h = Self.hash(self.keys[i])
            hashes[i] = h
            var s = Int(truncatingIfNeeded: h) & (capacity - 1)
            while slots[s] >= 0 { s = (s + 1) & (capacity - 1) }
            slots[s] = Int32(i)
        }
        mask = capacity - 1
        self.values = values
    }

    deinit {
        hashes.deallocate()
        slots.deallocate()
    }

    var isEmpty: Bool { values.isEmpty }
    var count: Int { values.count }

    /// The position of the key in `values`, if present.
    @inline(__always)
    func index(of key: UnsafeBufferPointer<UInt8>) -> Int? {
        if values.isEmpty { return nil }
        let h = Self.hash(key)
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let k = Int(slots[s])
            if k < 0 { return nil }
            if hashes[k] == h && bytesEqual(keys[k], key) { return k }
            s = (s + 1) & mask
        }
    }

    @inline(__always)
    func index(of key: String) -> Int? {
        if values.isEmpty { return nil }
        return withBytes(key) { index(of: $0) }
    }

    @inline(__always)
    subscript(key: String) -> Value? {
        index(of: key).map { values[$0] }
    }

    /// A fast 64-bit hash of the bytes, eight at a time; the last word overlaps the one before it instead of
    /// being read a byte at a time (the length is hashed too, so the overlap is unambiguous).
    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        hash(bytes, seed: 0x9E37_79B9_7F4A_7C15)
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>, seed: UInt64) -> UInt64 {
        let n = bytes.count
        var h = seed ^ UInt64(truncatingIfNeeded: n)
        if let base = bytes.baseAddress, n > 0 {
            let raw = UnsafeRawPointer(base)
            if n >= 8 {
                var i = 0
                while i + 8 < n {
                    h = mix(h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                    i += 8
                }
                h = mix(h ^ raw.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
            } else if n >= 4 {
                let low = UInt64(raw.loadUnaligned(as: UInt32.self))
                let high = UInt64(raw.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
                h = mix(h ^ (low | high << 32))
            } else {
                h = mix(h ^ (UInt64(base[0]) | UInt64(base[n >> 1]) << 8 | UInt64(base[n - 1]) << 16))
            }
        }
        h ^= h >> 29
        h = h &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 32)
    }

    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        let h = x &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 31)
    }
}

/// A read-only hash table keyed by pairs of strings (a label's name and value), looked up without joining them.
final class PairTable: @unchecked Sendable {
    private let firsts: ByteStore
    private let seconds: ByteStore
    private let hashes: UnsafeMutableBufferPointer<UInt64>
    private let slots: UnsafeMutableBufferPointer<Int32>
    private let payload: UnsafeMutableBufferPointer<(Int32, Int32)>
    private let mask: Int
    let count: Int

    /// Entries are (first, second, payload); keys must be distinct.
    init(_ entries: [(String, String, Int32, Int32)]) {
        firsts = ByteStore(entries.map(\.0))
        seconds = ByteStore(entries.map(\.1))
        count = entries.count
        var capacity = 8
        while capacity < count * 2 { capacity <<= 1 }
        mask = capacity - 1
        hashes = .allocate(capacity: max(1, count))
        payload = .allocate(capacity: max(1, count))
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: -1)
        for i in 0..<count {
            let h = Self.hash(firsts[i], seconds[i])
            hashes[i] = h
            payload[i] = (entries[i].2, entries[i].3)
            var s = Int(truncatingIfNeeded: h) & mask
            while slots[s] >= 0 { s = (s + 1) & mask }
            slots[s] = Int32(i)
        }
    }

    deinit {
        hashes.deallocate()
        slots.deallocate()
        payload.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    func range(_ first: String, _ second: String) -> (Int32, Int32)? {
        withBytes(first) { a in withBytes(second) { b in range(a, b) } }
    }

    @inline(__always)
    func range(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> (Int32, Int32)? {
        let h = Self.hash(a, b)
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let k = Int(slots[s])
            if k < 0 { return nil }
            if hashes[k] == h && bytesEqual(firsts[k], a) && bytesEqual(seconds[k], b) { return payload[k] }
            s = (s + 1) & mask
        }
    }

    /// The second string's hash is seeded with the first's, so the pair is hashed in one pass over each.
    @inline(__always)
    private static func hash(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        StaticTable<Bool>.hash(b, seed: StaticTable<Bool>.hash(a))
    }
}
