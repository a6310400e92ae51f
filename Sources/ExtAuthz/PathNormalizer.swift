/// Normalizes a request path before policies match it, as Envoy does with `normalize_path` (RFC 3986 section 6:
/// percent-encoded unreserved characters decoded, remaining escapes upper-cased, dot segments removed) and,
/// when configured, `merge_slashes` and the decoding of escaped slashes. Without it `/admin` could be reached as
/// `//admin`, `/a/../admin` or `/%61dmin` past a rule written for `/admin`.
public struct PathNormalizer: Sendable, Hashable {
    /// Collapse runs of `/` into one (Envoy's `merge_slashes`; Istio's `MERGE_SLASHES`).
    public var mergeSlashes: Bool
    /// Decode `%2F` and `%5C` into `/` and `\` before the other steps (Istio's `DECODE_AND_MERGE_SLASHES`).
    /// When off they stay escaped, so they can never form a segment boundary.
    public var decodeEscapedSlashes: Bool

    public init(mergeSlashes: Bool = true, decodeEscapedSlashes: Bool = false) {
        self.mergeSlashes = mergeSlashes
        self.decodeEscapedSlashes = decodeEscapedSlashes
    }

    /// The normalized form of a path (without query string). A path that does not start with `/` gets one.
    public func normalize(_ path: String) -> String {
        isNormal(path) ? path : normalizeBytes(path)
    }

    /// Whether `normalize` would give the path back unchanged (most requests), found in one scan without copying.
    func isNormal(_ path: String) -> Bool {
        let slash = UInt8(ascii: "/")
        var bytes = path.utf8.makeIterator()
        guard bytes.next() == slash else { return false }
        var segmentLength = 0
        var segmentDots = 0
        func isDotSegment() -> Bool { segmentLength > 0 && segmentLength <= 2 && segmentDots == segmentLength }
        while let c = bytes.next() {
            switch c {
            case UInt8(ascii: "%"):
                return false
            case UInt8(ascii: "\\") where decodeEscapedSlashes:
                return false
            case slash:
                if isDotSegment() || (mergeSlashes && segmentLength == 0) { return false }
                segmentLength = 0
                segmentDots = 0
            default:
                segmentLength += 1
                if c == UInt8(ascii: ".") { segmentDots += 1 }
            }
        }
        return !isDotSegment()
    }

    func normalizeBytes(_ path: String) -> String {
        var bytes = decodeUnreserved(Array(path.utf8))
        if decodeEscapedSlashes {
            // A decoded backslash becomes a separator too, as Envoy's UNESCAPE_AND_MERGE treats it.
            bytes = bytes.map { $0 == UInt8(ascii: "\\") ? UInt8(ascii: "/") : $0 }
        }
        if bytes.first != UInt8(ascii: "/") { bytes.insert(UInt8(ascii: "/"), at: 0) }
        if mergeSlashes { bytes = merged(bytes) }
        bytes = removingDotSegments(bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Decodes `%XX` escapes of unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`), and of slashes when
    /// configured; upper-cases the hex digits of every other valid escape.
    private func decodeUnreserved(_ input: [UInt8]) -> [UInt8] {
        guard input.contains(UInt8(ascii: "%")) else { return input }
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var i = 0
        while i < input.count {
            let c = input[i]
            if c == UInt8(ascii: "%"), i + 2 < input.count, let hi = Self.hex(input[i + 1]), let lo = Self.hex(input[i + 2]) {
                let decoded = hi << 4 | lo
                if Self.isUnreserved(decoded)
                    || (decodeEscapedSlashes && (decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\")))
                {
                    out.append(decoded)
                } else {
                    out.append(UInt8(ascii: "%"))
                    out.append(Self.upperHex(hi))
                    out.append(Self.upperHex(lo))
                }
                i += 3
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    private func merged(_ input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        for c in input where !(c == UInt8(ascii: "/") && out.last == UInt8(ascii: "/")) { out.append(c) }
        return out
    }

    /// RFC 3986 section 5.2.4, on a path that starts with `/`: `.` segments vanish, `..` removes the segment
    /// before it and never climbs above the root.
    private func removingDotSegments(_ input: [UInt8]) -> [UInt8] {
        // Split after the leading slash; empty segments (from `//`) are kept unless merged earlier.
        let segments = input.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        var kept: [ArraySlice<UInt8>] = []
        var trailingSlash = false
        for (index, segment) in segments.enumerated() {
            let last = index == segments.count - 1
            if segment.elementsEqual([UInt8(ascii: ".")]) {
                trailingSlash = last
            } else if segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                if !kept.isEmpty { kept.removeLast() }
                trailingSlash = last
            } else {
                kept.append(segment)
                trailingSlash = false
            }
        }
        var out: [UInt8] = [UInt8(ascii: "/")]
        for (index, segment) in kept.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "/")) }
            out.append(contentsOf: segment)
        }
        if trailingSlash && !kept.isEmpty { out.append(UInt8(ascii: "/")) }
        return out
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func upperHex(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") + nibble - 10
    }

    private static func isUnreserved(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}
