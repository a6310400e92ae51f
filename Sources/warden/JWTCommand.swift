import ArgumentParser
import Documents
import Foundation
import Identity
import JOSE
import JWKSClient
import PolicyCore

/// `warden jwt`: verify and decode JSON Web Tokens the way the proxy does.
struct JWTCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jwt",
        abstract: "Verify or decode JSON Web Tokens.",
        subcommands: [JWTVerifyCommand.self, JWTDecodeCommand.self]
    )
}

/// The token argument shared by both subcommands: inline, from a file, or `-` for standard input.
struct TokenInput: ParsableArguments {
    @Argument(help: "The token (`-` reads it from standard input).")
    var token: String?

    @Option(name: .customLong("token-file"), help: "Read the token from this file (`-` for standard input).")
    var tokenFile: String?

    func validate() throws {
        guard (token == nil) != (tokenFile == nil) else {
            throw ValidationError("give the token as an argument or with --token-file, not both")
        }
    }

    /// The token, trimmed, with a leading `Bearer ` removed so a copied header value works too.
    func read() throws -> String {
        var text: String
        if let tokenFile {
            text = try readInput(tokenFile)
        } else if token == "-" {
            text = try readInput("-")
        } else {
            text = token ?? ""
        }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("Bearer ") { text = String(text.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
        guard !text.isEmpty else { throw usage("the token is empty") }
        return text
    }
}

/// `warden jwt verify`: verifies a token's signature and claims against an issuer's keys, or against the rules of
/// a RequestAuthentication.
struct JWTVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a JWT: signature, issuer, audiences, expiry.",
        discussion: """
            The keys come from --jwks (a JWKS, a JWK, or a PEM public key or certificate), from --jwks-uri (fetched \
            over HTTP or HTTPS), or from the jwtRules of the RequestAuthentication documents in --policy. \
            Prints {"valid": true, "principal": "iss/sub", "claims": {...}} or {"valid": false, "error": "..."}.
            Exit status: 0 when the token is valid, 1 when it is not, 2 when the input is unusable (bad flags, \
            unreadable or invalid key and policy files, keys that cannot be fetched).
            """
    )

    @Option(help: "The issuer the token must name (`iss`). Required unless --policy is given.")
    var issuer: String?

    @Option(name: .customLong("audience"), help: "An accepted audience (repeatable); the token's `aud` must hold one.")
    var audiences: [String] = []

    @Option(help: "A file with the issuer's keys: a JWKS, a JWK, or a PEM public key or certificate.")
    var jwks: String?

    @Option(name: .customLong("jwks-uri"), help: "An http or https URL to fetch the issuer's JWKS from.")
    var jwksURI: String?

    @Option(help: "A file of RequestAuthentication documents whose jwtRules verify the token.")
    var policy: String?

    @Option(help: "With --policy: only rules that apply to a workload of this namespace.")
    var namespace: String?

    @Option(name: .customLong("label"), help: "With --namespace: a workload label `key=value` (repeatable).")
    var labels: [String] = []

    @Option(help: "Verify as of this time (RFC 3339, such as 2026-01-02T15:04:05Z, or seconds since the epoch).")
    var at: String?

    @Option(name: .customLong("clock-skew"), help: "Seconds of leeway for exp and nbf.")
    var clockSkew: Double = JWTValidation.defaultClockSkew

    @Option(help: "How long to wait for a remote JWKS (such as 5s or 500ms).")
    var timeout: String = "5s"

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    @OptionGroup var input: TokenInput

    func validate() throws {
        let sources = [jwks, jwksURI, policy].compactMap { $0 }.count
        guard sources == 1 else { throw ValidationError("give exactly one of --jwks, --jwks-uri or --policy") }
        if policy == nil && issuer == nil { throw ValidationError("--issuer is required with --jwks and --jwks-uri") }
        if policy != nil && (!audiences.isEmpty || issuer != nil) {
            throw ValidationError("--issuer and --audience come from the policy's jwtRules when --policy is given")
        }
        if (namespace != nil || !labels.isEmpty) && policy == nil {
            throw ValidationError("--namespace and --label select rules of --policy")
        }
        if parseDuration(timeout) == nil { throw ValidationError("invalid --timeout `\(timeout)`") }
    }

    func run() async throws {
        let token = try input.read()
        let now = try verificationTime()
        let fetchTimeout = parseDuration(timeout)!
        var rules = try loadRules(timeout: fetchTimeout)
        // The token is given directly, so every rule reads it from the default place.
        for index in rules.indices {
            rules[index].fromHeaders = []
            rules[index].fromParams = []
            rules[index].fromCookies = []
        }
        let needsNetwork = rules.contains { if case .remote = $0.keys { true } else { false } }
        let client = needsNetwork ? JWKSClient(configuration: .init(fetchTimeout: fetchTimeout)) : nil
        defer { client?.shutdown() }
        let authenticator = RequestAuthenticator(
            rules: rules, keySource: client, options: .init(clockSkew: clockSkew, audienceFailureStatus: 401, cacheCapacity: 0))
        let request = AuthenticationRequest(headers: [("authorization", "Bearer " + token)])
        let result = await authenticator.authenticate(request, now: now)

        switch result.outcome {
        case .authenticated(let verified):
            report([
                "valid": true, "principal": verified.principal.map(Value.string) ?? .null, "claims": verified.claims,
            ], text: "valid token" + (verified.principal.map { " for \($0)" } ?? "") + "\nclaims: "
                + JSONWriter.string(verified.claims, pretty: true))
        case .denied(let failure):
            if failure.error.code == .keysUnavailable { throw usage("cannot get the keys: \(failure.reason)") }
            report(["valid": false, "error": .string(failure.reason), "code": .string(failure.error.code.rawValue)],
                   text: "invalid token: \(failure.reason)")
            throw ExitCode(Warden.Status.failed)
        case .anonymous:
            throw usage("no token to verify")
        }
    }

    private func report(_ json: Value, text: String) {
        switch format {
        case .json: writeOutput(JSONWriter.string(json, pretty: true))
        case .text: writeOutput(text)
        }
    }

    private func verificationTime() throws -> Double {
        guard let at else { return Date().timeIntervalSince1970 }
        if let seconds = Double(at) { return seconds }
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: at) { return date.timeIntervalSince1970 }
        }
        throw usage("invalid --at `\(at)`: expected RFC 3339 (2026-01-02T15:04:05Z) or seconds since the epoch")
    }

    private func loadRules(timeout: Duration) throws -> [JWTRule] {
        if let jwks {
            let keys: JWKSet
            do {
                keys = try VerificationKeys.parse(try readInput(jwks))
            } catch let error as JOSEError {
                throw usage("\(jwks): \(error.message)")
            }
            guard !keys.keys.isEmpty else {
                let reasons = keys.rejected.map { "key \($0.index): \($0.error.message)" }.joined(separator: "; ")
                throw usage("\(jwks): no usable key" + (reasons.isEmpty ? "" : " (\(reasons))"))
            }
            return [JWTRule(issuer: issuer!, audiences: audiences, keys: .inline(keys), timeout: timeout)]
        }
        if let jwksURI {
            guard case .success = HTTPURL.parse(jwksURI) else { throw usage("invalid --jwks-uri `\(jwksURI)`") }
            return [JWTRule(issuer: issuer!, audiences: audiences, keys: .remote(.uri(jwksURI)), timeout: timeout)]
        }
        let path = policy!
        let text = try readInput(path)
        let parsed = YAMLDocuments.parse(text, file: path == "-" ? "<stdin>" : path)
        let decoded = RequestAuthentication.decodeAll(parsed.documents)
        var renderer = DiagnosticRenderer()
        let problems = (parsed.diagnostics + decoded.diagnostics).filter { $0.severity != .note }
        if !problems.isEmpty { writeError(renderer.render(problems.sortedByPlace())) }
        if problems.hasErrors { throw ExitCode(Warden.Status.unusable) }
        let set = RequestAuthenticationSet(policies: decoded.policies)
        let rules: [JWTRule]
        if let namespace {
            var workloadLabels: [String: String] = [:]
            for label in labels {
                let parts = label.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { throw usage("invalid --label `\(label)`: expected key=value") }
                workloadLabels[String(parts[0])] = String(parts[1])
            }
            rules = set.rules(forNamespace: namespace, labels: workloadLabels)
        } else {
            rules = set.policies.flatMap(\.jwtRules).sorted { $0.issuer < $1.issuer }
        }
        guard !rules.isEmpty else { throw usage("\(path): no RequestAuthentication jwtRules apply") }
        return rules
    }
}

/// `warden jwt decode`: shows a token's header and payload without verifying anything.
struct JWTDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Show a JWT's header and payload. Nothing is verified.",
        discussion: "Exit status: 0 when the token decodes, 2 when it is not a well-formed JWS with a JSON payload."
    )

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    @OptionGroup var input: TokenInput

    func run() throws {
        let token = try input.read()
        let jws: JWS
        let payload: Value
        do {
            jws = try JWS.parse(token, maximumSize: 1 << 20)
            payload = try jws.payloadJSON()
        } catch {
            throw usage("cannot decode the token: \(error.message)")
        }
        writeError("warning: decoded only; the signature and claims were NOT verified")
        switch format {
        case .json:
            writeOutput(JSONWriter.string(["verified": false, "header": jws.header, "payload": payload], pretty: true))
        case .text:
            var lines = ["header: " + JSONWriter.string(jws.header, pretty: true), "payload: " + JSONWriter.string(payload, pretty: true)]
            for name in ["iat", "nbf", "exp"] {
                if let seconds = payload[name]?.numberValue?.doubleValue {
                    let date = Date(timeIntervalSince1970: seconds)
                    lines.append("\(name): \(ISO8601DateFormatter().string(from: date))")
                }
            }
            lines.append("signature: \(jws.signature.count) bytes, \(jws.algorithmName), not verified")
            writeOutput(lines.joined(separator: "\n"))
        }
    }
}
