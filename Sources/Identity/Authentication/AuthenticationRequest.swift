import JOSE

/// The parts of an HTTP request that can carry a token, as plain values (no transport types).
public struct AuthenticationRequest: Sendable {
    /// Every header field in order, repeated names included (names in any case).
    public var headers: [(name: String, value: String)]
    /// The raw query string, without `?`.
    public var query: String?
    /// Cookies by name; when nil they are read from the `Cookie` headers.
    public var cookies: [String: String]?
    /// The request URL (`https://host/path`), the realm of a `WWW-Authenticate` challenge. Its query is dropped
    /// there, so a token passed as a query parameter is never echoed.
    public var url: String

    public init(headers: [(name: String, value: String)] = [], query: String? = nil, cookies: [String: String]? = nil, url: String = "") {
        self.headers = headers
        self.query = query
        self.cookies = cookies
        self.url = url
    }

    /// The values of every header named `lowercasedName`, in order.
    func headerValues(_ lowercasedName: String) -> [String] {
        var values: [String] = []
        for field in headers where Self.equalsIgnoringASCIICase(field.name, lowercased: lowercasedName) {
            values.append(field.value)
        }
        return values
    }

    /// Compares a header name with a lowercase one without allocating.
    static func equalsIgnoringASCIICase(_ name: String, lowercased: String) -> Bool {
        var a = name.utf8.makeIterator()
        var b = lowercased.utf8.makeIterator()
        while true {
            switch (a.next(), b.next()) {
            case (nil, nil):
                return true
            case (let x?, let y?):
                let folded = x >= UInt8(ascii: "A") && x <= UInt8(ascii: "Z") ? x | 0x20 : x
                if folded != y { return false }
            default:
                return false
            }
        }
    }

    /// The first value of the query parameter `name`, percent-decoded.
    func queryParameter(_ name: String) -> String? {
        guard let query, !query.isEmpty else { return nil }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = Self.percentDecode(parts[0]), key == name else { continue }
            return parts.count > 1 ? Self.percentDecode(parts[1]) : ""
        }
        return nil
    }

    /// The cookie `name`: from `cookies`, or the first `name=value` pair in the `Cookie` headers (quotes around the
    /// value removed).
    func cookie(_ name: String) -> String? {
        if let cookies { return cookies[name] }
        for header in headerValues("cookie") {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, parts[0].trimmingSpaces == name else { continue }
                var value = parts[1].trimmingSpaces
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                    value = value.dropFirst().dropLast()
                }
                return String(value)
            }
        }
        return nil
    }

    /// `%XX` escapes and `+` (a space in forms) decoded; nil for a broken escape or invalid UTF-8.
    static func percentDecode(_ text: Substring) -> String? {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}

enum TokenExtractor {
    /// Base64url characters and `.`, as a lookup table.
    static let tokenCharacters: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for byte in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".utf8 { table[Int(byte)] = true }
        return table
    }()

    /// The token in a header value. With a prefix, the prefix may appear anywhere in the value and the token starts
    /// at the first base64url character after it (Envoy's rule, so `Bearer  <token>` works); a value without the
    /// prefix carries no token.
    static func token(in value: String, prefix: String) -> Substring? {
        guard !prefix.isEmpty else { return value[...] }
        guard let found = find(prefix, in: value) else { return nil }
        let rest = value.utf8[found...]
        guard let start = rest.firstIndex(where: { tokenCharacters[Int($0)] }) else { return value[found...] }
        return value[start...]
    }

    /// The index just after the first occurrence of `needle` in `haystack`, compared byte by byte.
    static func find(_ needle: String, in haystack: String) -> String.Index? {
        let bytes = haystack.utf8, pattern = needle.utf8
        guard let first = pattern.first, pattern.count <= bytes.count else { return nil }
        var index = bytes.startIndex
        while let candidate = bytes[index...].firstIndex(of: first) {
            var h = candidate, p = pattern.startIndex
            while p != pattern.endIndex, h != bytes.endIndex, bytes[h] == pattern[p] {
                h = bytes.index(after: h)
                p = pattern.index(after: p)
            }
            if p == pattern.endIndex { return h }
            index = bytes.index(after: candidate)
        }
        return nil
    }
}
