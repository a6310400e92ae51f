/// UTF-8 bytes of policy strings, stored once in memory this object owns, so matching compares raw bytes without
/// reference counting or Unicode normalisation (Envoy compares bytes too).
final class ByteStore: @unchecked Sendable {
    private let bytes: UnsafeMutableBufferPointer<UInt8>
    private let bounds: UnsafeMutableBufferPointer<Int32>
    let count: Int

    convenience init(_ strings: [String]) {
        self.init(bytes: strings.map { Array($0.utf8) })
    }

    init(bytes entries: [[UInt8]]) {
        let total = entries.reduce(0) { $0 + $1.count }
        bytes = .allocate(capacity: max(1, total))
        bounds = .allocate(capacity: entries.count + 1)
        var offset = 0
        bounds[0] = 0
        for (i, entry) in entries.enumerated() {
            for b in entry {
                bytes[offset] = b
                offset += 1
            }
            bounds[i + 1] = Int32(offset)
        }
        count = entries.count
    }

    deinit {
        bytes.deallocate()
        bounds.deallocate()
    }

    @inline(__always)
    subscript(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: UnsafeBufferPointer(bytes)[Int(bounds[i])..<Int(bounds[i + 1])])
    }

    @inline(__always)
    func length(_ i: Int) -> Int { Int(bounds[i + 1] - bounds[i]) }
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
