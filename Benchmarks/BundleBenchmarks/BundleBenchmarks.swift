import Benchmark
import Foundation
import PolicyCore
import PolicyLoading
import _CryptoExtras

// Activating a 10 MB bundle, as `warden serve --bundle` does before its atomic swap: read the .tar.gz within its
// limits (gunzip, tar), verify its RS256 signature (every file's SHA-256, data hashed as OPA's canonical JSON), and
// load it (parse the data and the AuthorizationPolicy documents, compile 40 Rego modules with the data, check the
// manifest's roots, compile the policy indexes). The bundle is built once, seeded: ~26 MB of catalog data
// (180,000 objects of random hex tags, which compress about 2.6:1 to a 10 MB archive), 40 OPA-Envoy modules and
// five AuthorizationPolicies. A second benchmark does only the gunzip and one SHA-256 of the archive's bytes: the
// floor any bundle reader pays for this archive.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .peakMemoryResident],
        maxDuration: .seconds(30),
        maxIterations: 10
    )
    let fixture = BundleFixture.make()
    Benchmark("activate/10 MB bundle") { benchmark in
        for _ in benchmark.scaledIterations {
            let bundle = try OPABundle.read(fixture.archive)
            try bundle.verify(fixture.verification)
            let (snapshot, result) = PolicyLoader().load(bundle: bundle)
            precondition(snapshot != nil, "\(result.diagnostics)")
            blackHole(snapshot)
        }
    }
    Benchmark("gunzip and hash/10 MB bundle") { benchmark in
        for _ in benchmark.scaledIterations {
            let bytes = try Gzip.decompress(fixture.archive, limit: 1 << 30)
            blackHole(try BundleHash.digest(path: "archive", bytes: bytes))
        }
    }
}

struct BundleFixture: Sendable {
    let archive: [UInt8]
    let verification: BundleVerification

    static func make() -> BundleFixture {
        var rng = SplitMix64(seed: 10)
        var items: [Value: Value] = [:]
        func hex(_ n: Int) -> String {
            var s = ""
            for _ in 0..<n { s += String(rng.next() & 0xffff_ffff, radix: 16) }
            return s
        }
        for i in 0..<180_000 {
            items[.string("item-\(i)")] = [
                "owner": .string("team-\(i % 97)"),
                "tags": .array([.string(hex(3)), .string(hex(3)), .string(hex(3))]),
                "limit": .int(i % 1000),
            ]
        }
        var files: [TarArchive.Entry] = [
            .init(path: "catalog/data.json", bytes: Array(JSONWriter.string(["items": .object(items)]).utf8)),
            .init(path: "meta/data.json", bytes: Array(#"{"revision": "bench"}"#.utf8)),
        ]
        for m in 0..<40 {
            files.append(.init(path: "envoy/authz/m\(m).rego", bytes: Array("""
                package envoy.authz.m\(m)

                default allow := false

                allow if {
                \tinput.attributes.request.http.method == "GET"
                \tdata.catalog.items[input.parsed_path[1]].owner == input.attributes.source.principal
                }
                """.utf8)))
        }
        for p in 0..<5 {
            files.append(.init(path: "policies/p\(p).yaml", bytes: Array("""
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: p\(p), namespace: ns\(p)}
                spec:
                  selector: {matchLabels: {app: app\(p)}}
                  rules: [{to: [{operation: {methods: ["GET"], paths: ["/api/\(p)/*"]}}]}]
                """.utf8)))
        }
        let manifest = BundleManifest(revision: "bench", regoVersion: 1)
        var bundle = OPABundle(manifest: manifest, files: files, manifestBytes: manifest.encoded())
        let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
        let signer = try! BundleSigner(pem: key.pemRepresentation, algorithm: .rs256)
        bundle.signatures = [try! signer.sign(files.map { ($0.path, $0.bytes) } + [(OPABundle.manifestFile, manifest.encoded())])]
        return BundleFixture(
            archive: bundle.archive(), verification: try! BundleVerification.single(pem: key.publicKey.pemRepresentation))
    }
}
