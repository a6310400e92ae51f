import PolicyCore

/// The first PEM block of a text, found the way Go's `encoding/pem.Decode` finds it, which is how OPA tells a PEM
/// key from a JWK: text before `-----BEGIN` is skipped, a malformed block is passed over for the next one, and
/// whatever follows the block's `END` line is handed back as `rest`.
struct GoPEM {
    /// The label between `BEGIN ` and the dashes (`PUBLIC KEY`, `CERTIFICATE`).
    var type: String
    /// The decoded base64 body.
    var bytes: [UInt8]
    /// What follows the line that ends the block.
    var rest: ArraySlice<UInt8>

    private static let begin = Array("\n-----BEGIN ".utf8)
    private static let end = Array("\n-----END ".utf8)
    private static let dashes = Array("-----".utf8)

    /// The first well-formed block of `data`, or nil when there is none.
    static func decode(_ data: [UInt8]) -> GoPEM? {
        var rest = data[...]
        while true {
            if rest.starts(with: begin.dropFirst()) {
                rest = rest.dropFirst(begin.count - 1)
            } else if let found = firstRange(of: begin, in: rest) {
                rest = rest[found.upperBound...]
            } else {
                return nil
            }
            let typeLine: ArraySlice<UInt8>
            (typeLine, rest) = line(rest)
            guard typeLine.count >= dashes.count, typeLine.suffix(dashes.count).elementsEqual(dashes) else { continue }
            let type = typeLine.dropLast(dashes.count)

            // Headers (`Proc-Type: ...`) are lines with a colon before the body; they are read and dropped.
            var hasHeaders = false
            var unterminated = false
            while true {
                guard !rest.isEmpty else {
                    unterminated = true
                    break
                }
                let (headerLine, next) = line(rest)
                guard headerLine.contains(UInt8(ascii: ":")) else { break }
                hasHeaders = true
                rest = next
            }
            if unterminated { return nil }

            let endIndex: Int
            let trailerStart: Int
            if !hasHeaders, rest.starts(with: end.dropFirst()) {
                endIndex = rest.startIndex
                trailerStart = rest.startIndex + end.count - 1
            } else if let found = firstRange(of: end, in: rest) {
                endIndex = found.lowerBound
                trailerStart = found.upperBound
            } else {
                continue
            }
            // The END line must repeat the type, close with five dashes, and have nothing but spaces after.
            let trailerLength = type.count + dashes.count
            guard rest.endIndex - trailerStart >= trailerLength else { continue }
            let trailer = rest[trailerStart..<(trailerStart + trailerLength)]
            guard trailer.starts(with: type), trailer.suffix(dashes.count).elementsEqual(dashes) else { continue }
            guard line(rest[(trailerStart + trailerLength)...]).line.isEmpty else { continue }

            let body = rest[rest.startIndex..<endIndex].filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            guard let bytes = try? Base64.decode(body, url: false) else { continue }
            let after = line(rest[(endIndex + end.count - 1)...]).rest
            return GoPEM(type: String(decoding: type, as: UTF8.self), bytes: bytes, rest: after)
        }
    }

    /// The line at the start of `data` without its line break and trailing spaces, and what follows it.
    private static func line(_ data: ArraySlice<UInt8>) -> (line: ArraySlice<UInt8>, rest: ArraySlice<UInt8>) {
        var line: ArraySlice<UInt8>
        var rest: ArraySlice<UInt8>
        if let newline = data.firstIndex(of: UInt8(ascii: "\n")) {
            line = data[data.startIndex..<newline]
            rest = data[(newline + 1)...]
        } else {
            line = data
            rest = data[data.endIndex...]
        }
        while let last = line.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") || last == UInt8(ascii: "\r") {
            line = line.dropLast()
        }
        return (line, rest)
    }

    private static func firstRange(of pattern: [UInt8], in data: ArraySlice<UInt8>) -> Range<Int>? {
        guard data.count >= pattern.count else { return nil }
        var start = data.startIndex
        while start + pattern.count <= data.endIndex {
            if data[start..<(start + pattern.count)].elementsEqual(pattern) { return start..<(start + pattern.count) }
            start += 1
        }
        return nil
    }

    /// The block written back as PEM text (64-column base64), for readers that take PEM.
    var canonicalText: String {
        let encoded = Array(Base64.encode(bytes, url: false, pad: true).utf8)
        var text = "-----BEGIN \(type)-----\n"
        var index = 0
        while index < encoded.count {
            let upper = min(index + 64, encoded.count)
            text += String(decoding: encoded[index..<upper], as: UTF8.self) + "\n"
            index = upper
        }
        return text + "-----END \(type)-----\n"
    }
}
