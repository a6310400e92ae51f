import Crypto
import Foundation
import JOSE
import PolicyCore
import _CryptoExtras

/// The keys a server checks bundle signatures with, as OPA's `keys` and `bundles.<name>.signing` configure them.
public struct BundleVerification: Sendable {
    public struct Key: Sendable {
        public var key: VerificationKey
        public var algorithm: JWSAlgorithm
        public var scope: String?

        public init(key: VerificationKey, algorithm: JWSAlgorithm, scope: String? = nil) {
            self.key = key
            self.algorithm = algorithm
            self.scope = scope
        }
    }

    /// Keys by id.
    public var keys: [String: Key]
    /// The key to use whatever the token names (`signing.keyid`); else the token's `kid`, else its `keyid` claim.
    public var keyID: String?
    public var scope: String?

    public init(keys: [String: Key], keyID: String? = nil, scope: String? = nil) {
        self.keys = keys
        self.keyID = keyID
        self.scope = scope
    }

    /// One PEM public key (or certificate), under OPA's default id `default`; the algorithm follows the key
    /// (RS256 for RSA, ES256/384/512 for the P curves) unless given.
    public static func single(pem: String, algorithm: JWSAlgorithm? = nil, keyID: String = BundleSigner.defaultKeyID)
        throws(Diagnostic) -> BundleVerification
    {
        let key: VerificationKey
        do {
            key = try VerificationKey(pem: pem)
        } catch {
            throw OPABundle.error(OPABundle.Code.signature, "bundle verification key: \(error.message)")
        }
        guard let chosen = algorithm ?? BundleSigner.defaultAlgorithm(for: key) else {
            throw OPABundle.error(OPABundle.Code.signature, "bundle verification key: give the algorithm for this key type")
        }
        return BundleVerification(keys: [keyID: Key(key: key, algorithm: chosen)], keyID: keyID)
    }
}

extension OPABundle {
    /// Checks the bundle's signature as OPA does: with keys configured, a bundle must carry exactly one JWT, signed
    /// by the configured key, whose `files` list every file of the bundle with a matching digest and nothing more;
    /// without keys, a signed bundle is refused too (its signature could not be checked).
    public func verify(_ verification: BundleVerification?) throws(Diagnostic) {
        let signatures = self.signatures ?? []
        guard let verification else {
            if !signatures.isEmpty {
                throw OPABundle.error(OPABundle.Code.signature, "bundle is signed but no verification key is configured")
            }
            return
        }
        guard !signatures.isEmpty else { throw OPABundle.error(OPABundle.Code.signature, "bundle missing .signatures.json file") }
        guard signatures.count == 1 else {
            throw OPABundle.error(OPABundle.Code.signature, ".signatures.json: multiple JWTs not supported (expected exactly one)")
        }
        var listed = try Self.verifiedFiles(signatures[0], verification)
        var present = files.map { ($0.path, $0.bytes) }
        if let manifestBytes { present.append((OPABundle.manifestFile, manifestBytes)) }
        for (path, bytes) in present {
            guard let entry = listed.removeValue(forKey: path) else {
                throw OPABundle.error(OPABundle.Code.signature, "file `\(path)` not included in bundle signature", file: "/" + path)
            }
            guard entry.algorithm == "SHA-256" else {
                throw OPABundle.error(OPABundle.Code.signature, "file `\(path)`: unsupported hashing algorithm `\(entry.algorithm)`")
            }
            let digest: String
            do {
                digest = try BundleHash.digest(path: path, bytes: bytes)
            } catch {
                throw OPABundle.error(OPABundle.Code.signature, "`\(path)`: \(error.message)", file: "/" + path)
            }
            guard digest == entry.hash.lowercased() else {
                throw OPABundle.error(OPABundle.Code.signature, "`\(path)`: digest mismatch", file: "/" + path)
            }
        }
        if let missing = listed.keys.sorted().first {
            throw OPABundle.error(OPABundle.Code.signature, "file `\(missing)` specified in bundle signature but not found in the bundle")
        }
    }

    struct SignedFile {
        var hash: String
        var algorithm: String
    }

    /// The `files` of a verified signature token, by name.
    static func verifiedFiles(_ token: String, _ verification: BundleVerification) throws(Diagnostic) -> [String: SignedFile] {
        func fail(_ message: String) -> Diagnostic { OPABundle.error(OPABundle.Code.signature, message) }
        let jws: JWS
        do {
            jws = try JWS.parse(token, maximumSize: 16 << 20)
        } catch {
            throw fail("bundle signature: \(error.message)")
        }
        guard case .object(let payload)? = try? jws.payloadJSON() else { throw fail("bundle signature: payload is not a JSON object") }
        let claimedKeyID = payload[.string("keyid")]?.stringValue
        guard let keyID = verification.keyID ?? jws.keyID ?? claimedKeyID, !keyID.isEmpty else {
            throw fail("verification key ID is empty")
        }
        guard let key = verification.keys[keyID] else { throw fail("verification key corresponding to ID `\(keyID)` not found") }
        do {
            try jws.verifySignature(using: key.key, algorithm: key.algorithm)
        } catch {
            throw fail("bundle signature: \(error.message)")
        }
        let scope = verification.scope ?? key.scope ?? ""
        guard (payload[.string("scope")]?.stringValue ?? "") == scope else { throw fail("bundle signature: scope mismatch") }
        guard case .array(let list)? = payload[.string("files")] else { throw fail("bundle signature lists no `files`") }
        var files: [String: SignedFile] = [:]
        for item in list {
            guard let name = item["name"]?.stringValue, let hash = item["hash"]?.stringValue,
                  let algorithm = item["algorithm"]?.stringValue
            else { throw fail("bundle signature: every file needs `name`, `hash` and `algorithm`") }
            files[name.hasPrefix("/") ? String(name.dropFirst()) : name] = SignedFile(hash: hash, algorithm: algorithm)
        }
        return files
    }
}

/// Signs bundles as `opa build --signing-key` does: a JWS over `{"files": [{name, hash, algorithm}...],
/// "keyid": ID}` with the key id also in the header.
public struct BundleSigner: Sendable {
    public static let defaultKeyID = "default"

    enum PrivateKey: Sendable {
        case rsa(_RSA.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
    }

    let key: PrivateKey
    public let algorithm: JWSAlgorithm
    public let keyID: String

    /// A signer from a PEM private key (PKCS #1, PKCS #8 or SEC 1) and RS256 or ES256.
    public init(pem: String, algorithm: JWSAlgorithm, keyID: String = defaultKeyID) throws(Diagnostic) {
        switch algorithm {
        case .rs256:
            guard let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) else {
                throw OPABundle.error(OPABundle.Code.signature, "the signing key is not an RSA private key in PEM")
            }
            guard key.keySizeInBits >= 2048 else {
                throw OPABundle.error(OPABundle.Code.signature, "the RSA signing key has \(key.keySizeInBits) bits; at least 2048 are needed")
            }
            self.key = .rsa(key)
        case .es256:
            guard let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) else {
                throw OPABundle.error(OPABundle.Code.signature, "the signing key is not a P-256 private key in PEM")
            }
            self.key = .p256(key)
        default:
            throw OPABundle.error(OPABundle.Code.signature, "signing algorithm `\(algorithm)` is not supported; use RS256 or ES256")
        }
        self.algorithm = algorithm
        self.keyID = keyID
    }

    static func defaultAlgorithm(for key: VerificationKey) -> JWSAlgorithm? {
        [.rs256, .es256, .es384, .es512, .edDSA].first { key.allows($0) }
    }

    /// Signs `files` (bundle paths, no leading `/`) and returns the compact JWS.
    public func sign(_ files: [(path: String, bytes: [UInt8])]) throws(Diagnostic) -> String {
        var list: [String] = []
        for (path, bytes) in files {
            let digest: String
            do {
                digest = try BundleHash.digest(path: path, bytes: bytes)
            } catch {
                throw OPABundle.error("`\(path)`: \(error.message)", file: "/" + path)
            }
            var name = ""
            JSONWriter.writeString(path, to: &name)
            list.append("{\"name\":\(name),\"hash\":\"\(digest)\",\"algorithm\":\"SHA-256\"}")
        }
        var kid = ""
        JSONWriter.writeString(keyID, to: &kid)
        let header = "{\"alg\":\"\(algorithm.rawValue)\",\"kid\":\(kid)}"
        let payload = "{\"files\":[\(list.joined(separator: ","))],\"keyid\":\(kid)}"
        let input = Base64URL.encode(header) + "." + Base64URL.encode(payload)
        let signature: [UInt8]
        do {
            switch key {
            case .rsa(let key):
                signature = Array(try key.signature(for: Array(input.utf8), padding: .insecurePKCS1v1_5).rawRepresentation)
            case .p256(let key):
                signature = Array(try key.signature(for: Array(input.utf8)).rawRepresentation)
            }
        } catch {
            throw OPABundle.error(OPABundle.Code.signature, "cannot sign the bundle: \(error)")
        }
        return input + "." + Base64URL.encode(signature)
    }
}
