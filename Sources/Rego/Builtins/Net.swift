import PolicyCore

/// `net.cidr_contains net.cidr_intersects net.cidr_is_valid net.cidr_contains_matches net.cidr_expand`, with the
/// addressing rules of Go's `net` package that OPA uses: networks are written `addr/len` (the length may have
/// leading zeros, host bits are ignored), and an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) is the IPv4
/// address it maps.
extension Builtins {
    static let net: [Builtin] = [
        Builtin("net.cidr_contains", arity: 2, signature: .parse("(cidr: string, cidr_or_ip: string) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            .bool(try GoNet.contains(try string(operands, 0), try string(operands, 1)))
        },
        Builtin("net.cidr_intersects", arity: 2, signature: .parse("(cidr1: string, cidr2: string) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            let a = try GoNet.network(try string(operands, 0))
            let b = try GoNet.network(try string(operands, 1))
            return .bool(a.contains(b.ip) || b.contains(a.ip))
        },
        Builtin("net.cidr_is_valid", arity: 1, signature: .parse("(cidr: string) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            guard case .string(let s) = operands[0] else { return .bool(false) }
            return .bool((try? GoNet.network(s)) != nil)
        },
        Builtin(
            "net.cidr_contains_matches", arity: 2,
            signature: .parse(
                "(cidrs: \(GoNet.matchOperandType), cidrs_or_ips: \(GoNet.matchOperandType)) -> output: set[array<any, any>]")
        ) { operands, _ throws(BuiltinError) in
            var result = Set<Value>()
            for (cidr, key) in try GoNet.matchItems(operands[0], position: 1) {
                for (other, otherKey) in try GoNet.matchItems(operands[1], position: 2) {
                    // Each pair is checked as `net.cidr_contains` checks it, with its operand errors.
                    guard case .string(let c) = cidr else { throw .operand(1, mustBe: "string", got: cidr) }
                    guard case .string(let o) = other else { throw .operand(2, mustBe: "string", got: other) }
                    if try GoNet.contains(c, o) { result.insert(.array([key, otherKey])) }
                }
            }
            return .set(result)
        },
        Builtin("net.cidr_expand", arity: 1, signature: .parse("(cidr: string) -> hosts: set[string]")) {
            operands, _ throws(BuiltinError) in
            let network = try GoNet.network(try string(operands, 0))
            let hostBits = network.mask.count * 8 - network.prefixLength
            guard hostBits <= 24 else { throw BuiltinError(.builtinError, "cidr too large to expand") }
            var hosts = Set<Value>()
            var address = network.ip
            for _ in 0..<(1 << hostBits) {
                hosts.insert(.string(GoNet.text(address)))
                GoNet.increment(&address)
            }
            return .set(hosts)
        },
    ]
}

/// IP addresses and networks as Go's `net.IP` and `net.IPNet` hold them: 4 or 16 bytes.
enum GoNet {
    static let matchOperandType =
        "any<string, array[any<string, array[any]>], object[string: any<string, array[any]>], set[any<string, array[any]>]>"

    struct Network {
        var ip: [UInt8]
        var mask: [UInt8]
        var prefixLength: Int

        /// Go's `IPNet.Contains`: IPv4-mapped addresses compare as IPv4.
        func contains(_ address: [UInt8]) -> Bool {
            var number = ip
            var m = mask
            if let v4 = GoNet.to4(number) { number = v4 } else if number.count != 16 { return false }
            switch m.count {
            case 4: if number.count != 4 { return false }
            case 16: if number.count == 4 { m = Array(m[12...]) }
            default: return false
            }
            let candidate = GoNet.to4(address) ?? address
            guard candidate.count == number.count else { return false }
            for i in 0..<number.count where number[i] & m[i] != candidate[i] & m[i] { return false }
            return true
        }
    }

    /// `net.ParseCIDR`: the network address is masked; an IPv4 network has 4-byte address and mask.
    static func network(_ text: String) throws(BuiltinError) -> Network {
        let invalid = BuiltinError(.builtinError, "invalid CIDR address: \(text)")
        guard let slash = text.firstIndex(of: "/") else { throw invalid }
        let addressText = text[..<slash]
        let lengthText = text[text.index(after: slash)...]
        guard !addressText.contains("%"), let address = IPAddress(addressText) else { throw invalid }
        let bits = address.bitWidth
        guard !lengthText.isEmpty, lengthText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), lengthText.count <= 4,
            let length = Int(lengthText), length <= bits
        else { throw invalid }
        var mask = [UInt8](repeating: 0, count: bits / 8)
        for i in 0..<length { mask[i / 8] |= 0x80 >> UInt8(i % 8) }
        var ip = bytes16(address)
        if bits == 32 { ip = Array(ip[12...]) }
        for i in 0..<ip.count { ip[i] &= mask[i] }
        return Network(ip: ip, mask: mask, prefixLength: length)
    }

    /// `net.ParseIP`: always 16 bytes.
    static func ip(_ text: String) -> [UInt8]? {
        guard !text.contains("%"), let address = IPAddress(text) else { return nil }
        return bytes16(address)
    }

    static func bytes16(_ address: IPAddress) -> [UInt8] {
        if address.family == .v4 {
            let v = UInt32(truncatingIfNeeded: address.bits)
            return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
        }
        return (0..<16).map { UInt8(truncatingIfNeeded: address.bits >> UInt128(120 - 8 * $0)) }
    }

    static func to4(_ ip: [UInt8]) -> [UInt8]? {
        if ip.count == 4 { return ip }
        if ip.count == 16, ip[0..<10].allSatisfy({ $0 == 0 }), ip[10] == 0xFF, ip[11] == 0xFF { return Array(ip[12...]) }
        return nil
    }

    /// OPA's containment: an address inside the network, or a network whose first and last addresses are.
    static func contains(_ cidr: String, _ cidrOrIP: String) throws(BuiltinError) -> Bool {
        let network = try network(cidr)
        if let address = ip(cidrOrIP) { return network.contains(address) }
        guard let inner = try? GoNet.network(cidrOrIP) else {
            throw BuiltinError(.builtinError, "not a valid textual representation of an IP address or CIDR: \(cidrOrIP)")
        }
        var last = inner.ip
        for i in 0..<last.count { last[i] |= ~inner.mask[i] }
        return network.contains(inner.ip) && network.contains(last)
    }

    /// The (network, key) pairs of a `cidr_contains_matches` operand: a string is its own key; arrays are keyed
    /// by index, objects by key, sets by element; an element is a string or an array whose first element is used.
    static func matchItems(_ operand: Value, position: Int) throws(BuiltinError) -> [(Value, Value)] {
        func item(_ v: Value) throws(BuiltinError) -> Value {
            switch v {
            case .string: return v
            case .array(let a) where !a.isEmpty: return a[0]
            default:
                throw BuiltinError(.builtinError, "operand \(position): element must be string or non-empty array")
            }
        }
        switch operand {
        case .string:
            return [(operand, operand)]
        case .array(let a):
            var out: [(Value, Value)] = []
            for (i, e) in a.enumerated() { out.append((try item(e), .int(i))) }
            return out
        case .set(let s):
            var out: [(Value, Value)] = []
            for e in s.sorted() { out.append((try item(e), e)) }
            return out
        case .object(let o):
            var out: [(Value, Value)] = []
            for k in o.keys.sorted() { out.append((try item(o[k]!), k)) }
            return out
        default:
            return []
        }
    }

    static func text(_ ip: [UInt8]) -> String {
        if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
        var bits: UInt128 = 0
        for b in ip { bits = bits << 8 | UInt128(b) }
        if let v4 = to4(ip) { return v4.map(String.init).joined(separator: ".") }
        return IPAddress(v6: bits).description
    }

    static func increment(_ ip: inout [UInt8]) {
        var i = ip.count - 1
        while i >= 0 {
            ip[i] &+= 1
            if ip[i] != 0 { return }
            i -= 1
        }
    }
}
