import Crypto
import Foundation
import PolicyCore
import _CryptoExtras

/// `io.jwt.encode_sign` and `encode_sign_raw`: a compact JWS of the given header and payload, signed with the first
/// key of a JWK or JWK set, with OPA's checks and refusals. Signatures are made with swift-crypto; ECDSA and PSS
/// signatures are randomized, so equal calls need not give equal tokens.
enum TokenSigning {
    static func failure(_ message: String) -> BuiltinError { BuiltinError(.builtinError, message) }

    static func sign(header: [UInt8], payload: [UInt8], jwk: [UInt8]) throws(BuiltinError) -> String {
        guard let key = try JWKReader.parse(jwk, context: .signing).first else {
            throw failure("no keys found in JWK set")
        }
        let algorithm = try headerString(header, "alg") ?? ""
        guard TokenKeys.algorithms.contains(algorithm) else { throw failure("unknown JWS algorithm: \(algorithm)") }
        let type = try? headerString(header, "typ")
        if type == nil || type == "JWT", !GoJSON.isValid(String(decoding: payload, as: UTF8.self)) {
            throw failure("type is JWT but payload is not JSON")
        }
        let input = Base64.encode(header, url: true, pad: false) + "." + Base64.encode(payload, url: true, pad: false)
        let signature = try self.signature(Array(input.utf8), algorithm: algorithm, key: key)
        return input + "." + Base64.encode(signature, url: true, pad: false)
    }

    /// A string member of the header, nil when it is absent; a header that is not JSON, or a member that is not a
    /// string, refuses the `alg`.
    private static func headerString(_ header: [UInt8], _ name: String) throws(BuiltinError) -> String? {
        let prefix = "missing or invalid '\(name)' header: "
        guard case .success(let value) = GoJSON.decode(GoUTF8.decode(header)) else {
            throw failure(prefix + "cannot parse JSON")
        }
        guard case .object(let members) = value, let member = members[.string(name)] else {
            if name == "alg" { throw failure(prefix + "jwsbb: header \"\(name)\" not found") }
            return nil
        }
        guard case .string(let text) = member else {
            let kind: String
            switch member {
            case .bool(let b): kind = b ? "true" : "false"
            case .number: kind = "number"
            case .null: kind = "null"
            case .array, .set: kind = "array"
            default: kind = "object"
            }
            throw failure(prefix + "value doesn't contain string; it contains \(kind)")
        }
        return text
    }

    private static func signature(
        _ input: [UInt8], algorithm: String, key: JWKReader.Parsed
    ) throws(BuiltinError) -> [UInt8] {
        let family = algorithm.prefix(2)
        let goType = key.kind.goType(isPrivate: key.isPrivate)
        func wrongKey(_ required: String, _ produced: String, converter: Bool) -> BuiltinError {
            failure("jwsbb.Sign: invalid key type \(goType). \(required) is required: \(converter ? "keyconv: " : "")"
                + "failed to produce \(produced) from \(goType): jwk.Export: no suitable exporter found for key type "
                + "'\(goType)'")
        }
        let members = key.members
        switch family {
        case "HS":
            guard key.kind == .oct, let secret = members["k"] else {
                throw wrongKey("[]byte", "[]byte", converter: true)
            }
            let symmetric = SymmetricKey(data: secret)
            switch algorithm {
            case "HS384": return Array(HMAC<SHA384>.authenticationCode(for: input, using: symmetric))
            case "HS512": return Array(HMAC<SHA512>.authenticationCode(for: input, using: symmetric))
            default: return Array(HMAC<SHA256>.authenticationCode(for: input, using: symmetric))
            }
        case "RS", "PS":
            guard key.kind == .rsa, key.isPrivate, let n = members["n"], let e = members["e"], let d = members["d"],
                let p = members["p"], let q = members["q"]
            else { throw wrongKey("*rsa.PrivateKey", "rsa.PrivateKey", converter: false) }
            let padding: _RSA.Signing.Padding = family == "PS" ? .PSS : .insecurePKCS1v1_5
            do {
                let privateKey = try _RSA.Signing.PrivateKey(n: n, e: e, d: d, p: p, q: q)
                let signature: _RSA.Signing.RSASignature
                switch algorithm.suffix(3) {
                case "384": signature = try privateKey.signature(for: SHA384.hash(data: input), padding: padding)
                case "512": signature = try privateKey.signature(for: SHA512.hash(data: input), padding: padding)
                default: signature = try privateKey.signature(for: SHA256.hash(data: input), padding: padding)
                }
                return Array(signature.rawRepresentation)
            } catch {
                throw failure("jwsbb.Sign: failed to sign payload: the RSA private key could not be used "
                    + "(keys under 2048 bits are refused)")
            }
        case "ES":
            guard key.kind == .ec, key.isPrivate, let d = members["d"] else {
                throw wrongKey("*ecdsa.PrivateKey", "ecdsa.PrivateKey", converter: true)
            }
            do {
                // The key's curve signs the digest of the algorithm's hash, whichever curve the algorithm names.
                switch key.curve {
                case "P-256": return Array(try ecdsa(P256.Signing.PrivateKey(rawRepresentation: d), input, algorithm))
                case "P-384": return Array(try ecdsa(P384.Signing.PrivateKey(rawRepresentation: d), input, algorithm))
                default: return Array(try ecdsa(P521.Signing.PrivateKey(rawRepresentation: d), input, algorithm))
                }
            } catch {
                throw failure("jwsbb.Sign: failed to sign payload: the EC private key could not be used")
            }
        default:
            guard key.kind == .okp, key.isPrivate, key.curve == "Ed25519", let d = members["d"] else {
                throw wrongKey("ed25519.PrivateKey", "ed25519.PrivateKey", converter: false)
            }
            do {
                return Array(try Curve25519.Signing.PrivateKey(rawRepresentation: d).signature(for: input))
            } catch {
                throw failure("jwsbb.Sign: failed to sign payload: the Ed25519 private key could not be used")
            }
        }
    }

    private static func ecdsa<K: ECDSASigning>(_ key: K, _ input: [UInt8], _ algorithm: String) throws -> Data {
        switch algorithm {
        case "ES384": try key.rawSignature(for: SHA384.hash(data: input))
        case "ES512": try key.rawSignature(for: SHA512.hash(data: input))
        default: try key.rawSignature(for: SHA256.hash(data: input))
        }
    }
}

/// The three NIST curves' private keys, signing a digest into `r || s`.
protocol ECDSASigning {
    func rawSignature<D: Digest>(for digest: D) throws -> Data
}

extension P256.Signing.PrivateKey: ECDSASigning {
    func rawSignature<D: Digest>(for digest: D) throws -> Data { try signature(for: digest).rawRepresentation }
}

extension P384.Signing.PrivateKey: ECDSASigning {
    func rawSignature<D: Digest>(for digest: D) throws -> Data { try signature(for: digest).rawRepresentation }
}

extension P521.Signing.PrivateKey: ECDSASigning {
    func rawSignature<D: Digest>(for digest: D) throws -> Data { try signature(for: digest).rawRepresentation }
}
