import Foundation
import Identity
import MeshCA
import PolicyCore
import Testing
import WardenTesting
import X509

@Suite("CA files")
struct CAFilesTests {
    static func mode(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func aCADirectoryRoundTripsAndIsNeverOverwrittenWithoutForce() throws {
        let temporary = try TemporaryDirectory()
        let directory = CADirectory(temporary.path + "/ca")
        let root = try CertificateAuthority.root(trustDomain: "example.org", key: SigningKey())
        try directory.save(root, force: false)
        #expect(try Self.mode(directory.file(CADirectory.caKey)) == 0o600)
        let loaded = try directory.load()
        #expect(loaded.trustDomain == "example.org")
        #expect(loaded.certificate == root.certificate)
        #expect(loaded.key.publicKey == root.key.publicKey)
        let error = #expect(throws: CAError.self) { try directory.save(root, force: false) }
        #expect(error?.code == .exists)
        let replacement = try CertificateAuthority.root(trustDomain: "example.org", key: SigningKey())
        try directory.save(replacement, force: true)
        #expect(try directory.load().certificate == replacement.certificate)

        let intermediateDirectory = CADirectory(temporary.path + "/intermediate")
        try intermediateDirectory.save(try replacement.intermediate(key: SigningKey()), force: false)
        let intermediate = try intermediateDirectory.load()
        #expect(intermediate.chain.count == 2)
        #expect(intermediate.bundle.roots == [replacement.certificate])
        #expect(!FileManager.default.fileExists(atPath: temporary.path + "/missing/ca-cert.pem"))
        #expect(throws: CAError.self) { try CADirectory(temporary.path + "/missing").load() }
    }

    @Test func workloadFilesAreReplacedWholeWithAPrivateKey() throws {
        let temporary = try TemporaryDirectory()
        let factory = try CertificateFactory()
        let files = WorkloadFiles(temporary.path + "/out")
        for round in 0..<3 {
            let key = try SigningKey()
            let issued = try factory.ca.issue(
                LeafRequest(spiffeID: SPIFFEID(parsing: "spiffe://cluster.local/ns/a/sa/b\(round)")),
                publicKey: key.publicKey)
            try files.save(issued, key: key)
            let loaded = try files.load()
            #expect(loaded.chain == [issued.certificate])
            #expect(loaded.key.publicKey == key.publicKey)
            #expect(try Self.mode(files.file(WorkloadFiles.key)) == 0o600)
        }
        // No temporary file is left behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: files.path).sorted()
        #expect(names == ["cert-chain.pem", "key.pem", "root-cert.pem"])
    }

    @Test func aBootstrapTokenIsUsedOnceEvenAcrossRestarts() throws {
        let temporary = try TemporaryDirectory()
        let path = temporary.path + "/used"
        let ca = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey())
        let id = try SPIFFEID(parsing: "spiffe://cluster.local/ns/a/sa/b")
        let first = try ca.bootstrapToken(for: id).grant
        let second = try ca.bootstrapToken(for: id).grant
        let ledger = try BootstrapTokenLedger(path: path)
        #expect(try ledger.consume(first))
        #expect(try !ledger.consume(first))
        #expect(try ledger.consume(second))
        let reopened = try BootstrapTokenLedger(path: path)
        #expect(try !reopened.consume(first))
        #expect(try Self.mode(path) == 0o600)
        // Entries of expired tokens are dropped when the ledger opens.
        _ = try BootstrapTokenLedger(path: path, now: Date().addingTimeInterval(2 * 3600))
        #expect(try AtomicFile.read(path).isEmpty)
    }
}
