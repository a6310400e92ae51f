/// Lowercase hexadecimal, two digits a byte: digests (bundle revisions, `crypto.sha256` and the HMACs), certificate
/// hashes (`x-forwarded-client-cert`), Rego's `hex.encode`, request IDs.
public enum LowercaseHex {
    /// The digit of each value 0–15.
    public static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
