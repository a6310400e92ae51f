import Foundation
import JOSE

/// An `http` or `https` URL split into the parts a client needs to fetch it.
public struct HTTPURL: Sendable, Hashable, CustomStringConvertible {
    public var isSecure: Bool
    public var host: String
    public var port: Int
    /// The request target: the path and query, at least `/`.
    public var target: String

    public init(isSecure: Bool, host: String, port: Int, target: String) {
        self.isSecure = isSecure
        self.host = host
        self.port = port
        self.target = target
    }

    public struct ParseError: Error, Sendable, Hashable {
        public var message: String
    }

    public var scheme: String { isSecure ? "https" : "http" }

    /// The host as it goes in a `Host` header (IPv6 literals in brackets, the port when not the default).
    public var authority: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (isSecure ? 443 : 80) ? name : "\(name):\(port)"
    }

    public var description: String { scheme + "://" + authority + target }

    public static func parse(_ text: String) -> Result<HTTPURL, ParseError> {
        func fail(_ message: String) -> Result<HTTPURL, ParseError> { .failure(ParseError(message: message)) }
        guard let colon = text.range(of: "://") else { return fail("missing `http://` or `https://`") }
        let scheme = text[..<colon.lowerBound].lowercased()
        let isSecure: Bool
        switch scheme {
        case "http": isSecure = false
        case "https": isSecure = true
        default: return fail("URI scheme `\(scheme)` is not supported")
        }
        var rest = text[colon.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        guard !authority.contains("@") else { return fail("credentials in the URL are not supported") }
        guard !target.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            return fail("the path contains spaces or control characters")
        }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return fail("unterminated IPv6 address") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return fail("unexpected text after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else {
            if let portColon = authority.lastIndex(of: ":") {
                portText = authority[authority.index(after: portColon)...]
                authority = authority[..<portColon]
            }
            host = authority
        }
        guard !host.isEmpty else { return fail("missing host") }
        guard host.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { return fail("invalid host") }
        var port = isSecure ? 443 : 80
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                return fail("invalid port `\(portText)`")
            }
            port = number
        }
        return .success(HTTPURL(isSecure: isSecure, host: String(host).lowercased(), port: port, target: target))
    }
}
