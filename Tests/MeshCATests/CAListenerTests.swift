import Foundation
import GRPCCore
import Identity
import MeshCA
import NIOCore
import NIOPosix
import PolicyCore
import Testing
import WardenTesting

/// The CA's listener in process, on 127.0.0.1.
@Suite(.timeLimit(.minutes(1))) struct CAListenerTests {
    /// Serves a CA on a free port with `handshakeTimeout`, runs `body` with the port, then stops.
    static func serving(handshakeTimeout: Duration, _ body: @Sendable (Int, CertificateFactory) async throws -> Void) async throws {
        let factory = try CertificateFactory()
        let temporary = try TemporaryDirectory()
        let key = try SigningKey()
        let serving = try factory.ca.issueServerCertificate(
            dnsNames: ["localhost"], ipAddresses: [IPAddressBytes("127.0.0.1")!], publicKey: key.publicKey)
        let listener = try CAListener(
            host: "127.0.0.1", port: 0, certificateChain: [serving.certificate], key: key,
            handshakeTimeout: handshakeTimeout)
        let service = CertificateService(
            ca: factory.ca, lifetimes: LifetimePolicy(), ledger: try BootstrapTokenLedger(path: temporary.path + "/used")
        ) { _ in }
        let server = GRPCServer(transport: listener, services: [service])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.serve() }
            let port = try #require(await listener.listeningAddress?.port)
            try await body(port, factory)
            server.beginGracefulShutdown()
            group.cancelAll()
        }
    }

    @Test func aSilentConnectionIsClosedAfterTheHandshakeTimeout() async throws {
        try await Self.serving(handshakeTimeout: .milliseconds(300)) { port, _ in
            // Timed from before the connection exists, so the deadline (which starts on accept) cannot look early.
            let start = ContinuousClock.now
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            try await channel.closeFuture.get()
            let elapsed = ContinuousClock.now - start
            // The lower bound is the point; the upper one only says the server closed it, not the test's own limit,
            // and stays loose for a loaded machine.
            #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(30), "closed after \(elapsed)")
        }
    }

    @Test func callsOnManyConnectionsEachSeeTheirOwnCertificate() async throws {
        try await Self.serving(handshakeTimeout: .seconds(10)) { port, factory in
            let client = CAClient(host: "127.0.0.1", port: port, trustedRootsPEM: factory.bundle.pem)
            let sleep = try SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/sleep")
            let key = try SigningKey()
            let csr = try CSRBuilder.pem(key: key, spiffeID: sleep)
            let token = try factory.ca.bootstrapToken(for: sleep).token
            let first = try await client.createCertificate(csr: csr, credential: .bootstrapToken(token))
            let leaf = try PEMCertificates.parse(first[0])
            let renewed = try await client.createCertificate(csr: csr, credential: .certificate(chain: leaf, key: key))
            #expect(try CertificateNames(PEMCertificates.parse(renewed[0])[0]).uris == [sleep.uri])
            // Many calls on many connections: each finds its own connection's certificate, or none.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        if index.isMultiple(of: 2) {
                            _ = try await client.createCertificate(csr: csr, credential: .certificate(chain: leaf, key: key))
                        } else {
                            await #expect(throws: RPCError.self) { try await client.createCertificate(csr: csr, credential: .none) }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}
