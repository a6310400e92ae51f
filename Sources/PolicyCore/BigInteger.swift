/// A signed integer of any size, for numbers beyond 64 bits: JSON and Rego integers stay exact however long
/// they are. Magnitudes are little-endian 64-bit limbs without leading zero limbs; zero has no limbs and is
/// never negative.
public struct BigInteger: Sendable, Hashable {
    public private(set) var isNegative: Bool
    /// The magnitude, least significant limb first.
    public private(set) var limbs: [UInt64]

    public init() {
        isNegative = false
        limbs = []
    }

    public init(_ value: Int64) {
        isNegative = value < 0
        limbs = value == 0 ? [] : [value.magnitude]
    }

    public init(_ value: Int) { self.init(Int64(value)) }

    public init(_ value: UInt64) {
        isNegative = false
        limbs = value == 0 ? [] : [value]
    }

    /// A value from a sign and a magnitude (which may have leading zero limbs).
    public init(negative: Bool, limbs: [UInt64]) {
        var limbs = limbs
        Self.trim(&limbs)
        self.limbs = limbs
        self.isNegative = negative && !limbs.isEmpty
    }

    /// Parses optional `-` and decimal digits; nil for anything else.
    public init?(_ text: some StringProtocol) {
        var digits = Substring(text).utf8[...]
        var negative = false
        if digits.first == UInt8(ascii: "-") {
            negative = true
            digits = digits.dropFirst()
        }
        guard let magnitude = Self.parseDigits(digits) else { return nil }
        self.init(negative: negative, limbs: magnitude)
    }

    public var isZero: Bool { limbs.isEmpty }

    /// -1, 0 or 1.
    public var signum: Int { isZero ? 0 : (isNegative ? -1 : 1) }

    /// The number of bits of the magnitude (0 for zero).
    public var bitWidth: Int { Self.bitWidth(limbs) }

    public var magnitude: BigInteger { BigInteger(negative: false, limbs: limbs) }

    public var isEven: Bool { limbs.first.map { $0 & 1 == 0 } ?? true }

    /// The value as an `Int64`, when it fits.
    public var int64Value: Int64? {
        switch limbs.count {
        case 0: return 0
        case 1:
            let m = limbs[0]
            if isNegative {
                if m <= UInt64(Int64.max) { return -Int64(m) }
                return m == UInt64(Int64.max) + 1 ? Int64.min : nil
            }
            return m <= UInt64(Int64.max) ? Int64(m) : nil
        default: return nil
        }
    }

    /// The nearest `Double` (ties to even), infinite beyond the finite range.
    public var doubleValue: Double {
        let width = bitWidth
        if width <= 64 {
            let d = Double(limbs.first ?? 0)
            return isNegative ? -d : d
        }
        // Keep 64 significant bits plus a sticky bit, so converting that to Double rounds once, correctly.
        let shift = width - 64
        var top = Self.shiftedRight(limbs, by: shift).first ?? 0
        if Self.lowBitsNonZero(limbs, count: shift) { top |= 1 }
        let d = Double(sign: isNegative ? .minus : .plus, exponent: shift, significand: Double(top))
        return d
    }

    // MARK: Arithmetic

    public static prefix func - (x: BigInteger) -> BigInteger {
        BigInteger(negative: !x.isNegative, limbs: x.limbs)
    }

    public static func + (a: BigInteger, b: BigInteger) -> BigInteger {
        if a.isNegative == b.isNegative { return BigInteger(negative: a.isNegative, limbs: add(a.limbs, b.limbs)) }
        let c = compareMagnitudes(a.limbs, b.limbs)
        if c == 0 { return BigInteger() }
        if c > 0 { return BigInteger(negative: a.isNegative, limbs: subtract(a.limbs, b.limbs)) }
        return BigInteger(negative: b.isNegative, limbs: subtract(b.limbs, a.limbs))
    }

    public static func - (a: BigInteger, b: BigInteger) -> BigInteger { a + -b }

    public static func * (a: BigInteger, b: BigInteger) -> BigInteger {
        BigInteger(negative: a.isNegative != b.isNegative, limbs: multiply(a.limbs, b.limbs))
    }

    /// Truncating division, as Go's `big.Int.QuoRem` and Swift's `/` and `%`: the remainder takes the
    /// dividend's sign. The divisor must not be zero.
    public func quotientAndRemainder(dividingBy divisor: BigInteger) -> (quotient: BigInteger, remainder: BigInteger) {
        precondition(!divisor.isZero, "division by zero")
        let (q, r) = Self.divide(limbs, divisor.limbs)
        return (BigInteger(negative: isNegative != divisor.isNegative, limbs: q), BigInteger(negative: isNegative, limbs: r))
    }

    public static func << (x: BigInteger, bits: Int) -> BigInteger {
        bits >= 0 ? BigInteger(negative: x.isNegative, limbs: shiftedLeft(x.limbs, by: bits)) : x >> -bits
    }

    /// Shifts the magnitude right (truncating toward zero).
    public static func >> (x: BigInteger, bits: Int) -> BigInteger {
        bits >= 0 ? BigInteger(negative: x.isNegative, limbs: shiftedRight(x.limbs, by: bits)) : x << -bits
    }

    /// `base` raised to `exponent` (non-negative).
    public static func power(_ base: BigInteger, _ exponent: Int) -> BigInteger {
        precondition(exponent >= 0)
        var result = BigInteger(1)
        var square = base
        var e = exponent
        while e > 0 {
            if e & 1 == 1 { result = result * square }
            e >>= 1
            if e > 0 { square = square * square }
        }
        return result
    }

    /// 10 raised to `exponent`, with the small powers precomputed.
    public static func powerOfTen(_ exponent: Int) -> BigInteger {
        if exponent < smallPowersOfTen.count { return BigInteger(smallPowersOfTen[exponent]) }
        return power(BigInteger(10), exponent)
    }

    static let smallPowersOfTen: [UInt64] = (0...19).map { e in (0..<e).reduce(UInt64(1)) { r, _ in r * 10 } }

    /// Whether bit `index` of the magnitude is set.
    public func bit(_ index: Int) -> Bool { index >= 0 && Self.bit(limbs, index) }

    /// Whether any of the lowest `count` bits of the magnitude is set.
    public func hasBits(below count: Int) -> Bool { count > 0 && Self.lowBitsNonZero(limbs, count: count) }

    /// The number of trailing zero bits (0 for zero).
    public var trailingZeroBitCount: Int {
        for (i, limb) in limbs.enumerated() where limb != 0 { return i * 64 + limb.trailingZeroBitCount }
        return 0
    }
}

extension BigInteger: Comparable {
    public static func < (a: BigInteger, b: BigInteger) -> Bool { compare(a, b) < 0 }

    /// -1, 0 or 1.
    public static func compare(_ a: BigInteger, _ b: BigInteger) -> Int {
        if a.isNegative != b.isNegative { return a.isNegative ? -1 : 1 }
        let c = compareMagnitudes(a.limbs, b.limbs)
        return a.isNegative ? -c : c
    }
}

extension BigInteger {
    /// Digits in the given base (2 to 36), lowercase, with `-` when negative.
    public func text(radix: Int) -> String {
        precondition((2...36).contains(radix))
        if radix == 10 { return description }
        if limbs.isEmpty { return "0" }
        var digits: [UInt8] = []
        var rest = limbs
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        while !rest.isEmpty {
            let (q, r) = Self.divide(rest, by: UInt64(radix))
            digits.append(alphabet[Int(r)])
            rest = q
        }
        if isNegative { digits.append(UInt8(ascii: "-")) }
        return String(decoding: digits.reversed(), as: UTF8.self)
    }
}

extension BigInteger: CustomStringConvertible {
    /// Decimal digits, with `-` when negative.
    public var description: String {
        if limbs.isEmpty { return "0" }
        // Peel off 19 decimal digits at a time.
        var chunks: [UInt64] = []
        var rest = limbs
        let chunk: UInt64 = 10_000_000_000_000_000_000
        while !rest.isEmpty {
            let (q, r) = Self.divide(rest, by: chunk)
            chunks.append(r)
            rest = q
        }
        var out = isNegative ? "-" : ""
        out += String(chunks.last!)
        for c in chunks.dropLast().reversed() {
            let s = String(c)
            out += String(repeating: "0", count: 19 - s.count) + s
        }
        return out
    }
}

// MARK: - Magnitude arithmetic on little-endian limbs

extension BigInteger {
    static func trim(_ limbs: inout [UInt64]) {
        while let last = limbs.last, last == 0 { limbs.removeLast() }
    }

    static func bitWidth(_ limbs: [UInt64]) -> Int {
        guard let last = limbs.last else { return 0 }
        return limbs.count * 64 - last.leadingZeroBitCount
    }

    static func compareMagnitudes(_ a: [UInt64], _ b: [UInt64]) -> Int {
        if a.count != b.count { return a.count < b.count ? -1 : 1 }
        var i = a.count - 1
        while i >= 0 {
            if a[i] != b[i] { return a[i] < b[i] ? -1 : 1 }
            i -= 1
        }
        return 0
    }

    static func add(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        let (long, short) = a.count >= b.count ? (a, b) : (b, a)
        var out = [UInt64]()
        out.reserveCapacity(long.count + 1)
        var carry: UInt64 = 0
        for i in 0..<long.count {
            let (s1, o1) = long[i].addingReportingOverflow(i < short.count ? short[i] : 0)
            let (s2, o2) = s1.addingReportingOverflow(carry)
            out.append(s2)
            carry = (o1 ? 1 : 0) + (o2 ? 1 : 0)
        }
        if carry != 0 { out.append(carry) }
        return out
    }

    /// `a - b` for `a >= b`.
    static func subtract(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        var out = [UInt64]()
        out.reserveCapacity(a.count)
        var borrow: UInt64 = 0
        for i in 0..<a.count {
            let (d1, o1) = a[i].subtractingReportingOverflow(i < b.count ? b[i] : 0)
            let (d2, o2) = d1.subtractingReportingOverflow(borrow)
            out.append(d2)
            borrow = (o1 ? 1 : 0) + (o2 ? 1 : 0)
        }
        trim(&out)
        return out
    }

    static func multiply(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        if a.isEmpty || b.isEmpty { return [] }
        var out = [UInt64](repeating: 0, count: a.count + b.count)
        for i in 0..<a.count {
            var carry: UInt64 = 0
            let x = a[i]
            if x == 0 { continue }
            for j in 0..<b.count {
                let (high, low) = x.multipliedFullWidth(by: b[j])
                let (s1, o1) = low.addingReportingOverflow(out[i + j])
                let (s2, o2) = s1.addingReportingOverflow(carry)
                out[i + j] = s2
                carry = high &+ (o1 ? 1 : 0) &+ (o2 ? 1 : 0)
            }
            out[i + b.count] = carry
        }
        trim(&out)
        return out
    }

    static func multiply(_ a: [UInt64], by m: UInt64, adding addend: UInt64 = 0) -> [UInt64] {
        var out = [UInt64]()
        out.reserveCapacity(a.count + 1)
        var carry = addend
        for x in a {
            let (high, low) = x.multipliedFullWidth(by: m)
            let (s, o) = low.addingReportingOverflow(carry)
            out.append(s)
            carry = high &+ (o ? 1 : 0)
        }
        if carry != 0 { out.append(carry) }
        trim(&out)
        return out
    }

    /// Division by one limb.
    static func divide(_ a: [UInt64], by d: UInt64) -> (quotient: [UInt64], remainder: UInt64) {
        var q = [UInt64](repeating: 0, count: a.count)
        var r: UInt64 = 0
        var i = a.count - 1
        while i >= 0 {
            let (qi, ri) = d.dividingFullWidth((r, a[i]))
            q[i] = qi
            r = ri
            i -= 1
        }
        trim(&q)
        return (q, r)
    }

    /// Long division (Knuth's algorithm D) of magnitudes.
    static func divide(_ a: [UInt64], _ b: [UInt64]) -> (quotient: [UInt64], remainder: [UInt64]) {
        precondition(!b.isEmpty)
        if compareMagnitudes(a, b) < 0 { return ([], a) }
        if b.count == 1 {
            let (q, r) = divide(a, by: b[0])
            return (q, r == 0 ? [] : [r])
        }
        // Normalize so the divisor's top limb has its high bit set.
        let shift = b.last!.leadingZeroBitCount
        let v = shiftedLeft(b, by: shift)
        var u = shiftedLeft(a, by: shift)
        if u.count == a.count { u.append(0) }
        if u.count < a.count + 1 { u.append(0) }
        let n = v.count
        let m = u.count - n
        var q = [UInt64](repeating: 0, count: m)
        let vTop = v[n - 1], vNext = v[n - 2]
        var j = m - 1
        while j >= 0 {
            // Estimate the quotient digit from the top two limbs, then correct it.
            var qhat: UInt64
            var rhat: UInt64
            var rhatOverflow = false
            if u[j + n] >= vTop {
                // The top limbs equal the divisor's top limb: the digit is at most B - 1, with the remainder
                // estimate u[j+n-1] + vTop.
                qhat = UInt64.max
                (rhat, rhatOverflow) = u[j + n - 1].addingReportingOverflow(vTop)
            } else {
                (qhat, rhat) = vTop.dividingFullWidth((u[j + n], u[j + n - 1]))
            }
            while !rhatOverflow {
                let (ph, pl) = qhat.multipliedFullWidth(by: vNext)
                if ph > rhat || (ph == rhat && pl > u[j + n - 2]) {
                    qhat -= 1
                    let (r, o) = rhat.addingReportingOverflow(vTop)
                    rhat = r
                    rhatOverflow = o
                } else {
                    break
                }
            }
            // Multiply and subtract.
            var borrow: UInt64 = 0
            var carry: UInt64 = 0
            for i in 0..<n {
                let (ph, pl) = qhat.multipliedFullWidth(by: v[i])
                let (plc, oc) = pl.addingReportingOverflow(carry)
                carry = ph &+ (oc ? 1 : 0)
                let (d1, o1) = u[i + j].subtractingReportingOverflow(plc)
                let (d2, o2) = d1.subtractingReportingOverflow(borrow)
                u[i + j] = d2
                borrow = (o1 ? 1 : 0) + (o2 ? 1 : 0)
            }
            let (d1, o1) = u[j + n].subtractingReportingOverflow(carry)
            let (d2, o2) = d1.subtractingReportingOverflow(borrow)
            u[j + n] = d2
            if o1 || o2 {
                // The estimate was one too large: add the divisor back.
                qhat -= 1
                var c: UInt64 = 0
                for i in 0..<n {
                    let (s1, a1) = u[i + j].addingReportingOverflow(v[i])
                    let (s2, a2) = s1.addingReportingOverflow(c)
                    u[i + j] = s2
                    c = (a1 ? 1 : 0) + (a2 ? 1 : 0)
                }
                u[j + n] = u[j + n] &+ c
            }
            q[j] = qhat
            j -= 1
        }
        trim(&q)
        var r = Array(u[0..<n])
        r = shiftedRight(r, by: shift)
        trim(&r)
        return (q, r)
    }

    static func shiftedLeft(_ a: [UInt64], by bits: Int) -> [UInt64] {
        if a.isEmpty || bits == 0 { return a }
        let limbShift = bits / 64, bitShift = bits % 64
        var out = [UInt64](repeating: 0, count: a.count + limbShift + 1)
        for i in 0..<a.count {
            out[i + limbShift] |= a[i] << UInt64(bitShift)
            if bitShift > 0 { out[i + limbShift + 1] = a[i] >> UInt64(64 - bitShift) }
        }
        trim(&out)
        return out
    }

    static func shiftedRight(_ a: [UInt64], by bits: Int) -> [UInt64] {
        if bits == 0 { return a }
        let limbShift = bits / 64, bitShift = bits % 64
        if limbShift >= a.count { return [] }
        var out = [UInt64](repeating: 0, count: a.count - limbShift)
        for i in 0..<out.count {
            out[i] = a[i + limbShift] >> UInt64(bitShift)
            if bitShift > 0, i + limbShift + 1 < a.count { out[i] |= a[i + limbShift + 1] << UInt64(64 - bitShift) }
        }
        trim(&out)
        return out
    }

    /// Whether any of the lowest `count` bits is set.
    static func lowBitsNonZero(_ a: [UInt64], count: Int) -> Bool {
        let full = min(count / 64, a.count)
        for i in 0..<full where a[i] != 0 { return true }
        let rest = count % 64
        if rest > 0, full < a.count, a[full] & ((1 << UInt64(rest)) - 1) != 0 { return true }
        return false
    }

    /// Whether bit `index` of the magnitude is set.
    static func bit(_ a: [UInt64], _ index: Int) -> Bool {
        let limb = index / 64
        return limb < a.count && (a[limb] >> UInt64(index % 64)) & 1 == 1
    }

    /// Decimal digits (no sign, no leading zeros) to limbs; nil when empty or not all digits.
    static func parseDigits(_ digits: Substring.UTF8View.SubSequence) -> [UInt64]? {
        guard !digits.isEmpty else { return nil }
        var limbs: [UInt64] = []
        var chunk: UInt64 = 0
        var chunkDigits = 0
        for b in digits {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            chunk = chunk * 10 + UInt64(b - UInt8(ascii: "0"))
            chunkDigits += 1
            if chunkDigits == 19 {
                limbs = multiply(limbs, by: smallPowersOfTen[19], adding: chunk)
                chunk = 0
                chunkDigits = 0
            }
        }
        if chunkDigits > 0 { limbs = multiply(limbs, by: smallPowersOfTen[chunkDigits], adding: chunk) }
        return limbs
    }
}
