import JOSE
import PolicyCore
import Synchronization

/// A key given to an `io.jwt.*` builtin, with the `alg` and `kid` its JWK named (empty when it named none, and
/// always for PEM keys).
struct TokenKey: Sendable {
    /// The (public) key material; nil for a key OPA reads but that can never verify a signature (an X25519 key, an
    /// RSA key under 1024 bits).
    var key: VerificationKey?
    var algorithm: String
    var keyID: String
    /// A private JWK: `io.jwt.decode_verify` verifies with its public half, `io.jwt.verify_*` never do.
    var isPrivate = false
}

/// Reads the `certificate` operand of `io.jwt.verify_*` and the `cert` constraint of `io.jwt.decode_verify` as OPA
/// does: one PEM block (`CERTIFICATE` or `PUBLIC KEY`, nothing after it), else a JWK or a JWK set. What is
/// accepted, what is refused, and the words of the refusal follow OPA and the JWK library it uses; the key
/// material itself is read by Identity's JOSE layer.
enum TokenKeys {
    /// The algorithms OPA verifies; a JWK pinned to any other `alg` is left out of the set.
    static let algorithms: Set<String> = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
        "HS256", "HS384", "HS512", "EdDSA",
    ]

    /// The keys of a key operand. Policies pass the same few keys (a constant, a JWKS in `data`) on every
    /// decision, so reading them is remembered, refusals included.
    static func parse(_ text: String) throws(BuiltinError) -> [TokenKey] {
        try TokenKeyCache.shared.keys(text)
    }

    static func read(_ text: String) throws(BuiltinError) -> [TokenKey] {
        let bytes = Array(text.utf8)
        if let block = GoPEM.decode(bytes) {
            guard block.rest.isEmpty else { throw failure("extra data after a PEM certificate block") }
            switch block.type {
            case "CERTIFICATE":
                return [TokenKey(key: try pemKey(block, error: "failed to parse a PEM certificate: x509: malformed certificate"),
                                 algorithm: "", keyID: "")]
            case "PUBLIC KEY":
                return [TokenKey(key: try pemKey(block, error: "failed to parse a PEM public key: x509: malformed public key"),
                                 algorithm: "", keyID: "")]
            default:
                throw failure("failed to extract a Key from the PEM certificate")
            }
        }
        return try JWKReader.parse(bytes, context: .verification).compactMap { jwk in
            // OPA leaves out keys pinned to an algorithm it does not verify.
            guard jwk.algorithm.isEmpty || algorithms.contains(jwk.algorithm) else { return nil }
            return TokenKey(key: jwk.publicKey, algorithm: jwk.algorithm, keyID: jwk.keyID, isPrivate: jwk.isPrivate)
        }
    }

    /// The key of a PEM block; nil for a well-formed key that cannot verify JWS signatures.
    private static func pemKey(_ block: GoPEM, error message: String) throws(BuiltinError) -> VerificationKey? {
        do {
            return try VerificationKey(pem: block.canonicalText, minimumRSABits: VerificationKey.smallestRSABits)
        } catch {
            switch error.code {
            case .badPEM: throw failure(message)
            default: return nil
            }
        }
    }

    static func failure(_ message: String) -> BuiltinError { BuiltinError(.builtinError, message) }
}

/// Key operands already read, shared by every evaluation. Bounded: when full it starts over, and texts too long to be
/// worth keeping are read every time.
final class TokenKeyCache: Sendable {
    static let shared = TokenKeyCache()
    static let capacity = 256
    static let longestText = 64 * 1024

    private let entries = Mutex<[String: Result<[TokenKey], BuiltinError>]>([:])

    func keys(_ text: String) throws(BuiltinError) -> [TokenKey] {
        guard text.utf8.count <= Self.longestText else { return try TokenKeys.read(text) }
        if let cached = entries.withLock({ $0[text] }) { return try cached.get() }
        let result: Result<[TokenKey], BuiltinError>
        do {
            result = .success(try TokenKeys.read(text))
        } catch {
            result = .failure(error)
        }
        entries.withLock { table in
            if table.count >= Self.capacity { table.removeAll(keepingCapacity: true) }
            table[text] = result
        }
        return try result.get()
    }
}

/// JWK and JWK set documents as OPA's JWK library reads them: a lenient reader (padding and either base64
/// alphabet in key members, unknown members and `use` ignored) whose refusals are long chains of context.
enum JWKReader {
    private static let probeFailure = "jwk.Parse: failed to probe data: probe: failed to unmarshal data: "
    private static let probeStruct =
        "struct { Kty string \"json:\\\"kty\\\"\"; D json.RawMessage \"json:\\\"d,omitempty\\\"\" }"
    private static let validationFailure = "jwk.Parse: key validation failed: key validation failed: "

    /// Where a document is read, which decides how refusals begin.
    enum Context {
        /// The key operand of the verifying builtins.
        case verification
        /// The key operand of `io.jwt.encode_sign` and `encode_sign_raw`.
        case signing

        var prefix: String {
            switch self {
            case .verification: "failed to parse a JWK key (set): jwk.ParseString: failed to parse string: jwk.Parse: "
            case .signing: "jwk.Parse: "
            }
        }
    }

    enum KeyKind: String {
        case rsa = "RSA", ec = "EC", okp = "OKP", oct = "oct"
    }

    /// One JWK as read: its type, its decoded byte members, and its public key when it has a usable one.
    struct Parsed {
        var kind: KeyKind
        var isPrivate: Bool
        var algorithm: String
        var keyID: String
        /// The `crv` of an EC or OKP key.
        var curve: String
        /// The base64 members (`n`, `e`, `d`, `x`, `k`, ...) decoded.
        var members: [String: [UInt8]]
        /// The public key (for a private JWK, its public half); nil when it cannot verify JWS signatures.
        var publicKey: VerificationKey?
    }

    /// A key's refusal, without the context of the document around it.
    struct Refusal: Error {
        var message: String
        /// Refusals raised after the key was read (exporting it) are reported without the parsing context.
        var isExport = false
    }

    static func parse(_ bytes: [UInt8], context: Context) throws(BuiltinError) -> [Parsed] {
        let prefix = context.prefix
        // The library reads one JSON value from a stream: text after it is never looked at.
        var parser = GoJSON.Parser(bytes: bytes)
        parser.skipSpace()
        let document: Value
        do throws(GoJSON.Failure) {
            guard parser.i < parser.bytes.count else { throw GoJSON.Failure(message: "EOF") }
            document = try parser.value(depth: 0)
        } catch {
            throw TokenKeys.failure(prefix + "failed to parse sole key: jwk.ParseKey: " + probeFailure + error.message)
        }

        guard case .object(let members) = document, let list = members[.string("keys")] else {
            do throws(Refusal) {
                return [try key(document)]
            } catch {
                throw TokenKeys.failure(error.isExport ? error.message
                    : prefix + "failed to parse sole key: jwk.ParseKey: " + error.message)
            }
        }
        guard case .array(let items) = list else {
            throw TokenKeys.failure(prefix + "failed to unmarshal JWK set: failed to decode \"keys\": expected '[' but got "
                + tokenText(list))
        }
        var keys: [Parsed] = []
        for (index, item) in items.enumerated() {
            do throws(Refusal) {
                keys.append(try key(item))
            } catch {
                throw TokenKeys.failure(error.isExport ? error.message
                    : prefix + "failed to unmarshal JWK set: failed to decode key #\(index) in \"keys\": jwk.ParseKey: "
                        + error.message)
            }
        }
        return keys
    }

    /// How Go prints the first token of a value it expected to be an array.
    private static func tokenText(_ value: Value) -> String {
        switch value {
        case .null: "<nil>"
        case .bool(let b): b ? "true" : "false"
        case .number(let n): n.text
        case .string(let s): s
        case .object: "{"
        case .array, .set: "["
        }
    }

    /// Go's name for the JSON type of a value, in `cannot unmarshal T into ...`.
    private static func jsonKind(_ value: Value) -> String {
        switch value {
        case .null: "null"
        case .bool: "bool"
        case .number: "number"
        case .string: "string"
        case .object: "object"
        case .array, .set: "array"
        }
    }

    /// Key algorithm names the library knows (signature, key management and content encryption); any other `alg`
    /// refuses the key.
    private static let knownAlgorithms: Set<String> = [
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed25519", "Ed448", "none",
        "RSA1_5", "RSA-OAEP", "RSA-OAEP-256", "RSA-OAEP-384", "RSA-OAEP-512",
        "A128KW", "A192KW", "A256KW", "dir", "ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW",
        "A128GCMKW", "A192GCMKW", "A256GCMKW", "PBES2-HS256+A128KW", "PBES2-HS384+A192KW", "PBES2-HS512+A256KW",
        "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512", "A128GCM", "A192GCM", "A256GCM",
    ]

    private static let stringMembers: Set<String> = ["kid", "use", "x5u", "x5t", "x5t#S256"]

    /// One JWK.
    private static func key(_ value: Value) throws(Refusal) -> Parsed {
        let members: [Value: Value]
        switch value {
        case .object(let m): members = m
        case .null: members = [:]
        default:
            throw Refusal(message: probeFailure + "json: cannot unmarshal \(jsonKind(value)) into Go value of type "
                + probeStruct)
        }
        func member(_ name: String) -> Value? { members[.string(name)] }

        var kty = ""
        if let field = member("kty") {
            switch field {
            case .string(let s): kty = s
            case .null: break
            default:
                throw Refusal(message: probeFailure + "json: cannot unmarshal \(jsonKind(field)) into Go struct field .kty "
                    + "of type string")
            }
        }
        guard let kind = KeyKind(rawValue: kty) else { throw Refusal(message: "invalid key type from JSON (\(kty))") }
        let isPrivate = kind != .oct && member("d") != nil
        let goType = kind.goType(isPrivate: isPrivate)
        func decodeFailure(_ name: String, _ detail: String) -> Refusal {
            Refusal(message: "failed to unmarshal JSON into key (\(goType)): failed to unmarshal JSON into key (\(goType)): "
                + "failed to decode value for key \(name): \(detail)")
        }
        func notAString(_ field: Value) -> String {
            "json: cannot unmarshal \(jsonKind(field)) into Go value of type string"
        }

        // Members are decoded one by one; the first that does not decode refuses the key.
        var strings: [String: String] = [:]
        var byteValues: [String: [UInt8]] = [:]
        for name in members.keys.compactMap(\.stringValue).sorted() where name != "kty" {
            let field = members[.string(name)]!
            if kind.byteMembers.contains(name) {
                switch field {
                case .null: byteValues[name] = []
                case .string(let text):
                    guard let decoded = lenientBase64(text) else {
                        throw decodeFailure(name, "expected base64 encoded []byte (string)")
                    }
                    byteValues[name] = decoded
                default: throw decodeFailure(name, "error reading next value: " + notAString(field))
                }
            } else if stringMembers.contains(name) {
                switch field {
                case .null: break
                case .string(let text): strings[name] = text
                default: throw decodeFailure(name, "error reading next value: " + notAString(field))
                }
            } else {
                switch name {
                case "alg":
                    switch field {
                    case .null: break
                    case .string(let text):
                        guard knownAlgorithms.contains(text) else {
                            throw decodeFailure(name, "invalid key value: \(GoQuote.quote(text)): invalid key algorithm")
                        }
                        strings[name] = text
                    default: throw decodeFailure(name, notAString(field))
                    }
                case "crv" where kind == .ec || kind == .okp:
                    guard case .string(let curve) = field else {
                        throw decodeFailure(name, "failed to unmarshal EllipticCurveAlgorithm: " + notAString(field))
                    }
                    let known: Set<String> = kind == .ec ? ["P-256", "P-384", "P-521"] : ["Ed25519", "X25519", "Ed448", "X448"]
                    guard known.contains(curve) else {
                        throw decodeFailure(name, "unknown EllipticCurveAlgorithm: \(GoQuote.quote(curve))")
                    }
                    strings[name] = curve
                case "key_ops":
                    switch field {
                    case .null: break
                    case .array(let operations):
                        if let bad = operations.first(where: { $0.stringValue == nil }) {
                            throw decodeFailure(name, "json: cannot unmarshal \(jsonKind(bad)) into Go value of type "
                                + "jwk.KeyOperation")
                        }
                    default:
                        throw decodeFailure(name, "json: cannot unmarshal \(jsonKind(field)) into Go value of type "
                            + "jwk.KeyOperationList")
                    }
                case "x5c":
                    try checkCertificateChain(field) { detail throws(Refusal) in throw decodeFailure(name, detail) }
                default:
                    break
                }
            }
        }
        for name in kind.required where member(name) == nil {
            throw Refusal(message: "failed to unmarshal JSON into key (\(goType)): failed to unmarshal JSON into key "
                + "(\(goType)): required field \(name) is missing")
        }

        let algorithm = strings["alg"] ?? ""
        let keyID = strings["kid"] ?? ""
        func invalid(_ detail: String) -> Refusal { Refusal(message: validationFailure + detail) }
        func exportFailure(_ detail: String) -> Refusal {
            Refusal(message: "jwk.Export: failed to export jwk.Key to raw format: " + detail, isExport: true)
        }
        let visibility = isPrivate ? "Private" : "Public"
        var material: VerificationKey?
        switch kind {
        case .rsa:
            let n = Array((byteValues["n"] ?? []).drop { $0 == 0 })
            let e = Array((byteValues["e"] ?? []).drop { $0 == 0 })
            let type = "jwk.RSA\(visibility)Key"
            guard !n.isEmpty else { throw invalid("\(type): missing \"n\" value") }
            guard !e.isEmpty else { throw invalid("\(type): missing \"e\" value") }
            let exponentBits = (e.count - 1) * 8 + (8 - e[0].leadingZeroBitCount)
            guard exponentBits <= 63 else {
                throw invalid("\(type): rsa public exponent too large for this platform: \(exponentBits) bits (max 63)")
            }
            guard e.last! & 1 == 1, e != [1] else {
                throw invalid("\(type): invalid rsa public exponent: must be a positive odd integer")
            }
            if isPrivate {
                guard !(byteValues["d"] ?? []).isEmpty else { throw invalid("\(type): missing \"d\" value") }
                for name in ["q", "p"] where (byteValues[name] ?? []).isEmpty {
                    throw exportFailure("missing \"\(name)\" value")
                }
            }
            material = try? VerificationKey.rsa(modulus: n, exponent: e, minimumBits: VerificationKey.smallestRSABits)
        case .ec:
            let curve = strings["crv"] ?? ""
            let size = curve == "P-256" ? 32 : curve == "P-384" ? 48 : 66
            let type = "jwk.ECDSA\(visibility)Key"
            for name in ["x", "y"] + (isPrivate ? ["d"] : []) {
                let count = byteValues[name]?.count ?? 0
                guard count == size else {
                    throw invalid("\(type): invalid \"\(name)\" length (\(count)) for curve \"\(curve)\"")
                }
            }
            do {
                material = try VerificationKey.ec(curve: curve, x: byteValues["x"]!, y: byteValues["y"]!)
            } catch {
                throw invalid("\(type): invalid ECDSA public key: \(curve.filter { $0 != "-" }) point not on curve")
            }
        case .okp:
            let curve = strings["crv"] ?? ""
            let x = byteValues["x"] ?? []
            let type = "jwk.OKP\(visibility)Key"
            switch curve {
            case "Ed25519", "X25519":
                guard x.count == 32 else { throw invalid("\(type): \(curve.lowercased()): wrong public key size") }
                if isPrivate, (byteValues["d"] ?? []).count != 32 {
                    throw invalid("\(type): \(curve.lowercased()): wrong private key size")
                }
                if curve == "Ed25519" { material = try? VerificationKey.ed25519(x) }
            default:
                throw Refusal(message: "jwk.Export: failed to export jwk.Key to raw format: jwk.OKPPublicKey: failed to "
                    + "build public key: invalid curve algorithm \(curve)", isExport: true)
            }
        case .oct:
            let secret = byteValues["k"] ?? []
            guard !secret.isEmpty else { throw invalid("jwk.SymmetricKey: missing \"k\" field") }
            material = try? VerificationKey.hmac(secret: secret)
        }
        return Parsed(kind: kind, isPrivate: isPrivate, algorithm: algorithm, keyID: keyID, curve: strings["crv"] ?? "",
                      members: byteValues, publicKey: material)
    }

    /// `x5c`: a list of standard-base64 DER certificates.
    private static func checkCertificateChain(
        _ field: Value, _ fail: (String) throws(Refusal) -> Void
    ) throws(Refusal) {
        guard case .array(let items) = field else {
            try fail("json: cannot unmarshal \(jsonKind(field)) into Go value of type []string")
            return
        }
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else {
                try fail("json: cannot unmarshal \(jsonKind(item)) into Go value of type string")
                return
            }
            let prefix = "failed to decode certificate at index \(index): "
            guard let der = try? Base64.decode(Array(text.utf8), url: false) else {
                try fail(prefix + "failed to decode base64 encoded certificate")
                return
            }
            let block = GoPEM(type: "CERTIFICATE", bytes: der, rest: [])
            do {
                _ = try VerificationKey(pem: block.canonicalText, minimumRSABits: VerificationKey.smallestRSABits)
            } catch where error.code == .badPEM {
                try fail(prefix + "failed to parse x509 certificate: x509: malformed certificate")
            } catch {
                // A certificate whose key cannot verify JWS signatures is still a certificate.
            }
        }
    }

    /// Base64 as the JWK library reads key members: the alphabet is the standard one when `+` or `/` appear, else
    /// the URL one; the text is padded when it ends with `=`, else unpadded.
    private static func lenientBase64(_ text: String) -> [UInt8]? {
        var bytes = Array(text.utf8)
        let isPadded = bytes.last == UInt8(ascii: "=")
        let isURL = !bytes.contains { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "/") }
        if !isPadded {
            // Go's unpadded decoders reject padding anywhere and accept what padding would complete.
            switch bytes.count % 4 {
            case 1: return nil
            case 2: bytes += [UInt8(ascii: "="), UInt8(ascii: "=")]
            case 3: bytes.append(UInt8(ascii: "="))
            default: break
            }
        }
        return try? Base64.decode(bytes, url: isURL)
    }
}

extension JWKReader.KeyKind {
    /// The required members, in the order their absence is reported.
    var required: [String] {
        switch self {
        case .rsa: ["e", "n"]
        case .ec: ["crv", "x", "y"]
        case .okp: ["crv", "x"]
        case .oct: ["k"]
        }
    }

    /// Members holding base64 bytes.
    var byteMembers: Set<String> {
        switch self {
        case .rsa: ["n", "e", "d", "p", "q", "dp", "dq", "qi"]
        case .ec: ["x", "y", "d"]
        case .okp: ["x", "d"]
        case .oct: ["k"]
        }
    }

    func goType(isPrivate: Bool) -> String {
        switch self {
        case .rsa: isPrivate ? "*jwk.rsaPrivateKey" : "*jwk.rsaPublicKey"
        case .ec: isPrivate ? "*jwk.ecdsaPrivateKey" : "*jwk.ecdsaPublicKey"
        case .okp: isPrivate ? "*jwk.okpPrivateKey" : "*jwk.okpPublicKey"
        case .oct: "*jwk.symmetricKey"
        }
    }
}
