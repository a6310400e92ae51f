/// An IPv4 or IPv6 address, parsed strictly (no leading zeros in IPv4, as Go's `netip` and Envoy refuse them).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case v4, v6 }

    /// The address bits, left-aligned in 32 (IPv4) or 128 (IPv6) bits.
    public let bits: UInt128
    public let family: Family

    public var bitWidth: Int { family == .v4 ? 32 : 128 }

    public init(v4: UInt32) {
        bits = UInt128(v4)
        family = .v4
    }

    public init(v6: UInt128) {
        bits = v6
        family = .v6
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::` and an embedded IPv4 tail; a `%zone` is refused).
    public init?(_ text: some StringProtocol) {
        self.init(String(text))
    }

    /// The same, without generic dispatch: servers parse an address or two on every request.
    public init?(_ text: String) {
        var text = text
        guard let parsed = text.withUTF8(Self.parse) else { return nil }
        self = parsed
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> IPAddress? {
        if bytes.contains(UInt8(ascii: ":")) {
            return parseV6(Array(bytes)).map(IPAddress.init(v6:))
        }
        return parseV4(bytes).map(IPAddress.init(v4:))
    }

    static func parseV4(_ bytes: some Collection<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        var leadingZero = false
        for b in bytes {
            if b == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | current
                octets += 1
                current = 0
                digits = 0
                leadingZero = false
            } else if b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") {
                if digits == 1, leadingZero { return nil }
                if digits == 0, b == UInt8(ascii: "0") { leadingZero = true }
                current = current * 10 + UInt32(b - UInt8(ascii: "0"))
                digits += 1
                guard digits <= 3, current <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        return value << 8 | current
    }

    static func parseV6(_ bytes: [UInt8]) -> UInt128? {
        var groups: [UInt16] = []
        var gapIndex: Int?
        var i = 0
        if bytes.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            gapIndex = 0
            i = 2
            if i == bytes.count { return 0 }
        } else if bytes.first == UInt8(ascii: ":") {
            return nil
        }
        while i < bytes.count {
            // An IPv4 tail takes the last 32 bits.
            var j = i
            while j < bytes.count, bytes[j] != UInt8(ascii: ":") { j += 1 }
            let part = bytes[i..<j]
            if part.contains(UInt8(ascii: ".")) {
                guard j == bytes.count, groups.count <= 6, let v4 = parseV4(part) else { return nil }
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(v4 & 0xFFFF))
                i = j
                break
            }
            guard !part.isEmpty, part.count <= 4 else { return nil }
            var g: UInt16 = 0
            for b in part {
                guard let d = hexDigit(b) else { return nil }
                g = g << 4 | UInt16(d)
            }
            groups.append(g)
            guard groups.count <= 8 else { return nil }
            i = j
            if i < bytes.count {
                // Consume ':' or '::'.
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: ":") {
                    guard gapIndex == nil else { return nil }
                    gapIndex = groups.count
                    i += 1
                } else if i == bytes.count {
                    return nil  // trailing single ':'
                }
            }
        }
        if let gap = gapIndex {
            guard groups.count < 8 else { return nil }
            groups.insert(contentsOf: [UInt16](repeating: 0, count: 8 - groups.count), at: gap)
        }
        guard groups.count == 8 else { return nil }
        return groups.reduce(UInt128(0)) { $0 << 16 | UInt128($1) }
    }

    private static func hexDigit(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    public var description: String {
        switch family {
        case .v4:
            let v = UInt32(truncatingIfNeeded: bits)
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        case .v6:
            let groups = (0..<8).map { UInt16(truncatingIfNeeded: bits >> UInt128(112 - 16 * $0)) }
            // The longest run of two or more zero groups is written `::` (RFC 5952).
            var bestStart = -1, bestLength = 1, start = -1
            for (i, g) in groups.enumerated() {
                if g == 0 {
                    if start < 0 { start = i }
                    if i - start + 1 > bestLength {
                        bestStart = start
                        bestLength = i - start + 1
                    }
                } else {
                    start = -1
                }
            }
            func hex(_ r: ArraySlice<UInt16>) -> String { r.map { String($0, radix: 16) }.joined(separator: ":") }
            if bestStart < 0 { return hex(groups[...]) }
            return hex(groups[..<bestStart]) + "::" + hex(groups[(bestStart + bestLength)...])
        }
    }
}

/// An address range: `10.0.0.0/8`, `2001:db8::/32`, or a single address.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init(address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `addr/len`, or a bare address as a single-address range. Host bits may be set, as Envoy and
    /// Go's `netip.ParsePrefix` allow; they are ignored when matching.
    public init?(_ text: some StringProtocol) {
        if let slash = text.firstIndex(of: "/") {
            guard let address = IPAddress(text[..<slash]) else { return nil }
            let lengthText = text[text.index(after: slash)...]
            guard !lengthText.isEmpty, lengthText.allSatisfy(\.isASCIIDigit), lengthText.count <= 3,
                (lengthText.count == 1 || lengthText.first != "0"),
                let length = Int(lengthText), length <= address.bitWidth
            else { return nil }
            self.init(address: address, prefixLength: length)
        } else {
            guard let address = IPAddress(text) else { return nil }
            self.init(address: address, prefixLength: address.bitWidth)
        }
    }

    public var mask: UInt128 {
        guard prefixLength > 0 else { return 0 }
        let width = UInt128(address.bitWidth)
        let all: UInt128 = address.family == .v4 ? 0xFFFF_FFFF : ~0
        return all & ~((UInt128(1) << (width - UInt128(prefixLength))) - 1) & all
    }

    /// Whether `ip` is in the range; an IPv4 range never holds an IPv6 address and the reverse.
    @inlinable
    public func contains(_ ip: IPAddress) -> Bool {
        guard ip.family == address.family else { return false }
        let m = mask
        return ip.bits & m == address.bits & m
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
