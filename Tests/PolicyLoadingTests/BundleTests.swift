import AuthzPolicy
import Crypto
import DecisionPoint
import Foundation
import JOSE
import PolicyCore
import PolicyLoading
import Rego
import Testing
import WardenTesting
import _CryptoExtras

/// OPA bundles: the archive format with its bounds, OPA's signature digests, signing and verification, and
/// loading a bundle's policies, data and roots.
@Suite struct BundleTests {
    static let policy = """
        package envoy.authz

        default allow := false

        allow if data.meta.open == true
        """

    static func entries(_ files: [String: String]) -> [TarArchive.Entry] {
        files.keys.sorted().map { TarArchive.Entry(path: $0, bytes: Array(files[$0]!.utf8)) }
    }

    static func bundle(_ files: [String: String], revision: String = "r1", roots: [String]? = nil) -> OPABundle {
        let manifest = BundleManifest(revision: revision, roots: roots, regoVersion: 1)
        return OPABundle(manifest: manifest, files: entries(files), manifestBytes: manifest.encoded())
    }

    static let files = [
        "envoy/authz/policy.rego": policy,
        "meta/data.json": #"{"open": true, "n": 1.50}"#,
        "deny.yaml": """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-admin, namespace: default}
            spec:
              action: DENY
              rules: [{to: [{operation: {paths: ["/admin"]}}]}]
            """,
    ]

    // MARK: - Archive

    @Test func archiveRoundTripsThroughTheSystemTar() throws {
        let long = String(repeating: "deep/", count: 30) + "policy.rego"
        var files = Self.files
        files[long] = Self.policy.replacingOccurrences(of: "envoy.authz", with: "deep.one")
        let bytes = Self.bundle(files).archive()
        let read = try OPABundle.read(bytes)
        #expect(read.manifest.revision == "r1")
        #expect(Set(read.files.map(\.path)) == Set(files.keys))
        #expect(read.files.first { $0.path == long }?.bytes == Array(files[long]!.utf8), "a pax path record carries a long name")

        // GNU tar lists and extracts what Warden writes, and Warden reads what GNU tar writes.
        let dir = try TemporaryDirectory()
        FileManager.default.createFile(atPath: dir.path + "/b.tar.gz", contents: Data(bytes))
        let listed = try ProcessRunner.run("/usr/bin/env", ["tar", "tzf", dir.path + "/b.tar.gz"])
        #expect(listed.status == 0)
        #expect(listed.stdout.split(separator: "\n").contains("/" + long))
        try dir.write("src/x/data.json", #"{"a": 1}"#)
        try dir.write("src/.manifest", #"{"revision": "from-tar"}"#)
        let made = try ProcessRunner.run("/usr/bin/env", ["tar", "czf", dir.path + "/t.tar.gz", "-C", dir.path + "/src", "."])
        #expect(made.status == 0)
        let fromTar = try OPABundle.read(Array(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/t.tar.gz"))))
        #expect(fromTar.manifest.revision == "from-tar")
        #expect(fromTar.files.map(\.path) == ["x/data.json"])
    }

    @Test func refusesLinksAndClimbingNames() throws {
        let dir = try TemporaryDirectory()
        try dir.write("src/a.rego", Self.policy)
        _ = try ProcessRunner.run("/usr/bin/env", ["ln", "-s", "/etc/passwd", dir.path + "/src/link.rego"])
        _ = try ProcessRunner.run("/usr/bin/env", ["tar", "czf", dir.path + "/l.tar.gz", "-C", dir.path + "/src", "."])
        #expect(throws: Diagnostic.self) { try OPABundle.read(Array(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/l.tar.gz")))) }
        let climbing = Gzip.compress(TarArchive.write([TarArchive.Entry(path: "a/../../etc/x.rego", bytes: [1])]))
        let error = #expect(throws: Diagnostic.self) { try OPABundle.read(climbing) }
        #expect(error?.message.contains("`..`") == true)
    }

    @Test func boundsAreEnforcedBeforeTheWork() throws {
        // A gzip bomb stops at the decompressed limit.
        let bomb = Gzip.compress(TarArchive.write([TarArchive.Entry(path: "data.json", bytes: [UInt8](repeating: 0x20, count: 4 << 20))]))
        #expect(bomb.count < 64 * 1024)
        let limits = BundleLimits(maxCompressedBytes: 1 << 20, maxUncompressedBytes: 1 << 20)
        #expect((#expect(throws: Diagnostic.self) { try OPABundle.read(bomb, limits: limits) })?.code == OPABundle.Code.tooLarge)
        // The compressed size, before decompressing anything.
        #expect((#expect(throws: Diagnostic.self) {
            try OPABundle.read(bomb, limits: BundleLimits(maxCompressedBytes: 1024))
        })?.code == OPABundle.Code.tooLarge)
        // The file count and each file's size (read from its header, before its data).
        let many = Gzip.compress(TarArchive.write((0..<20).map { TarArchive.Entry(path: "f\($0).rego", bytes: [0x20]) }))
        #expect((#expect(throws: Diagnostic.self) {
            try OPABundle.read(many, limits: BundleLimits(tar: TarArchive.Limits(maxEntries: 10)))
        })?.code == OPABundle.Code.tooLarge)
        #expect((#expect(throws: Diagnostic.self) {
            try OPABundle.read(bomb, limits: BundleLimits(tar: TarArchive.Limits(maxEntryBytes: 1 << 20)))
        })?.code == OPABundle.Code.tooLarge)
        #expect(throws: Diagnostic.self) { try OPABundle.read(Array(bomb.prefix(bomb.count / 2))) }
    }

    // MARK: - Signatures

    @Test func structuredFilesHashAsOPACanonicalJSON() throws {
        let text = #"{ "b": 1.50, "a": "<&>\u2028\u0001é", "c": [true, null, {"z": 1e3, "y": -0}] }"#
        let canonical = try CanonicalJSON.canonical(Array(text.utf8))
        #expect(String(decoding: canonical, as: UTF8.self) == #"{"a":"<&>\u2028\u0001é","b":1.50,"c":[true,null,{"y":-0,"z":1e3}]}"#)
        let expected = Array(SHA256.hash(data: canonical)).map { String(format: "%02x", $0) }.joined()
        #expect(try BundleHash.digest(path: "x/data.json", bytes: Array(text.utf8)) == expected)
        let raw = Array(SHA256.hash(data: Array(text.utf8))).map { String(format: "%02x", $0) }.joined()
        #expect(try BundleHash.digest(path: "x/other.json", bytes: Array(text.utf8)) == raw, "only data files and .manifest are structured")

        // Keys are ordered by their decoded bytes and the last of duplicates wins, whether or not they were escaped;
        // members already in order are kept as written.
        let keys = #"{"b": 1, "é": 0, "a": 2, "b": 3, "a\u0062": 4, "ab": 5, "n": {"x": [1, {"q": 1, "p": 2}], "y": "z"}}"#
        #expect(String(decoding: try CanonicalJSON.canonical(Array(keys.utf8)), as: UTF8.self)
            == #"{"a":2,"ab":5,"b":3,"n":{"x":[1,{"p":2,"q":1}],"y":"z"},"é":0}"#)
    }

    static func rsaKey() throws -> (String, String) {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        return (key.pemRepresentation, key.publicKey.pemRepresentation)
    }

    static func signed(_ bundle: OPABundle, pem: String, algorithm: JWSAlgorithm) throws -> OPABundle {
        var b = bundle
        let signer = try BundleSigner(pem: pem, algorithm: algorithm)
        b.signatures = [try signer.sign(b.files.map { ($0.path, $0.bytes) } + [(OPABundle.manifestFile, b.manifestBytes!)])]
        return try OPABundle.read(b.archive())
    }

    @Test(arguments: [JWSAlgorithm.rs256, .es256])
    func signedBundlesVerifyAndTamperingIsRefused(algorithm: JWSAlgorithm) throws {
        let (privatePEM, publicPEM): (String, String)
        let (otherPrivate, _): (String, String)
        if algorithm == .rs256 {
            (privatePEM, publicPEM) = try Self.rsaKey()
            (otherPrivate, _) = try Self.rsaKey()
        } else {
            let key = P256.Signing.PrivateKey(), other = P256.Signing.PrivateKey()
            (privatePEM, publicPEM) = (key.pemRepresentation, key.publicKey.pemRepresentation)
            (otherPrivate, _) = (other.pemRepresentation, other.publicKey.pemRepresentation)
        }
        let verification = try BundleVerification.single(pem: publicPEM)
        let good = try Self.signed(Self.bundle(Self.files), pem: privatePEM, algorithm: algorithm)
        try good.verify(verification)

        func refused(_ bundle: OPABundle, _ verification: BundleVerification?) -> String? {
            (#expect(throws: Diagnostic.self) { try bundle.verify(verification) })?.message
        }
        var tampered = good
        tampered.files[0].bytes[0] ^= 1
        #expect(refused(tampered, verification)?.contains("digest mismatch") == true)
        var added = good
        added.files.append(TarArchive.Entry(path: "extra.rego", bytes: Array(Self.policy.utf8)))
        #expect(refused(added, verification)?.contains("not included in bundle signature") == true)
        var removed = good
        removed.files.removeLast()
        #expect(refused(removed, verification)?.contains("not found in the bundle") == true)
        var manifest = good
        manifest.manifestBytes = BundleManifest(revision: "r2", regoVersion: 1).encoded()
        #expect(refused(manifest, verification)?.contains("`.manifest`: digest mismatch") == true)
        let otherKey = try Self.signed(Self.bundle(Self.files), pem: otherPrivate, algorithm: algorithm)
        #expect(refused(otherKey, verification) != nil)
        #expect(refused(good, nil) == "bundle is signed but no verification key is configured")
        #expect(refused(Self.bundle(Self.files), verification) == "bundle missing .signatures.json file")
        // Whitespace and key order in data files do not matter: they are hashed canonically.
        var reformatted = good
        let index = reformatted.files.firstIndex { $0.path == "meta/data.json" }!
        reformatted.files[index].bytes = Array(#"{"n":1.50,   "open":true}"#.utf8)
        try reformatted.verify(verification)
    }

    @Test func signatureTokenHasOPAsShape() throws {
        let (privatePEM, _) = try Self.rsaKey()
        let signed = try Self.signed(Self.bundle(Self.files), pem: privatePEM, algorithm: .rs256)
        let jws = try JWS.parse(signed.signatures![0], maximumSize: 1 << 20)
        #expect(jws.keyID == "default")
        #expect(jws.algorithmName == "RS256")
        let payload = try jws.payloadJSON()
        #expect(payload["keyid"] == .string("default"))
        let names = payload["files"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(Set(names) == Set(Self.files.keys).union([".manifest"]))
        #expect(payload["files"]?.arrayValue?.allSatisfy { $0["algorithm"] == .string("SHA-256") } == true)
    }

    // MARK: - Loading

    @Test func loadsPoliciesModulesAndDataAtTheirPaths() throws {
        let (snapshot, result) = PolicyLoader().load(bundle: Self.bundle(Self.files))
        let loaded = try #require(snapshot, "\(result.diagnostics)")
        #expect(loaded.bundleRevision == "r1")
        #expect(loaded.authorization.policies.count == 1)
        #expect(loaded.rego?.data["meta"]?["open"] == .bool(true))
        let query = try loaded.rego!.prepare(path: ["envoy", "authz", "allow"])
        #expect(query.evaluateValue(input: .null) == .value(.bool(true)))
    }

    @Test func rootsLimitPackagesAndData() throws {
        let (inside, r1) = PolicyLoader().load(bundle: Self.bundle(Self.files, roots: ["envoy", "meta"]))
        #expect(inside != nil, "\(r1.diagnostics)")
        let (outside, result) = PolicyLoader().load(bundle: Self.bundle(Self.files, roots: ["envoy"]))
        #expect(outside == nil)
        #expect(result.diagnostics.contains { $0.code == OPABundle.Code.roots && $0.message.contains("/meta") })
        let (package, r3) = PolicyLoader().load(bundle: Self.bundle(Self.files, roots: ["meta"]))
        #expect(package == nil)
        #expect(r3.diagnostics.contains { $0.message.contains("package `envoy.authz`") })
        #expect(throws: Diagnostic.self) {
            try BundleManifest.decode(Array(#"{"revision":"x","roots":["a","a/b"]}"#.utf8))
        }
    }
}
