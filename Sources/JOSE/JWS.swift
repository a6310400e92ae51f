import PolicyCore

/// A JWS in compact serialization (RFC 7515 §7.1), split and decoded but not verified.
///
/// Parsing is strict: exactly three segments, each canonical unpadded base64url; the protected header a JSON object
/// with a string `alg`; `kid` a string when present; `crit` a non-empty list of extension names that are present in
/// the header. Whether the algorithm is acceptable and the signature valid is decided by `verifySignature`.
public struct JWS: Sendable {
    /// The whole token as it was given.
    public let compact: String
    /// The protected header, a JSON object.
    public let header: Value
    /// The decoded payload bytes (a JWT's claims set is JSON; see `payloadJSON()`).
    public let payload: [UInt8]
    /// The decoded signature bytes.
    public let signature: [UInt8]
    /// The ASCII bytes `BASE64URL(header) "." BASE64URL(payload)` that the signature covers.
    public let signingInput: ArraySlice<UInt8>
    /// The payload segment as it appears in the token (base64url), for forwarding it without re-encoding.
    public let encodedPayload: Substring
    /// The header's `alg`, whatever it names (`none` included).
    public let algorithmName: String
    /// The header's `kid`.
    public let keyID: String?
    /// The header's `crit` names.
    public let critical: [String]

    /// The signature algorithm, when it is one Warden verifies; nil for `none` and unknown names.
    public let algorithm: JWSAlgorithm?

    /// Tokens larger than this are refused before any decoding: 16 KiB, the common proxies' header size limit.
    public static let defaultMaximumSize = 16 * 1024

    /// Header names registered by RFC 7515 and RFC 7519, which `crit` must not list.
    static let registeredHeaderNames: Set<String> = [
        "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit",
    ]

    /// Parses a compact JWS. `maximumSize` bounds the token's length in bytes.
    public static func parse(_ token: String, maximumSize: Int = defaultMaximumSize) throws(JOSEError) -> JWS {
        let bytes = Array(token.utf8)
        guard bytes.count <= maximumSize else {
            throw JOSEError(.tooLarge, "jwt is larger than \(maximumSize) bytes")
        }
        guard !bytes.isEmpty else { throw .malformed("jwt is empty") }
        var dots: [Int] = []
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: ".") {
            dots.append(index)
            if dots.count > 2 { break }
        }
        guard dots.count == 2 else {
            throw .malformed("jwt is not in the form header.payload.signature (three segments separated by two dots)")
        }
        let headerBytes = bytes[0..<dots[0]]
        let payloadBytes = bytes[(dots[0] + 1)..<dots[1]]
        let signatureBytes = bytes[(dots[1] + 1)...]
        guard !headerBytes.isEmpty else { throw .malformed("jwt header segment is empty") }

        guard let headerJSON = decode(headerBytes) else {
            throw JOSEError(.badBase64, "jwt header is not valid base64url")
        }
        guard let payload = decode(payloadBytes) else {
            throw JOSEError(.badBase64, "jwt payload is not valid base64url")
        }
        guard let signature = decode(signatureBytes) else {
            throw JOSEError(.badBase64, "jwt signature is not valid base64url")
        }
        let header: Value
        do {
            header = try JSONReader.parse(headerJSON)
        } catch {
            throw JOSEError(.badHeader, "jwt header is not valid JSON")
        }
        guard case .object = header else { throw JOSEError(.badHeader, "jwt header is not a JSON object") }
        guard let alg = header["alg"] else { throw JOSEError(.badHeader, "jwt header has no `alg`") }
        guard let algorithmName = alg.stringValue else {
            throw JOSEError(.badHeader, "jwt header `alg` is not a string")
        }
        var keyID: String?
        if let kid = header["kid"] {
            guard let text = kid.stringValue else { throw JOSEError(.badHeader, "jwt header `kid` is not a string") }
            keyID = text
        }
        var critical: [String] = []
        if let crit = header["crit"] {
            guard let names = crit.arrayValue, !names.isEmpty else {
                throw JOSEError(.badHeader, "jwt header `crit` must be a non-empty list of header names")
            }
            for name in names {
                guard let text = name.stringValue else {
                    throw JOSEError(.badHeader, "jwt header `crit` must list header names as strings")
                }
                guard !registeredHeaderNames.contains(text) else {
                    throw JOSEError(.badHeader, "jwt header `crit` must not list the registered header `\(text)`")
                }
                guard header[text] != nil else {
                    throw JOSEError(.badHeader, "jwt header `crit` lists `\(text)`, which the header does not have")
                }
                critical.append(text)
            }
        }
        let payloadText = Substring(token.utf8[token.utf8.index(token.utf8.startIndex, offsetBy: dots[0] + 1)
            ..< token.utf8.index(token.utf8.startIndex, offsetBy: dots[1])])
        return JWS(
            compact: token, header: header, payload: payload, signature: signature,
            signingInput: bytes[0..<dots[1]], encodedPayload: payloadText, algorithmName: algorithmName,
            keyID: keyID, critical: critical, algorithm: JWSAlgorithm(name: algorithmName))
    }

    private static func decode(_ segment: ArraySlice<UInt8>) -> [UInt8]? {
        segment.withUnsafeBytes { Base64URL.decode(bytes: $0) }
    }

    /// The payload as JSON; a JWT's claims set must be a JSON object.
    public func payloadJSON() throws(JOSEError) -> Value {
        let value: Value
        do {
            value = try JSONReader.parse(payload)
        } catch {
            throw JOSEError(.badPayload, "jwt payload is not valid JSON")
        }
        guard case .object = value else { throw JOSEError(.badPayload, "jwt payload is not a JSON object") }
        return value
    }

    /// Refuses a token whose `crit` names an extension outside `understood` (RFC 7515 §4.1.11). Warden itself
    /// understands none, so by default any `crit` refuses the token.
    public func checkCritical(understood: Set<String> = []) throws(JOSEError) {
        for name in critical where !understood.contains(name) {
            throw JOSEError(.unsupportedCritical, "jwt header `crit` names `\(name)`, an extension that is not supported")
        }
    }

    /// The header's algorithm when it can be verified; `none` and unknown names are refused here.
    public func requireAlgorithm() throws(JOSEError) -> JWSAlgorithm {
        guard let algorithm else {
            if algorithmName.lowercased() == "none" {
                throw JOSEError(.unsupportedAlgorithm, "jwt algorithm `none` is not accepted: the token is unsigned")
            }
            throw JOSEError(.unsupportedAlgorithm, "jwt algorithm `\(algorithmName)` is not supported")
        }
        return algorithm
    }

    /// Verifies the signature with `key`, using the header's algorithm (or `algorithm` when the caller fixes one,
    /// as OPA's `io.jwt.verify_rs256` does: then the header must name that algorithm).
    ///
    /// Throws `unsupportedAlgorithm` for `none` and unknown algorithms, `keyAlgorithmMismatch` when the key's type
    /// or its pinned `alg` does not allow the algorithm, and `signatureInvalid` when the signature does not verify.
    public func verifySignature(using key: VerificationKey, algorithm expected: JWSAlgorithm? = nil) throws(JOSEError) {
        let algorithm = try requireAlgorithm()
        if let expected, expected != algorithm {
            throw JOSEError(.keyAlgorithmMismatch, "jwt algorithm `\(algorithm)` is not the expected `\(expected)`")
        }
        guard key.allows(algorithm) else {
            throw JOSEError(.keyAlgorithmMismatch, "the \(key.kindDescription) cannot verify `\(algorithm)` signatures")
        }
        guard key.isValidSignature(signature, for: signingInput, algorithm: algorithm) else {
            throw JOSEError(.signatureInvalid, "jwt signature does not verify")
        }
    }
}
