/// UTF-8 bytes of policy strings, stored once in one allocation (the count, each string's bounds, then the bytes),
/// so matching compares raw bytes without reference counting or Unicode normalisation (Envoy compares bytes too),
/// and reading a store touches one place in memory.
struct ByteStore: @unchecked Sendable {
    /// Header: the count (read through its pointer: reading `header` is an exclusivity-checked access).
    /// Elements: `count + 1` `Int32` bounds, then the bytes. Never changed after `init`.
    private final class Storage: ManagedBuffer<Int, UInt8> {}
    private let storage: Storage

    init(_ strings: [String]) {
        self.init(bytes: strings.map { Array($0.utf8) })
    }

    init(bytes entries: [[UInt8]]) {
        let total = entries.reduce(0) { $0 + $1.count }
        let boundsSize = (entries.count + 1) * MemoryLayout<Int32>.stride
        storage = unsafeDowncast(
            Storage.create(minimumCapacity: boundsSize + total) { _ in entries.count }, to: Storage.self)
        storage.withUnsafeMutablePointerToElements { elements in
            let raw = UnsafeMutableRawPointer(elements)
            raw.storeBytes(of: 0, as: Int32.self)
            var offset = 0
            for (i, entry) in entries.enumerated() {
                for b in entry {
                    elements[boundsSize + offset] = b
                    offset += 1
                }
                raw.storeBytes(of: Int32(offset), toByteOffset: (i + 1) * MemoryLayout<Int32>.stride, as: Int32.self)
            }
        }
    }

    @inline(__always)
    var count: Int { storage.withUnsafeMutablePointerToHeader { $0.pointee } }

    @inline(__always)
    subscript(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        storage.withUnsafeMutablePointerToElements { elements in
            let start = bound(elements, i), end = bound(elements, i + 1)
            let bytes = UnsafePointer(elements) + (count + 1) * MemoryLayout<Int32>.stride
            return UnsafeBufferPointer(start: bytes + start, count: end - start)
        }
    }

    /// Bounds sit at the start of the elements, which follow the header at an offset aligned for `Int`.
    @inline(__always)
    private func bound(_ elements: UnsafeMutablePointer<UInt8>, _ i: Int) -> Int {
        Int(UnsafeRawPointer(elements).load(fromByteOffset: i * MemoryLayout<Int32>.stride, as: Int32.self))
    }
}

/// Runs `body` on the UTF-8 bytes of `s` (in place for native strings).
@inline(__always)
func withBytes<R>(_ s: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    if let r = s.utf8.withContiguousStorageIfAvailable(body) { return r }
    return Array(s.utf8).withUnsafeBufferPointer(body)
}

/// Compares two byte buffers eight bytes at a time; the last word (or, for fewer than eight bytes, the last four
/// or the last byte) overlaps the ones before it, so no byte is compared on its own in a loop.
@inline(__always)
func bytesEqual(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
    let n = x.count
    guard n == y.count else { return false }
    guard n > 0, let pa = x.baseAddress, let pb = y.baseAddress else { return true }
    let a = UnsafeRawPointer(pa), b = UnsafeRawPointer(pb)
    if n >= 8 {
        var i = 0
        while i + 8 < n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        return a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
    }
    if n >= 4 {
        return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
            && a.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self) == b.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
    }
    return pa[0] == pb[0] && pa[n >> 1] == pb[n >> 1] && pa[n - 1] == pb[n - 1]
}

/// Whether the bytes hold an ASCII capital letter, tested eight bytes at a time.
@inline(__always)
func containsASCIIUppercase(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    let n = bytes.count
    guard n >= 8, let base = bytes.baseAddress else {
        for b in bytes where b &- 65 < 26 { return true }
        return false
    }
    let raw = UnsafeRawPointer(base)
    var i = 0
    while true {
        let offset = min(i, n - 8)
        let word = raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        // Per byte below 0x80: the high bit of `low + 0x3F` is set from `A` up, that of `low + 0x25` past `Z`.
        let low = word & 0x7F7F_7F7F_7F7F_7F7F
        if (low &+ 0x3F3F_3F3F_3F3F_3F3F) & ~(low &+ 0x2525_2525_2525_2525) & ~word & 0x8080_8080_8080_8080 != 0 {
            return true
        }
        if offset == n - 8 { return false }
        i += 8
    }
}

@inline(__always)
func hasPrefix(_ s: UnsafeBufferPointer<UInt8>, _ prefix: UnsafeBufferPointer<UInt8>) -> Bool {
    prefix.count <= s.count && bytesEqual(UnsafeBufferPointer(rebasing: s[0..<prefix.count]), prefix)
}

@inline(__always)
func hasSuffix(_ s: UnsafeBufferPointer<UInt8>, _ suffix: UnsafeBufferPointer<UInt8>) -> Bool {
    suffix.count <= s.count && bytesEqual(UnsafeBufferPointer(rebasing: s[(s.count - suffix.count)...]), suffix)
}

func bytesEqual(_ a: String, _ b: String) -> Bool {
    withBytes(a) { x in withBytes(b) { y in bytesEqual(x, y) } }
}

func hasPrefixBytes(_ s: String, _ prefix: String) -> Bool {
    withBytes(s) { x in withBytes(prefix) { y in hasPrefix(x, y) } }
}

func hasSuffixBytes(_ s: String, _ suffix: String) -> Bool {
    withBytes(s) { x in withBytes(suffix) { y in hasSuffix(x, y) } }
}
