import Documents
import Foundation
import Identity
import Networking
import PolicyCore
import Rego

/// Who may use the management API, as OPA decides it for its REST API: an authentication scheme establishes the
/// caller's identity (`--authentication token|tls`), then the `data.system.authz.allow` document of an
/// authorization policy (`--authorization=basic`) decides each request from OPA's input document.
///
/// The policy is compiled from its own file with Warden's Rego engine, apart from the policies Warden serves, so
/// no write through the policy API can change who may write.
public struct AdminAuthorizer: Sendable {
    public typealias Authentication = ServerConfiguration.Admin.Authentication

    public let authentication: Authentication
    /// `data.system.authz.allow`, prepared; nil lets every request through (after authentication).
    let query: RegoQuery?

    /// The longest `Authorization` header read for a bearer token, as OPA reads it.
    public static let maximumTokenHeader = 8192
    /// The path of the decision, as OPA names it.
    public static let decisionPath = ["system", "authz", "allow"]

    public init(authentication: Authentication = .off, policy: RegoPolicySet? = nil) {
        self.authentication = authentication
        query = policy.flatMap { try? $0.prepare(path: Self.decisionPath) }
    }

    /// Compiles an authorization policy file within `limits` (its size and nesting, as for served policies);
    /// every error has its `file:line:col`. A policy that defines no `system.authz` package is refused, since it
    /// could only ever answer undefined.
    public static func load(file: String, limits: InputLimits = .default) throws(StartupError) -> RegoPolicySet {
        let text: String
        switch DocumentFiles.read(file, limits: limits) {
        case .success(let read): text = read
        case .failure(let problem): throw StartupError(problem)
        }
        let policy: RegoPolicySet
        do {
            policy = try RegoPolicySet.compile(modules: [RegoModuleSource(path: file, text: text)], limits: limits)
        } catch {
            throw StartupError(error.diagnostics)
        }
        guard policy.packages.contains(where: { $0.starts(with: ["system", "authz"]) }) else {
            throw StartupError(Diagnostic(
                code: "authorization_policy_error",
                message: "the authorization policy `\(file)` has no `package system.authz`: it must define `data.system.authz.allow`"))
        }
        return policy
    }

    /// Nil when the request may proceed; else the refusal, in OPA's error shape: 401 `unauthorized` with the
    /// policy's `reason` or OPA's message, 500 when the decision is undefined or fails, 400 for a body the input
    /// cannot hold.
    public func authorize(_ request: HTTPRequest, peer: TLSPeer?) -> HTTPResponse? {
        guard let query else { return nil }
        let input: Value
        do {
            input = try self.input(request, peer: peer)
        } catch {
            return .error(400, code: "invalid_parameter", message: error.message)
        }
        switch query.evaluateValue(input: input) {
        case .value(.bool(true)):
            return nil
        case .value(.object(let decision)):
            guard let allowed = decision[.string("allowed")] else {
                return .error(500, code: "internal_error", message: "the authorization decision is an object without `allowed`")
            }
            if allowed == .bool(true) { return nil }
            if case .string(let reason)? = decision[.string("reason")] {
                return .error(401, code: "unauthorized", message: reason)
            }
            return Self.rejected
        case .value:
            return Self.rejected
        case .undefined:
            return .error(500, code: "internal_error", message: "authorization policy missing or undefined")
        case .error(let problem):
            return .error(500, code: "internal_error", message: problem.description, errors: [problem])
        }
    }

    static let rejected = HTTPResponse.error(401, code: "unauthorized", message: "request rejected by administrative policy")

    // MARK: - OPA's input document

    /// OPA's input for `system.authz`: `method`, `path` (segments, unescaped), `params` and `headers` (lists of
    /// values; header names in Go's canonical form), `identity` when authentication established one,
    /// `client_certificates` with TLS authentication, and `body` for `POST /v1/data` queries.
    func input(_ request: HTTPRequest, peer: TLSPeer?) throws(Diagnostic) -> Value {
        let method = request.method.uppercased()
        var input: [String: Value] = [
            "method": .string(method),
            "path": .array(try Self.segments(request.path).map(Value.string)),
            "params": Self.params(request.query ?? ""),
            "headers": Self.headers(request.headers),
        ]
        switch authentication {
        case .off:
            break
        case .token:
            if let token = Self.bearerToken(request.header("authorization")) { input["identity"] = .string(token) }
        case .tls:
            if let peer {
                input["identity"] = .string(peer.identity)
                if let certificate = try? ClientCertificate(derEncoded: peer.certificate) {
                    input["client_certificates"] = .array([certificate.opaDocument])
                }
            }
        }
        if method == "POST", request.path == "/v1/data" || request.path.hasPrefix("/v1/data/"),
           !request.body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 })
        {
            do {
                input["body"] = try JSONReader.parse(request.body)
            } catch {
                throw Diagnostic(code: "invalid_parameter", message: "body contains malformed input document: \(error)")
            }
        }
        return .object(input)
    }

    /// `/v1/data/a%2Fb` → `["v1", "data", "a/b"]`, as OPA splits and unescapes the path.
    static func segments(_ path: Substring) throws(Diagnostic) -> [String] {
        guard !path.isEmpty else { return [] }
        return try path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map { (part) throws(Diagnostic) in
            guard let unescaped = String(part).removingPercentEncoding else {
                throw Diagnostic(code: "invalid_parameter", message: "invalid URL escape in path segment `\(part)`")
            }
            return unescaped
        }
    }

    /// Query parameters as an object of string lists (`?a=1&a=2&b` → `{"a": ["1", "2"], "b": [""]}`).
    static func params(_ query: Substring) -> Value {
        var out: [String: [String]] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            out[decode(parts[0]), default: []].append(parts.count > 1 ? decode(parts[1]) : "")
        }
        return .object(out.mapValues { .array($0.map(Value.string)) })
    }

    /// Headers as an object of string lists, names in Go's canonical MIME form (`x-api-key` → `X-Api-Key`).
    static func headers(_ headers: [(name: String, value: String)]) -> Value {
        var out: [String: [String]] = [:]
        for header in headers { out[canonicalName(header.name), default: []].append(header.value) }
        return .object(out.mapValues { .array($0.map(Value.string)) })
    }

    /// Go's `CanonicalMIMEHeaderKey`: the first letter and every letter after a hyphen upper case, the rest lower
    /// case; a name holding a byte that is not a token character is left as it is.
    static func canonicalName(_ name: String) -> String {
        let token: (UInt8) -> Bool = { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default:
                Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
            }
        }
        guard name.utf8.allSatisfy(token) else { return name }
        var upper = true
        var out: [UInt8] = []
        out.reserveCapacity(name.utf8.count)
        for byte in name.utf8 {
            var c = byte
            if upper, c >= UInt8(ascii: "a"), c <= UInt8(ascii: "z") { c -= 32 }
            if !upper, c >= UInt8(ascii: "A"), c <= UInt8(ascii: "Z") { c += 32 }
            out.append(c)
            upper = c == UInt8(ascii: "-")
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The token of `Bearer <token>` (OPA's `^Bearer\s+(\S+)$`), from a header of at most 8 KiB.
    static func bearerToken(_ header: String?) -> String? {
        guard let header, !header.isEmpty, header.utf8.count <= maximumTokenHeader, header.hasPrefix("Bearer") else {
            return nil
        }
        let rest = header.dropFirst("Bearer".count)
        let token = rest.drop { $0 == " " || $0 == "\t" }
        guard token.startIndex != rest.startIndex, !token.isEmpty,
              !token.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        else { return nil }
        return String(token)
    }
}

/// Why `warden serve` cannot start: every problem found, each with its code and, where there is one, its place.
public struct StartupError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public init(_ diagnostic: Diagnostic) { self.diagnostics = [diagnostic] }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
