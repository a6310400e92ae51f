import NIOHTTP1

/// The answers to requests the HTTP/1.1 parser refuses. The parser (llhttp, strict) refuses what could be read two
/// ways — both `Content-Length` and `Transfer-Encoding`, several `Content-Length`s, obsolete line folding, bad
/// characters — and heads over the size limit; every refusal closes the connection, since what follows it cannot
/// be trusted to start a request.
public enum HostileInput {
    /// The default bound on a request's header fields together (Envoy's 60 KiB).
    public static let defaultMaximumHeaderBytes = 60 << 10

    public static func response(for error: any Error) -> LocalResponse {
        if let parse = error as? HTTPParserError, parse == .headerOverflow {
            return .text(431, "request header fields too large", closeConnection: true)
        }
        return .text(400, "malformed HTTP request", closeConnection: true)
    }

    /// The bytes of a 408 answer, written before the HTTP encoder by the head timer.
    public static let requestTimeout: [UInt8] = {
        let body = "the request head took too long\n"
        return Array(("HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            + "content-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n" + body).utf8)
    }()
}
