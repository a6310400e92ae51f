import Foundation
import GRPCCore
import Identity
import Logging
import Networking
import ServiceLifecycle
import UnixSignals

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
        /// Connections beyond this many are closed as they are accepted.
        public var maximumConnections = 1024
        /// How long calls in flight may take to finish after SIGTERM.
        public var shutdownGracePeriod: Duration = .seconds(5)

        public init(directory: CADirectory) {
            self.directory = directory
        }
    }

    public let configuration: Configuration
    public let ca: CertificateAuthority
    public let logger: Logger
    let listener: CAListener
    let service: CertificateService

    /// Loads the CA and issues the serving certificate; nothing listens yet.
    public init(configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
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
            certificateChain: [serving.certificate] + serving.intermediates, key: key,
            maximumConnections: configuration.maximumConnections)
        service = CertificateService(ca: ca, lifetimes: configuration.lifetimes, ledger: ledger) { record in
            logger.info("issued", metadata: record.metadata)
        }
    }

    /// Serves until SIGTERM or SIGINT (calls in flight then get `shutdownGracePeriod` to finish) or cancellation.
    /// `onListening` gets the bound address.
    public func run(onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in }) async throws {
        let server = GRPCServer(transport: listener, services: [service])
        let ready = ClosureService { [listener, ca, configuration, logger] in
            guard let address = await listener.listeningAddress else { return }
            let lifetimes = configuration.lifetimes
            logger.info(
                "CA for `\(ca.trustDomain)` (certificates for \(Int(lifetimes.defaultLifetime)) s by default, at most \(Int(lifetimes.maximumLifetime)) s) listening on \(address.host):\(address.port)")
            onListening(address.host, address.port)
        }
        var group = ServiceGroupConfiguration(
            services: [
                .init(service: GRPCServerService(server), serviceName: "ca-listener"),
                .init(service: ready, successTerminationBehavior: .ignore, serviceName: "ready"),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
        group.logging.keys.serviceKey = "service"
        try await ServiceGroup(configuration: group).run()
        logger.info("stopped")
    }
}
