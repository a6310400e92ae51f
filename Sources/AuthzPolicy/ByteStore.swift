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

/// Compares two byte buffers eight bytes at a time.
@inline(__always)
func bytesEqual(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
    guard x.count == y.count else { return false }
    let a = UnsafeRawBufferPointer(x), b = UnsafeRawBufferPointer(y)
    var i = 0
    while i + 8 <= a.count {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < a.count {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
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
