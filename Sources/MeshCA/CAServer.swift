import Foundation
import GRPCCore
import Identity

/// `warden ca serve`: the CA of a directory behind Istio's certificate service, on one TLS listener whose own
/// certificate the CA issues at start-up (its key stays in memory) for the listen host's names.
public struct CAServer: Sendable {
    public struct Configuration: Sendable {
        public var directory: CADirectory
        public var host: String = "127.0.0.1"
        public var port: Int = 15012
        /// Names the serving certificate carries: `localhost` and `127.0.0.1` always, then these (IP addresses
        /// become IP SANs).
        public var serverNames: [String] = []
        public var lifetimes = LifetimePolicy()
        /// Overrides the trust domain the CA certificate names.
        public var trustDomain: String?
        /// The serving certificate's lifetime (never past the CA's).
        public var servingLifetime: TimeInterval = 365 * 24 * 3600

        public init(directory: CADirectory) {
            self.directory = directory
        }
    }

    public let configuration: Configuration
    public let ca: CertificateAuthority
    let listener: CAListener
    let service: CertificateService
    public let log: @Sendable (String) -> Void

    /// Loads the CA and issues the serving certificate; nothing listens yet.
    public init(configuration: Configuration, log: @escaping @Sendable (String) -> Void) throws {
        self.configuration = configuration
        self.log = log
        ca = try configuration.directory.load(trustDomain: configuration.trustDomain)
        let ledger = try BootstrapTokenLedger(path: configuration.directory.file(CADirectory.usedTokens))
        var dnsNames = ["localhost"]
        var addresses = [IPAddressBytes("127.0.0.1")!]
        for name in configuration.serverNames {
            if let address = IPAddressBytes(name) {
                if !addresses.contains(address) { addresses.append(address) }
            } else if !dnsNames.contains(name.lowercased()) {
                dnsNames.append(name.lowercased())
            }
        }
        let key = try SigningKey(.ecdsaP256)
        let serving = try ca.issueServerCertificate(
            dnsNames: dnsNames, ipAddresses: addresses, publicKey: key.publicKey,
            lifetime: configuration.servingLifetime)
        listener = try CAListener(
            host: configuration.host, port: configuration.port,
            certificateChain: [serving.certificate] + serving.intermediates, key: key)
        service = CertificateService(ca: ca, lifetimes: configuration.lifetimes, ledger: ledger) { record in
            log(record.description)
        }
    }

    /// Serves until `shutdown` returns (then in-flight calls get a few seconds to finish) or the task is cancelled.
    /// `onListening` gets the bound address.
    public func run(
        onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in },
        until shutdown: @escaping @Sendable () async -> Void
    ) async throws {
        let server = GRPCServer(transport: listener, services: [service])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.serve() }
            guard let address = await listener.listeningAddress else {
                group.cancelAll()
                try await group.waitForAll()
                return
            }
            log("CA for `\(ca.trustDomain)` (certificates for \(Int(configuration.lifetimes.defaultLifetime)) s by default,"
                + " at most \(Int(configuration.lifetimes.maximumLifetime)) s) listening on \(address.host):\(address.port)")
            onListening(address.host, address.port)
            await shutdown()
            log("shutting down")
            server.beginGracefulShutdown()
            group.addTask {
                try await Task.sleep(for: .seconds(5))
                throw CancellationError()
            }
            _ = try? await group.next()
            group.cancelAll()
        }
    }
}
