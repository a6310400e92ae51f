/// Normalizes a request path before policies match it, as Envoy's HTTP connection manager does with the options of
/// the same names and as Istio's `meshConfig.pathNormalization` sets them up; without it `/admin` could be reached
/// past a rule written for `/admin` as `//admin`, `/a/../admin`, `/%61dmin`, `\admin`, `/public/..;/admin` or
/// `/admin;x=1`. The steps, in Istio's documented order:
///
/// 1. A path holding an escaped NUL (`%00`) or a control character is refused: Istio answers it with 400, Warden
///    denies it with 400 whatever the policies say.
/// 2. Escaped slashes (`%2F`, `%5C`, any case) are kept, refused or decoded, per `escapedSlashes`
///    (Envoy's `path_with_escaped_slashes_action`).
/// 3. With `normalizePath` (Envoy's `normalize_path`, Istio's `BASE`): escapes of unreserved characters decoded
///    once (ALPHA, DIGIT, `-`, `.`, `_`, `~`) and other escapes upper-cased; `\` becomes `/`; path parameters (`;`
///    to the end of a segment, RFC 3986 section 3.3) dropped from every segment, or only from `.` and `..`
///    segments without `stripPathParameters`; a leading `/` added; dot segments removed (RFC 3986 section 5.2.4,
///    never above the root).
/// 4. With `mergeSlashes` (Envoy's `merge_slashes`, Istio's `MERGE_SLASHES`): runs of `/` become one.
public struct PathNormalizer: Sendable, Hashable {
    /// What to do with `%2F` and `%5C` (Envoy's `path_with_escaped_slashes_action`).
    public enum EscapedSlashesAction: String, Sendable, Hashable, CaseIterable {
        /// Leave them escaped: they never separate segments (Envoy's default).
        case keepUnchanged = "KEEP_UNCHANGED"
        /// Refuse the request (400).
        case rejectRequest = "REJECT_REQUEST"
        /// Decode them before the other steps (Istio's `DECODE_AND_MERGE_SLASHES`).
        case unescapeAndForward = "UNESCAPE_AND_FORWARD"
    }

    /// The result of normalizing: the path policies match, or why the request is refused.
    public enum Normalized: Sendable, Hashable {
        case path(String)
        case refused(String)

        public var path: String? {
            if case .path(let p) = self { return p }
            return nil
        }
    }

    public var normalizePath: Bool
    public var mergeSlashes: Bool
    public var escapedSlashes: EscapedSlashesAction
    /// Drop `;parameters` from every segment, as Envoy does since 1.36.10 (CVE-2026-73511); without it they are
    /// dropped only from `.` and `..` segments (CVE-2026-73551), so `/..;/admin` is still `/admin`.
    public var stripPathParameters: Bool

    public init(
        normalizePath: Bool = true, mergeSlashes: Bool = true, escapedSlashes: EscapedSlashesAction = .keepUnchanged,
        stripPathParameters: Bool = true
    ) {
        self.normalizePath = normalizePath
        self.mergeSlashes = mergeSlashes
        self.escapedSlashes = escapedSlashes
        self.stripPathParameters = stripPathParameters
    }

    /// Istio's `DECODE_AND_MERGE_SLASHES` when set: escaped slashes are decoded (`UNESCAPE_AND_FORWARD`).
    public var decodeEscapedSlashes: Bool {
        get { escapedSlashes == .unescapeAndForward }
        set { escapedSlashes = newValue ? .unescapeAndForward : .keepUnchanged }
    }

    /// The normalized form of a path (without query string or fragment), or why it is refused.
    public func normalize(_ path: String) -> Normalized {
        isNormal(path) ? .path(path) : normalizeBytes(Array(path.utf8))
    }

    /// Whether `normalize` would give the path back unchanged (most requests), found in one scan without copying:
    /// no escape, backslash, parameter or control character, no dot segment, no empty segment to merge.
    func isNormal(_ path: String) -> Bool {
        let slash = UInt8(ascii: "/")
        var bytes = path.utf8.makeIterator()
        guard bytes.next() == slash else { return !normalizePath && !mergeSlashes && isPlain(path) }
        var segmentLength = 0
        var segmentDots = 0
        func isDotSegment() -> Bool { segmentLength > 0 && segmentLength <= 2 && segmentDots == segmentLength }
        while let c = bytes.next() {
            switch c {
            case UInt8(ascii: "%"), UInt8(ascii: "\\"), UInt8(ascii: ";"), 0..<0x20, 0x7F:
                return false
            case slash:
                if (normalizePath && isDotSegment()) || (mergeSlashes && segmentLength == 0) { return false }
                segmentLength = 0
                segmentDots = 0
            default:
                segmentLength += 1
                if c == UInt8(ascii: ".") { segmentDots += 1 }
            }
        }
        return !(normalizePath && isDotSegment())
    }

    /// No byte any step would look at.
    private func isPlain(_ path: String) -> Bool {
        !path.utf8.contains { c in
            c == UInt8(ascii: "%") || c == UInt8(ascii: "\\") || c == UInt8(ascii: ";") || c < 0x20 || c == 0x7F
        }
    }

    func normalizeBytes(_ input: [UInt8]) -> Normalized {
        if let refusal = refusal(input) { return .refused(refusal) }
        var bytes = input
        if escapedSlashes == .unescapeAndForward || normalizePath { bytes = decodeEscapes(bytes) }
        if normalizePath {
            bytes = bytes.map { $0 == UInt8(ascii: "\\") ? UInt8(ascii: "/") : $0 }
            if bytes.first != UInt8(ascii: "/") { bytes.insert(UInt8(ascii: "/"), at: 0) }
            bytes = removingDotSegments(bytes)
        }
        if mergeSlashes { bytes = merged(bytes) }
        return .path(String(decoding: bytes, as: UTF8.self))
    }

    /// Why a path cannot be matched at all: an escaped or raw NUL, a control character, or (when so configured)
    /// an escaped slash.
    private func refusal(_ bytes: [UInt8]) -> String? {
        for (i, c) in bytes.enumerated() {
            if c < 0x20 || c == 0x7F { return "the path holds a control character" }
            guard c == UInt8(ascii: "%"), i + 2 < bytes.count, let hi = Self.hex(bytes[i + 1]),
                let lo = Self.hex(bytes[i + 2])
            else { continue }
            let decoded = hi << 4 | lo
            if decoded == 0 { return "the path holds an escaped NUL (`%00`)" }
            if escapedSlashes == .rejectRequest, decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\") {
                return "the path holds an escaped slash (path_with_escaped_slashes_action: REJECT_REQUEST)"
            }
        }
        return nil
    }

    /// One pass over the escapes: unreserved characters decoded (with `normalizePath`), slashes decoded (with
    /// `UNESCAPE_AND_FORWARD`), every other valid escape upper-cased (with `normalizePath`). Decoding happens
    /// once: `%252F` stays `%252F`.
    private func decodeEscapes(_ input: [UInt8]) -> [UInt8] {
        guard input.contains(UInt8(ascii: "%")) else { return input }
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var i = 0
        while i < input.count {
            let c = input[i]
            if c == UInt8(ascii: "%"), i + 2 < input.count, let hi = Self.hex(input[i + 1]), let lo = Self.hex(input[i + 2]) {
                let decoded = hi << 4 | lo
                let isSlash = decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\")
                if (normalizePath && Self.isUnreserved(decoded)) || (isSlash && escapedSlashes == .unescapeAndForward) {
                    out.append(decoded)
                } else if normalizePath {
                    out.append(contentsOf: [UInt8(ascii: "%"), Self.upperHex(hi), Self.upperHex(lo)])
                } else {
                    out.append(contentsOf: input[i...(i + 2)])
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
    /// before it and never climbs above the root. Path parameters are dropped first (from every segment, or
    /// only from dot segments), so `..;x` is a `..`.
    private func removingDotSegments(_ input: [UInt8]) -> [UInt8] {
        let segments = input.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        var kept: [ArraySlice<UInt8>] = []
        var trailingSlash = false
        for (index, segment) in segments.enumerated() {
            let last = index == segments.count - 1
            var name = segment
            if let semicolon = segment.firstIndex(of: UInt8(ascii: ";")) {
                let bare = segment[..<semicolon]
                if stripPathParameters || Self.isDots(bare) { name = bare }
            }
            if Self.isDots(name), name.count == 1 {
                trailingSlash = last
            } else if Self.isDots(name) {
                if !kept.isEmpty { kept.removeLast() }
                trailingSlash = last
            } else {
                kept.append(name)
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

    /// `.` or `..`.
    private static func isDots(_ segment: ArraySlice<UInt8>) -> Bool {
        (segment.count == 1 || segment.count == 2) && segment.allSatisfy { $0 == UInt8(ascii: ".") }
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
