import Foundation
import GRPCCore
import Identity
import MeshCA
import PolicyCore
import Testing
import WardenTesting
import X509

/// `warden ca init|issue|token` against openssl and swift-certificates' verifier.
@Suite(.serialized, .timeLimit(.minutes(2))) struct CACommandTests {
    static let sleep = "spiffe://cluster.local/ns/default/sa/sleep"

    static func openssl(_ arguments: [String]) async throws -> ProcessOutput {
        try await ProcessRunner.run(try tool("openssl", package: "openssl"), arguments, timeout: .seconds(30))
    }

    static func mode(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func initAndIssueWriteIstiosFilesThatOpenSSLVerifies() async throws {
        let directory = try TemporaryDirectory()
        let ca = directory.path + "/ca", out = directory.path + "/sleep"
        let made = try await ProcessRunner.warden(["ca", "init", "--dir", ca, "--trust-domain", "cluster.local", "--ttl", "87600h"])
        #expect(made.status == 0, "\(made.stderr)")
        for name in ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"] {
            #expect(FileManager.default.fileExists(atPath: ca + "/" + name), "\(name) is missing")
        }
        #expect(try Self.mode(ca + "/ca-key.pem") == 0o600)
        let again = try await ProcessRunner.warden(["ca", "init", "--dir", ca])
        #expect(again.status == 2)
        #expect(again.stderr.contains("already holds a CA: pass --force to replace it"))
        let rootText = try await Self.openssl(["x509", "-in", ca + "/ca-cert.pem", "-noout", "-text"]).stdout
        #expect(rootText.contains("CA:TRUE"))
        #expect(rootText.contains("Certificate Sign, CRL Sign"))
        #expect(rootText.contains("URI:spiffe://cluster.local"))

        let issued = try await ProcessRunner.warden([
            "ca", "issue", "--dir", ca, "--spiffe", Self.sleep, "--dns", "sleep.default.svc", "--ttl", "24h", "--out", out,
        ])
        #expect(issued.status == 0, "\(issued.stderr)")
        #expect(try Self.mode(out + "/key.pem") == 0o600)
        let verified = try await Self.openssl([
            "verify", "-CAfile", out + "/root-cert.pem", "-untrusted", out + "/cert-chain.pem", out + "/cert-chain.pem",
        ])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        let text = try await Self.openssl(["x509", "-in", out + "/cert-chain.pem", "-noout", "-text"]).stdout
        #expect(text.contains("URI:\(Self.sleep)"))
        #expect(text.contains("DNS:sleep.default.svc"))
        #expect(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
        #expect(text.contains("Digital Signature, Key Encipherment"))
        #expect(text.contains("CA:FALSE"))
        // The key in key.pem belongs to the certificate.
        let certKey = try await Self.openssl(["x509", "-in", out + "/cert-chain.pem", "-noout", "-pubkey"]).stdout
        let keyKey = try await Self.openssl(["pkey", "-in", out + "/key.pem", "-pubout"]).stdout
        #expect(!certKey.isEmpty && certKey == keyKey)

        // swift-certificates' verifier agrees, and reads the SPIFFE ID.
        let chain = try PEMCertificates.parse(String(contentsOfFile: out + "/cert-chain.pem", encoding: .utf8))
        let bundle = try TrustBundle(trustDomain: "cluster.local", pem: String(contentsOfFile: out + "/root-cert.pem", encoding: .utf8))
        let peer = try await PeerCertificateVerifier(bundle: bundle, usage: .serverAuth).verify(chain)
        #expect(peer.spiffeID.uri == Self.sleep)

        let outside = try await ProcessRunner.warden([
            "ca", "issue", "--dir", ca, "--spiffe", "spiffe://example.org/ns/default/sa/sleep", "--out", out,
        ])
        #expect(outside.status == 2)
        #expect(outside.stderr.contains("ca_outside_trust_domain: `spiffe://example.org/ns/default/sa/sleep` is outside the trust domain `cluster.local`"))
        #expect(try await ProcessRunner.warden(["ca", "issue", "--dir", ca, "--spiffe", Self.sleep, "--ttl", "soon", "--out", out]).status == 2)
    }

    @Test func lifetimesAreGoDurations() async throws {
        let directory = try TemporaryDirectory()
        let ca = directory.path + "/ca", out = directory.path + "/w"
        let caStarted = Date()
        #expect(try await ProcessRunner.warden(["ca", "init", "--dir", ca, "--ttl", "48h"]).status == 0)
        let caReady = Date()
        for (ttl, seconds) in [("1h30m", 5400.0), ("20s", 20), ("90m", 5400), ("100h", 48 * 3600)] {
            let asked = Date()
            let issued = try await ProcessRunner.warden(["ca", "issue", "--dir", ca, "--spiffe", Self.sleep, "--ttl", ttl, "--out", out])
            let answered = Date()
            #expect(issued.status == 0, "\(issued.stderr)")
            let leaf = try PEMCertificates.parse(String(contentsOfFile: out + "/cert-chain.pem", encoding: .utf8))[0]
            // Issued while the command ran (whole seconds, rounded down), or (100h) clamped to the CA's own expiry
            // 48 h from its start: bounded by the times around the commands, however long a loaded machine takes.
            let (from, to) = ttl == "100h" ? (caStarted, caReady) : (asked, answered)
            let earliest = from.addingTimeInterval(seconds - 1), latest = to.addingTimeInterval(seconds)
            #expect(leaf.notValidAfter >= earliest && leaf.notValidAfter <= latest,
                    "\(ttl): expires \(leaf.notValidAfter), expected between \(earliest) and \(latest)")
        }
        for bad in ["24", "1d", "h", "-5s", "0s"] {
            #expect(try await ProcessRunner.warden(["ca", "issue", "--dir", ca, "--spiffe", Self.sleep, "--ttl", bad, "--out", out]).status == 2, "\(bad)")
        }
    }

    @Test func anIntermediateSignsWhileTheRootStaysElsewhere() async throws {
        let directory = try TemporaryDirectory()
        let root = directory.path + "/root", intermediate = directory.path + "/intermediate", out = directory.path + "/w"
        #expect(try await ProcessRunner.warden(["ca", "init", "--dir", root, "--key", "rsa-2048"]).status == 0)
        let made = try await ProcessRunner.warden([
            "ca", "init", "--dir", intermediate, "--intermediate", "--root-dir", root, "--ttl", "8760h",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let chain = try String(contentsOfFile: intermediate + "/cert-chain.pem", encoding: .utf8)
        #expect(chain.components(separatedBy: "BEGIN CERTIFICATE").count == 3)
        #expect(try String(contentsOfFile: intermediate + "/root-cert.pem", encoding: .utf8)
            == String(contentsOfFile: root + "/ca-cert.pem", encoding: .utf8))
        #expect(try await ProcessRunner.warden(["ca", "issue", "--dir", intermediate, "--spiffe", Self.sleep, "--out", out]).status == 0)
        let workloadChain = try String(contentsOfFile: out + "/cert-chain.pem", encoding: .utf8)
        #expect(workloadChain.components(separatedBy: "BEGIN CERTIFICATE").count == 3)
        let verified = try await Self.openssl([
            "verify", "-CAfile", root + "/root-cert.pem", "-untrusted", out + "/cert-chain.pem", out + "/cert-chain.pem",
        ])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        // Without the intermediate the leaf does not verify.
        let alone = try await Self.openssl(["verify", "-CAfile", root + "/root-cert.pem", out + "/cert-chain.pem"])
        #expect(alone.status != 0)
    }

    @Test func aCAMadeWithOpenSSLIsPluggedIn() async throws {
        let directory = try TemporaryDirectory()
        let ca = directory.path + "/ca", out = directory.path + "/w"
        try FileManager.default.createDirectory(atPath: ca, withIntermediateDirectories: true)
        let made = try await Self.openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + "/ca-key.pem", "-out", ca + "/ca-cert.pem",
            "-days", "30", "-subj", "/O=Plugged/CN=Plugged Root", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let withoutDomain = try await ProcessRunner.warden(["ca", "issue", "--dir", ca, "--spiffe", Self.sleep, "--out", out])
        #expect(withoutDomain.status == 2)
        #expect(withoutDomain.stderr.contains("names no trust domain"))
        let issued = try await ProcessRunner.warden([
            "ca", "issue", "--dir", ca, "--trust-domain", "cluster.local", "--spiffe", Self.sleep, "--out", out,
        ])
        #expect(issued.status == 0, "\(issued.stderr)")
        let verified = try await Self.openssl(["verify", "-CAfile", ca + "/ca-cert.pem", out + "/cert-chain.pem"])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        let chain = try PEMCertificates.parse(String(contentsOfFile: out + "/cert-chain.pem", encoding: .utf8))
        let bundle = try TrustBundle(trustDomain: "cluster.local", pem: String(contentsOfFile: ca + "/ca-cert.pem", encoding: .utf8))
        #expect(try await PeerCertificateVerifier(bundle: bundle, usage: .clientAuth).verify(chain).spiffeID.uri == Self.sleep)
    }

    @Test func aBundleOfTwoRootsVerifiesLeavesOfEither() async throws {
        let directory = try TemporaryDirectory()
        let old = directory.path + "/old", new = directory.path + "/new"
        #expect(try await ProcessRunner.warden(["ca", "init", "--dir", old]).status == 0)
        #expect(try await ProcessRunner.warden(["ca", "init", "--dir", new]).status == 0)
        let bundle = try directory.write(
            "bundle.pem",
            String(contentsOfFile: old + "/root-cert.pem", encoding: .utf8)
                + String(contentsOfFile: new + "/root-cert.pem", encoding: .utf8))
        for ca in [old, new] {
            let out = ca + "-leaf"
            #expect(try await ProcessRunner.warden(["ca", "issue", "--dir", ca, "--spiffe", Self.sleep, "--out", out]).status == 0)
            let verified = try await Self.openssl(["verify", "-CAfile", bundle, out + "/cert-chain.pem"])
            #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        }
    }

    @Test func aTokenIsPrintedAloneOnStandardOutput() async throws {
        let directory = try TemporaryDirectory()
        let ca = directory.path + "/ca"
        #expect(try await ProcessRunner.warden(["ca", "init", "--dir", ca]).status == 0)
        let minted = try await ProcessRunner.warden(["ca", "token", "--dir", ca, "--spiffe", Self.sleep, "--ttl", "10m"])
        #expect(minted.status == 0, "\(minted.stderr)")
        let token = minted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.split(separator: ".").count == 3)
        let loaded = try CADirectory(ca).load()
        let grant = try loaded.verifyBootstrapToken(token)
        #expect(grant.spiffeID.uri == Self.sleep)
        #expect(abs(grant.expiresAt.timeIntervalSinceNow - 600) < 30)
        let outside = try await ProcessRunner.warden(["ca", "token", "--dir", ca, "--spiffe", "spiffe://other.org/ns/a/sa/b"])
        #expect(outside.status == 2)
        #expect(outside.stdout.isEmpty)
    }
}

/// `warden ca serve` over real gRPC and TLS on 127.0.0.1, and `warden ca agent` rotating files.
@Suite(.serialized, .timeLimit(.minutes(3))) struct CAServeTests {
    static let sleep = CACommandTests.sleep

    /// A CA in a temporary directory and `warden ca serve` on it.
    final class Fixture: @unchecked Sendable {
        let directory: TemporaryDirectory
        let caDirectory: String
        let server: LaunchedProcess

        private init(directory: TemporaryDirectory, caDirectory: String, server: LaunchedProcess) {
            self.directory = directory
            self.caDirectory = caDirectory
            self.server = server
        }

        static func start(serveArguments: [String] = []) async throws -> Fixture {
            let directory = try TemporaryDirectory()
            let caDirectory = directory.path + "/ca"
            let made = try await ProcessRunner.warden(["ca", "init", "--dir", caDirectory])
            guard made.status == 0 else { throw LaunchedProcess.StartError(description: made.stderr) }
            let server = try await LaunchedProcess(
                warden: "warden ca serve", ["ca", "serve", "--dir", caDirectory, "--listen", "127.0.0.1:0"] + serveArguments,
                readyMarkers: ["listening on "])
            return Fixture(directory: directory, caDirectory: caDirectory, server: server)
        }

        var port: Int { server.port(after: "listening on ") ?? 0 }
        var rootsPEM: String { (try? String(contentsOfFile: caDirectory + "/root-cert.pem", encoding: .utf8)) ?? "" }

        func token(_ spiffe: String = CAServeTests.sleep, extra: [String] = []) async throws -> String {
            let minted = try await ProcessRunner.warden(["ca", "token", "--dir", caDirectory, "--spiffe", spiffe] + extra)
            guard minted.status == 0 else { throw LaunchedProcess.StartError(description: minted.stderr) }
            return minted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Calls CreateCertificate with a bootstrap token, or with `credential` as the client certificate.
        func create(
            csr: String, token: String? = nil, credential: (chain: [Certificate], key: SigningKey)? = nil,
            validity: TimeInterval = 0
        ) async throws -> [String] {
            let presented: CAClient.Credential =
                if let credential { .certificate(chain: credential.chain, key: credential.key) } else if let token {
                    .bootstrapToken(token)
                } else { .none }
            return try await CAClient(host: "127.0.0.1", port: port, trustedRootsPEM: rootsPEM)
                .createCertificate(csr: csr, credential: presented, validity: validity)
        }

        /// The status a refused call ends with.
        func refusal(
            csr: String, token: String? = nil, credential: (chain: [Certificate], key: SigningKey)? = nil
        ) async -> (code: RPCError.Code, message: String)? {
            do {
                _ = try await create(csr: csr, token: token, credential: credential)
                return nil
            } catch let error as RPCError {
                return (error.code, error.message)
            } catch {
                return (.unknown, "\(error)")
            }
        }
    }

    /// A key and a CSR made by `openssl req`, asking for `spiffe`.
    static func opensslCSR(in directory: TemporaryDirectory, spiffe: String, name: String = "w") async throws -> (csr: String, key: SigningKey) {
        let key = directory.path + "/\(name).key", csr = directory.path + "/\(name).csr"
        let made = try await CACommandTests.openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", csr, "-subj", "/O=workload", "-addext", "subjectAltName=URI:\(spiffe)",
        ])
        guard made.status == 0 else { throw LaunchedProcess.StartError(description: made.stderr) }
        return (try String(contentsOfFile: csr, encoding: .utf8), try SigningKey(pem: String(contentsOfFile: key, encoding: .utf8)))
    }

    @Test func aBootstrapTokenGetsTheFirstCertificateOnceAndTheCertificateRenewsIt() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.server.stop() }
        let (csr, key) = try await Self.opensslCSR(in: fixture.directory, spiffe: Self.sleep)
        let token = try await fixture.token()
        let chain = try await fixture.create(csr: csr, token: token, validity: 3600)
        #expect(chain.count == 2)
        let written = try fixture.directory.write("issued.pem", chain.joined())
        let roots = try fixture.directory.write("roots.pem", chain.last ?? "")
        let verified = try await CACommandTests.openssl(["verify", "-CAfile", roots, written])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        let leaf = try PEMCertificates.parse(chain[0])[0]
        #expect(try CertificateNames(leaf).uris == [Self.sleep])
        #expect(leaf.publicKey == key.publicKey)
        #expect(abs(leaf.notValidAfter.timeIntervalSinceNow - 3600) < 60)

        // The same token again: refused.
        let (csr2, _) = try await Self.opensslCSR(in: fixture.directory, spiffe: Self.sleep, name: "w2")
        let replay = await fixture.refusal(csr: csr2, token: token)
        #expect(replay?.code == .unauthenticated)
        #expect(replay?.message == "the bootstrap token was already used")

        // The certificate itself renews, with a new key.
        let renewKey = try SigningKey()
        let renewCSR = try CSRBuilder.pem(key: renewKey, spiffeID: SPIFFEID(parsing: Self.sleep))
        let renewed = try await fixture.create(csr: renewCSR, credential: ([leaf], key))
        let renewedLeaf = try PEMCertificates.parse(renewed[0])[0]
        #expect(try CertificateNames(renewedLeaf).uris == [Self.sleep])
        #expect(renewedLeaf.publicKey == renewKey.publicKey)
        // 24 h by default.
        #expect(abs(renewedLeaf.notValidAfter.timeIntervalSinceNow - 24 * 3600) < 60)

        // The log reaches the test through a pipe: wait (bounded) for the second issuance's line.
        #expect(await fixture.server.waitForStandardError(containing: "serial=\(CertificateText.serial(renewedLeaf))"))
        let lines = fixture.server.stderr.split(separator: "\n").filter { $0.hasPrefix("warden: info: issued ") }
        #expect(lines.count == 2)
        let first = try #require(lines.first { $0.contains("serial=\(CertificateText.serial(leaf))") })
        #expect(first.contains("spiffe_id=\(Self.sleep)"))
        #expect(first.contains("credential=bootstrap-token:"))
        #expect(first.contains("caller=ipv4:127.0.0.1:"))
        #expect(first.contains("not_after=\(CertificateText.time(leaf.notValidAfter))"))
        let second = try #require(lines.first { $0.contains("serial=\(CertificateText.serial(renewedLeaf))") })
        #expect(second.contains("credential=certificate:\(CertificateText.serial(leaf))"))
    }

    @Test func refusalsCarryTheirStatus() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.server.stop() }
        let ca = try CADirectory(fixture.caDirectory).load()
        let factory = CertificateFactory(ca: ca)
        let (csr, _) = try await Self.opensslCSR(in: fixture.directory, spiffe: Self.sleep)

        // A CSR for another identity than the token's.
        let (adminCSR, _) = try await Self.opensslCSR(in: fixture.directory, spiffe: "spiffe://cluster.local/ns/default/sa/admin", name: "admin")
        let mismatch = await fixture.refusal(csr: adminCSR, token: try await fixture.token())
        #expect(mismatch?.code == .permissionDenied)
        #expect(mismatch?.message.contains("asks for `spiffe://cluster.local/ns/default/sa/admin`") == true)

        // A DNS name the token does not grant; then one it does.
        let key = try SigningKey()
        let named = try CSRBuilder.pem(key: key, spiffeID: SPIFFEID(parsing: Self.sleep), dnsNames: ["sleep.default.svc"])
        #expect(await fixture.refusal(csr: named, token: try await fixture.token())?.code == .permissionDenied)
        let granted = try await fixture.create(csr: named, token: try await fixture.token(extra: ["--dns", "sleep.default.svc"]))
        #expect(try CertificateNames(PEMCertificates.parse(granted[0])[0]).dnsNames == ["sleep.default.svc"])

        // A bad token: tampered, or from another CA; no credential at all.
        let token = try await fixture.token()
        let tampered = String(token.dropLast(2)) + (token.hasSuffix("AA") ? "BB" : "AA")
        #expect(await fixture.refusal(csr: csr, token: tampered)?.code == .unauthenticated)
        let foreign = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey())
            .bootstrapToken(for: SPIFFEID(parsing: Self.sleep)).token
        #expect(await fixture.refusal(csr: csr, token: foreign)?.code == .unauthenticated)
        let none = await fixture.refusal(csr: csr)
        #expect(none?.code == .unauthenticated)
        #expect(none?.message.hasPrefix("no credential") == true)

        // A CSR whose signature does not verify.
        var der = try PEMDocumentBytes.der(csr)
        der[der.count - 1] ^= 0x01
        let badCSR = PEMDocumentBytes.pem(der, type: "CERTIFICATE REQUEST")
        let invalid = await fixture.refusal(csr: badCSR, token: token)
        #expect(invalid?.code == .invalidArgument)
        #expect(invalid?.message == "the CSR's signature does not verify with its public key")

        // Client certificates: expired, from another CA, without clientAuth.
        let expired = try factory.leaf(Self.sleep, variant: .expired)
        let late = await fixture.refusal(csr: csr, credential: (expired.chain, expired.key))
        #expect(late?.code == .unauthenticated)
        #expect(late?.message.contains("expired at") == true)
        let stranger = try CertificateFactory().leaf(Self.sleep)
        let unknown = await fixture.refusal(csr: csr, credential: (stranger.chain, stranger.key))
        #expect(unknown?.code == .unauthenticated)
        #expect(unknown?.message == "the client certificate is refused: the certificate is not issued by a CA of the trust bundle")
        let serverOnly = try factory.leaf(Self.sleep, variant: .serverAuthOnly)
        #expect(await fixture.refusal(csr: csr, credential: (serverOnly.chain, serverOnly.key))?.code == .unauthenticated)
        // A valid certificate of this CA, asking for another identity: refused too.
        let valid = try factory.leaf(Self.sleep)
        #expect(await fixture.refusal(csr: adminCSR, credential: (valid.chain, valid.key))?.code == .permissionDenied)
        #expect(try await fixture.create(csr: csr, credential: (valid.chain, valid.key)).count == 2)
    }

    @Test func theAgentRenewsAShortLivedCertificateAtomically() async throws {
        let fixture = try await Fixture.start(serveArguments: ["--max-ttl", "20s"])
        defer { fixture.server.stop() }
        let out = fixture.directory.path + "/workload"
        let paths = WorkloadPaths(directory: out)
        let agent = try await LaunchedProcess("warden ca agent", [
            "ca", "agent", "--ca", "127.0.0.1:\(fixture.port)", "--out", out,
            "--root-cert", fixture.caDirectory + "/root-cert.pem", "--bootstrap-token", try await fixture.token(),
            "--ttl", "1h",
        ]) { $0.contains("renewed ") }
        defer { agent.stop() }
        #expect(try CACommandTests.mode(paths.key) == 0o600)
        let first = try PEMCertificates.parse(String(contentsOfFile: paths.certificateChain, encoding: .utf8))[0]
        // The CA caps the hour asked for at 20 s.
        #expect(first.notValidAfter.timeIntervalSince(first.notValidBefore) <= 22)

        // Read the files over and over while the agent renews: every read sees whole files.
        var reads = 0
        var renewed: Certificate?
        let deadline = Date().addingTimeInterval(40)
        while Date() < deadline {
            let chainText = try String(contentsOfFile: paths.certificateChain, encoding: .utf8)
            let keyText = try String(contentsOfFile: paths.key, encoding: .utf8)
            let chain = try PEMCertificates.parse(chainText)
            _ = try SigningKey(pem: keyText)
            reads += 1
            if chain[0].serialNumber != first.serialNumber {
                renewed = chain[0]
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let next = try #require(renewed, "the agent did not renew within 40 s:\n\(agent.stderr)")
        #expect(reads > 10)
        #expect(next.notValidBefore > first.notValidBefore)
        #expect(try CertificateNames(next).uris == [Self.sleep])
        // Renewal ran with the certificate, not the (spent) token, and after about half the lifetime.
        #expect(await fixture.server.waitForStandardError(containing: "credential=certificate"))
        let sinceFirst = next.notValidBefore.timeIntervalSince(first.notValidBefore)
        #expect(sinceFirst > 5 && sinceFirst < 20, "renewed \(sinceFirst) s after the first certificate:\n\(agent.stderr)")
        // The key on disk now belongs to the new certificate, still 0600, and openssl verifies the chain.
        try await Task.sleep(for: .milliseconds(200))
        let final = try PEMCertificates.parse(String(contentsOfFile: paths.certificateChain, encoding: .utf8))[0]
        #expect(try SigningKey(pem: String(contentsOfFile: paths.key, encoding: .utf8)).publicKey == final.publicKey)
        #expect(try CACommandTests.mode(paths.key) == 0o600)
        let verified = try await CACommandTests.openssl(["verify", "-CAfile", paths.rootCertificate, paths.certificateChain])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(names == ["cert-chain.pem", "key.pem", "root-cert.pem"])
    }

    @Test func theAgentRetriesWhileTheCAIsDown() async throws {
        let directory = try TemporaryDirectory()
        let ca = directory.path + "/ca"
        #expect(try await ProcessRunner.warden(["ca", "init", "--dir", ca]).status == 0)
        let token = try await ProcessRunner.warden(["ca", "token", "--dir", ca, "--spiffe", Self.sleep]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // Nothing listens on port 9 of 127.0.0.1.
        let agent = try await LaunchedProcess("warden ca agent", [
            "ca", "agent", "--ca", "127.0.0.1:9", "--out", directory.path + "/w", "--root-cert", ca + "/root-cert.pem",
            "--bootstrap-token", token,
        ]) { $0.ranges(of: "renewal failed").count >= 2 }
        defer { agent.stop() }
        #expect(agent.stderr.contains("retrying in"))
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/w/key.pem"))
        let once = try await ProcessRunner.warden([
            "ca", "agent", "--once", "--ca", "127.0.0.1:9", "--out", directory.path + "/w",
            "--root-cert", ca + "/root-cert.pem", "--bootstrap-token", token,
        ])
        #expect(once.status == 1)
    }
}

extension LaunchedProcess {
    /// Waits up to `timeout` for `text` to appear on the process's standard error.
    func waitForStandardError(containing text: String, timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if stderr.contains(text) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return stderr.contains(text)
    }
}

/// PEM ⇄ DER for tampering with a CSR in a test.
enum PEMDocumentBytes {
    static func der(_ pem: String) throws -> [UInt8] {
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return Array(Data(base64Encoded: body) ?? Data())
    }

    static func pem(_ der: [UInt8], type: String) -> String {
        "-----BEGIN \(type)-----\n" + Data(der).base64EncodedString(options: .lineLength64Characters)
            + "\n-----END \(type)-----\n"
    }
}
