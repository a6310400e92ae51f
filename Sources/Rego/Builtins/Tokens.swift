import Crypto
import JOSE
import PolicyCore

/// `io.jwt.*`: decoding JWTs, verifying their signatures with PEM keys, certificates, JWKs or JWK sets, checking
/// their claims under `decode_verify`'s constraints, and signing new ones, with OPA's rules and error texts.
///
/// Tokens are read as OPA reads them, which is laxer than Identity's `JWS.parse` (padded segments, a header without
/// `alg`, a `kid` of any type all decode); signatures are verified by Identity's keys, HMACs by swift-crypto.
extension Builtins {
    static let tokens: [Builtin] = [
        Builtin(
            "io.jwt.decode", arity: 1,
            signature: .parse("(jwt: string) -> output: array<object[any: any], object[any: any], string>")
        ) { operands, _ throws(BuiltinError) in
            try TokenBuiltins.decode(operands[0])
        },
        // Nondeterministic: without a `time` constraint the answer depends on the clock.
        Builtin(
            "io.jwt.decode_verify", arity: 2, nondeterministic: true,
            signature: .parse(
                "(jwt: string, constraints: object[string: any]) -> "
                    + "output: array<boolean, object[any: any], object[any: any]>")
        ) { operands, context throws(BuiltinError) in
            try TokenBuiltins.decodeVerify(operands[0], operands[1], now: context.nowNanoseconds)
        },
        verify("io.jwt.verify_rs256", .rs256),
        verify("io.jwt.verify_rs384", .rs384),
        verify("io.jwt.verify_rs512", .rs512),
        verify("io.jwt.verify_ps256", .ps256),
        verify("io.jwt.verify_ps384", .ps384),
        verify("io.jwt.verify_ps512", .ps512),
        verify("io.jwt.verify_es256", .es256),
        verify("io.jwt.verify_es384", .es384),
        verify("io.jwt.verify_es512", .es512),
        verify("io.jwt.verify_eddsa", .edDSA),
        verifyHMAC("io.jwt.verify_hs256", SHA256.self),
        verifyHMAC("io.jwt.verify_hs384", SHA384.self),
        verifyHMAC("io.jwt.verify_hs512", SHA512.self),
        // Nondeterministic: ECDSA and PSS signatures are randomized.
        Builtin(
            "io.jwt.encode_sign_raw", arity: 3, nondeterministic: true,
            signature: .parse("(headers: string, payload: string, key: string) -> output: string")
        ) { operands, _ throws(BuiltinError) in
            let key = try string(operands, 2)
            let header = try string(operands, 0)
            let payload = try string(operands, 1)
            return .string(try TokenSigning.sign(header: Array(header.utf8), payload: Array(payload.utf8),
                                                 jwk: Array(key.utf8)))
        },
        Builtin(
            "io.jwt.encode_sign", arity: 3, nondeterministic: true,
            signature: .parse(
                "(headers: object[string: any], payload: object[string: any], key: object[string: any]) -> "
                    + "output: string")
        ) { operands, _ throws(BuiltinError) in
            // Each operand is written as Go's encoder writes it (sorted keys, HTML characters escaped).
            let parts = operands.map { Array(GoJSON.marshal($0).utf8) }
            return .string(try TokenSigning.sign(header: parts[0], payload: parts[1], jwk: parts[2]))
        },
    ]

    private static func verify(_ name: String, _ algorithm: JWSAlgorithm) -> Builtin {
        Builtin(name, arity: 2, signature: .parse("(jwt: string, certificate: string) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            .bool(try TokenBuiltins.verify(operands[0], operands[1], algorithm: algorithm))
        }
    }

    private static func verifyHMAC<H: HashFunction>(_ name: String, _: H.Type) -> Builtin {
        Builtin(name, arity: 2, signature: .parse("(jwt: string, secret: string) -> result: boolean")) {
            operands, _ throws(BuiltinError) in
            let jwt = try string(operands, 0)
            let secret = try string(operands, 1)
            // Only the signature is decoded: the header is not looked at, as in OPA.
            let token = try CompactToken(.string(jwt))
            let mac = HMAC<H>.authenticationCode(for: token.signingInput, using: SymmetricKey(data: Array(secret.utf8)))
            let signature = try TokenBuiltins.base64URL(token.signature)
            return .bool(mac == signature)
        }
    }
}

/// A compact token split into its three base64url segments, as OPA splits it: at every dot, exactly three parts.
struct CompactToken {
    var header: [UInt8]
    var payload: [UInt8]
    var signature: [UInt8]

    init(_ value: Value) throws(BuiltinError) {
        guard case .string(let text) = value else { throw .operand(1, mustBe: "string", got: value) }
        let bytes = Array(text.utf8)
        var dots: [Int] = []
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: ".") { dots.append(index) }
        guard !dots.isEmpty else { throw TokenKeys.failure("encoded JWT had no period separators") }
        guard dots.count == 2 else { throw TokenKeys.failure("encoded JWT must have 3 sections, found \(dots.count + 1)") }
        header = Array(bytes[..<dots[0]])
        payload = Array(bytes[(dots[0] + 1)..<dots[1]])
        signature = Array(bytes[(dots[1] + 1)...])
    }

    /// `header "." payload`, the bytes the signature covers.
    var signingInput: [UInt8] { header + [UInt8(ascii: ".")] + payload }
}

/// The header members OPA checks before verifying (`alg`, `kid`, `typ`, `cty` must be strings, `crit` a non-empty
/// list) and the names of the others, which `crit` must not list.
struct TokenHeader {
    var algorithm = ""
    var keyID = ""
    var contentType = ""
    var critical: Set<String> = []
    var others: [String] = []

    init(_ header: [Value: Value]) throws(BuiltinError) {
        for key in header.keys.sorted() {
            guard case .string(let name) = key else { continue }
            let value = header[key]!
            switch name {
            case "alg", "kid", "typ", "cty":
                guard case .string(let text) = value else { throw TokenKeys.failure("\(name): must be a string") }
                switch name {
                case "alg": algorithm = text
                case "kid": keyID = text
                case "cty": contentType = text
                default: break
                }
            case "crit":
                guard case .array(let names) = value else { throw TokenKeys.failure("crit: must be a list") }
                // Names that are not strings are passed over; none at all is an error.
                critical = Set(names.compactMap(\.stringValue))
                guard !critical.isEmpty else { throw TokenKeys.failure("crit: must be a nonempty list") }
            default:
                others.append(name)
            }
        }
    }

    /// RFC 7515: `alg` is required, and a header listing one of its own unknown members as critical is invalid.
    var isValid: Bool { !algorithm.isEmpty && !others.contains { critical.contains($0) } }
}

enum TokenBuiltins {
    static func failure(_ message: String) -> BuiltinError { TokenKeys.failure(message) }

    /// base64url as OPA's `base64url.decode` reads it: missing padding restored, then Go's padded decoder.
    static func base64URL(_ segment: [UInt8]) throws(BuiltinError) -> [UInt8] {
        // Canonical unpadded base64url, what tokens hold, decodes the same in Identity's fast decoder; anything
        // else takes Go's decoder for its leniency and its error texts.
        if let decoded = segment.withUnsafeBytes({ Base64URL.decode(bytes: $0) }) { return decoded }
        var text = segment
        if text.last != UInt8(ascii: "=") {
            switch text.count % 4 {
            case 1: throw failure("illegal base64url string: " + String(decoding: segment, as: UTF8.self))
            case 2: text += [UInt8(ascii: "="), UInt8(ascii: "=")]
            case 3: text.append(UInt8(ascii: "="))
            default: break
            }
        }
        return try Base64.decode(text, url: true)
    }

    /// JSON text that must hold an object, as OPA reads a token's header and payload.
    static func jsonObject(_ bytes: [UInt8]) throws(BuiltinError) -> [Value: Value] {
        // Well-formed UTF-8 holding one strict JSON object reads the same in PolicyCore's fast reader (repeated
        // members: the last wins; numbers keep their text); anything else takes Go's decoder and its errors.
        if String(validating: bytes, as: UTF8.self) != nil, case .object(let members)? = try? JSONReader.parse(bytes) {
            return members
        }
        switch GoJSON.decode(GoUTF8.decode(bytes)) {
        case .failure(let failure): throw self.failure("invalid JSON: " + failure.message)
        case .success(.object(let members)): return members
        case .success: throw failure("decoded JSON type was not an Object")
        }
    }

    /// The decoded header, which must be a JSON object and not a JWE's.
    static func header(_ token: CompactToken) throws(BuiltinError) -> [Value: Value] {
        let bytes: [UInt8]
        do {
            bytes = try base64URL(token.header)
        } catch {
            throw failure("JWT header had invalid encoding: " + error.message)
        }
        let header: [Value: Value]
        do {
            header = try jsonObject(bytes)
        } catch {
            throw failure("bad JWT header: " + error.message)
        }
        guard header[.string("enc")] == nil else { throw failure("JWT is a JWE object, which is not supported") }
        return header
    }

    static func payloadBytes(_ token: CompactToken) throws(BuiltinError) -> [UInt8] {
        do {
            return try base64URL(token.payload)
        } catch {
            throw failure("JWT payload had invalid encoding: " + error.message)
        }
    }

    // MARK: - io.jwt.decode

    static func decode(_ jwt: Value) throws(BuiltinError) -> Value {
        let token = try CompactToken(jwt)
        let header = try self.header(token)
        let payload = try payloadBytes(token)
        // A token whose content type is JWT carries another token (quoted, as some encoders write it): the answer
        // is that token's.
        if header[.string("cty")] == .string("JWT") {
            let inner = GoUTF8.decode(payload).trimmingCharacters(in: ["\"", "'"])
            return try decode(.string(inner))
        }
        let claims = try jsonObject(payload)
        let signature: [UInt8]
        do {
            signature = try base64URL(token.signature)
        } catch {
            throw failure("JWT signature had invalid encoding: " + error.message)
        }
        return .array([.object(header), .object(claims), .string(hex(signature))])
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            digits.withUTF8Buffer { digits in
                for (index, byte) in bytes.enumerated() {
                    buffer[2 * index] = digits[Int(byte >> 4)]
                    buffer[2 * index + 1] = digits[Int(byte & 0x0F)]
                }
            }
            return bytes.count * 2
        }
    }

    // MARK: - io.jwt.verify_*

    static func verify(_ jwt: Value, _ keyText: Value, algorithm: JWSAlgorithm) throws(BuiltinError) -> Bool {
        let token = try CompactToken(jwt)
        guard case .string(let text) = keyText else { throw .operand(2, mustBe: "string", got: keyText) }
        let keys = try TokenKeys.parse(text)
        let signature = try base64URL(token.signature)
        let header = try TokenHeader(self.header(token))
        let input = token.signingInput
        // The builtin's algorithm decides how to verify; the header's `alg` only selects among pinned JWKs.
        // A private JWK is never a public key of the type these builtins want, so it verifies nothing here.
        return anyKeyVerifies(keys.map { $0.isPrivate ? TokenKey(key: nil, algorithm: $0.algorithm, keyID: $0.keyID) : $0 },
                              header: header) { key in
            key.isValidSignature(signature, for: input, algorithm: algorithm)
        }
    }

    /// OPA's key choice: a key whose `kid` is the token's decides alone; otherwise any key that names no `alg`, or
    /// the token's, may verify it.
    static func anyKeyVerifies(_ keys: [TokenKey], header: TokenHeader, _ verifies: (VerificationKey) -> Bool) -> Bool {
        if !header.keyID.isEmpty, let match = keys.first(where: { $0.keyID == header.keyID }) {
            return match.key.map(verifies) ?? false
        }
        for candidate in keys where candidate.algorithm.isEmpty || candidate.algorithm == header.algorithm {
            if let key = candidate.key, verifies(key) { return true }
        }
        return false
    }

    // MARK: - io.jwt.decode_verify

    /// The constraints of `io.jwt.decode_verify`, read in key order with OPA's errors.
    struct Constraints {
        var keys: [TokenKey]?
        var secret = ""
        var algorithm = ""
        var issuer = ""
        var audience = ""
        /// Nanoseconds since the epoch, as a double (OPA compares times as floats).
        var time: Double?

        init(_ members: [Value: Value]) throws(BuiltinError) {
            for key in members.keys.sorted() {
                let value = members[key]!
                guard case .string(let name) = key else {
                    throw failure("unknown token validation constraint: \(key)")
                }
                func text() throws(BuiltinError) -> String {
                    guard case .string(let s) = value else { throw failure("\(name) constraint: must be a string") }
                    return s
                }
                switch name {
                case "cert":
                    guard case .string(let s) = value else { throw failure("cert constraint: must be a string") }
                    keys = try TokenKeys.parse(s)
                case "secret": secret = try text()
                case "alg": algorithm = try text()
                case "iss": issuer = try text()
                case "aud": audience = try text()
                case "time": time = try Self.time(value)
                default: throw failure("unknown token validation constraint: \(name)")
                }
            }
        }

        static func time(_ value: Value) throws(BuiltinError) -> Double {
            guard case .number(let n) = value else { throw failure("token time constraint: must be a number") }
            let seconds = n.doubleValue
            guard seconds.isFinite else { throw failure("token time constraint: unvalid float64") }
            guard seconds >= 0 else { throw failure("token time constraint: must not be negative") }
            return seconds
        }

        /// Exactly one of `cert` and `secret` names the keys to trust.
        func validate() throws(BuiltinError) {
            let count = (keys != nil ? 1 : 0) + (secret.isEmpty ? 0 : 1)
            if count > 1 { throw failure("duplicate key constraints") }
            if count < 1 { throw failure("no key constraint") }
        }

        /// Whether the signature verifies with the header's algorithm under the trusted keys.
        func verifies(_ token: CompactToken, header: TokenHeader, signature: [UInt8]) -> Bool {
            guard let algorithm = JWSAlgorithm(name: header.algorithm) else { return false }
            let input = token.signingInput
            if let keys {
                return anyKeyVerifies(keys, header: header) { key in
                    key.isValidSignature(signature, for: input, algorithm: algorithm)
                }
            }
            // A secret is an HMAC key: any other algorithm does not verify with it.
            let key = SymmetricKey(data: Array(secret.utf8))
            switch algorithm {
            case .hs256: return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: key)
            case .hs384: return HMAC<SHA384>.isValidAuthenticationCode(signature, authenticating: input, using: key)
            case .hs512: return HMAC<SHA512>.isValidAuthenticationCode(signature, authenticating: input, using: key)
            default: return false
            }
        }

        /// Whether the audience claim names the constraint's audience (a string, or a list with it).
        func acceptsAudience(_ claim: Value) -> Bool {
            switch claim {
            case .string(let s): return s == audience
            case .array(let items): return items.contains(.string(audience))
            default: return false
            }
        }
    }

    static let unverified = Value.array([.bool(false), .object([Value: Value]()), .object([Value: Value]())])

    static func decodeVerify(_ jwt: Value, _ constraintsValue: Value, now: Int64) throws(BuiltinError) -> Value {
        guard case .object(let members) = constraintsValue else {
            throw .operand(2, mustBe: "object", got: constraintsValue)
        }
        var constraints = try Constraints(members)
        if constraints.time == nil { constraints.time = Double(now) }
        try constraints.validate()

        var current = jwt
        var header: [Value: Value]
        var payload: [UInt8]
        while true {
            let token = try CompactToken(current)
            header = try self.header(token)
            let parsed = try TokenHeader(header)
            guard parsed.isValid else { return unverified }
            if !constraints.algorithm.isEmpty, constraints.algorithm != parsed.algorithm { return unverified }
            let signature = try base64URL(token.signature)
            guard constraints.verifies(token, header: parsed, signature: signature) else { return unverified }
            payload = try payloadBytes(token)
            // A nested token (content type JWT) is verified in turn, with the same constraints.
            guard parsed.contentType.lowercased() == "jwt" else { break }
            current = .string(GoUTF8.decode(payload))
        }
        let claims = try jsonObject(payload)

        if !constraints.issuer.isEmpty, claims[.string("iss")] != .string(constraints.issuer) { return unverified }
        if let audience = claims[.string("aud")] {
            guard constraints.acceptsAudience(audience) else { return unverified }
        } else if !constraints.audience.isEmpty {
            return unverified
        }
        // Times are compared in seconds, as the double OPA computes from nanoseconds.
        let now = Number(constraints.time! / 1_000_000_000)
        if let exp = claims[.string("exp")] {
            guard case .number(let expiry) = exp else { throw failure("exp value must be a number") }
            if Number.compare(now, expiry) >= 0 { return unverified }
        }
        if let nbf = claims[.string("nbf")] {
            guard case .number(let notBefore) = nbf else { throw failure("nbf value must be a number") }
            if Number.compare(now, notBefore) < 0 { return unverified }
        }
        return .array([.bool(true), .object(header), .object(claims)])
    }
}

extension String {
    /// The string without the given characters at either end (Go's `strings.Trim`).
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var scalars = Substring(self)
        while let first = scalars.first, set.contains(first) { scalars = scalars.dropFirst() }
        while let last = scalars.last, set.contains(last) { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
