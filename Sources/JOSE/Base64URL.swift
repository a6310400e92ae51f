/// The base64url encoding of RFC 4648 §5 as JOSE uses it (RFC 7515 §2): no padding, no line breaks, no whitespace.
public enum Base64URL {
    /// Decodes unpadded base64url strictly: only the 64 alphabet characters, a length that is not 1 more than a
    /// multiple of 4, and zero bits after the last full byte. The canonical form is the only accepted form, so one
    /// token has exactly one spelling (a re-spelled segment cannot slip past a cache or a replay check).
    public static func decode(_ text: Substring) -> [UInt8]? {
        var result: [UInt8]?
        text.utf8.withContiguousStorageIfAvailable { result = decode(bytes: UnsafeRawBufferPointer($0)) }
        if let result { return result }
        return Array(text.utf8).withUnsafeBytes { decode(bytes: $0) }
    }

    public static func decode(_ text: String) -> [UInt8]? { decode(Substring(text)) }

    /// Decodes the base64url text held in `bytes`.
    public static func decode(bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        let count = bytes.count
        if count % 4 == 1 { return nil }
        let full = count / 4
        let tail = count % 4
        let outputCount = full * 3 + (tail == 0 ? 0 : tail - 1)
        var valid = true
        let out = [UInt8](unsafeUninitializedCapacity: outputCount) { buffer, initialized in
            table.withUnsafeBufferPointer { table in
                var input = 0, output = 0
                // Any byte outside the alphabet maps to 0xFF, so one check per group catches it.
                var bad: UInt8 = 0
                for _ in 0..<full {
                    let a = table[Int(bytes[input])], b = table[Int(bytes[input + 1])]
                    let c = table[Int(bytes[input + 2])], d = table[Int(bytes[input + 3])]
                    bad |= a | b | c | d
                    buffer[output] = a << 2 | b >> 4
                    buffer[output + 1] = b << 4 | c >> 2
                    buffer[output + 2] = c << 6 | d
                    input += 4
                    output += 3
                }
                switch tail {
                case 2:
                    let a = table[Int(bytes[input])], b = table[Int(bytes[input + 1])]
                    bad |= a | b
                    if b & 0x0F != 0 { valid = false }
                    buffer[output] = a << 2 | b >> 4
                    output += 1
                case 3:
                    let a = table[Int(bytes[input])], b = table[Int(bytes[input + 1])], c = table[Int(bytes[input + 2])]
                    bad |= a | b | c
                    if c & 0x03 != 0 { valid = false }
                    buffer[output] = a << 2 | b >> 4
                    buffer[output + 1] = b << 4 | c >> 2
                    output += 2
                default:
                    break
                }
                if bad & 0x80 != 0 { valid = false }
                initialized = output
            }
        }
        return valid ? out : nil
    }

    /// Encodes without padding.
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let input = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= input.count {
            let n = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            index += 3
        }
        switch input.count - index {
        case 1:
            let n = UInt32(input[index]) << 16
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
        case 2:
            let n = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
        default:
            break
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func encode(_ text: String) -> String { encode(Array(text.utf8)) }

    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Byte → 6-bit value, or 0xFF for a byte outside the alphabet.
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in alphabet.enumerated() { t[Int(byte)] = UInt8(value) }
        return t
    }()
}
