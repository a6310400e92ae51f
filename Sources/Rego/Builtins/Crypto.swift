import Crypto
import PolicyCore

/// Hashes and HMACs of a string's UTF-8 bytes, answered as lowercase hex, and a constant-time MAC comparison.
extension Builtins {
    static let crypto: [Builtin] = [
        digest("crypto.md5", Insecure.MD5.self),
        digest("crypto.sha1", Insecure.SHA1.self),
        digest("crypto.sha256", SHA256.self),
        hmac("crypto.hmac.md5", Insecure.MD5.self),
        hmac("crypto.hmac.sha1", Insecure.SHA1.self),
        hmac("crypto.hmac.sha256", SHA256.self),
        hmac("crypto.hmac.sha512", SHA512.self),
        Builtin("crypto.hmac.equal", arity: 2, signature: .parse("(mac1: string, mac2: string) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            let a = Array(try string(operands, 0).utf8)
            let b = Array(try string(operands, 1).utf8)
            // Unequal lengths answer at once, as Go's hmac.Equal does; equal lengths take the same time whatever
            // the bytes.
            guard a.count == b.count else { return .bool(false) }
            var difference: UInt8 = 0
            for (x, y) in zip(a, b) { difference |= x ^ y }
            return .bool(difference == 0)
        },
    ]

    private static func digest<H: HashFunction>(_ name: String, _: H.Type) -> Builtin {
        Builtin(name, arity: 1, signature: .parse("(x: string) -> y: string")) { operands, _ throws(BuiltinError) in
            .string(LowercaseHex.encode(H.hash(data: Array(try string(operands, 0).utf8))))
        }
    }

    private static func hmac<H: HashFunction>(_ name: String, _: H.Type) -> Builtin {
        Builtin(name, arity: 2, signature: .parse("(x: string, key: string) -> y: string")) {
            operands, _ throws(BuiltinError) in
            let message = Array(try string(operands, 0).utf8)
            let key = SymmetricKey(data: Array(try string(operands, 1).utf8))
            return .string(LowercaseHex.encode(HMAC<H>.authenticationCode(for: message, using: key)))
        }
    }
}
