import ArgumentParser
import Foundation
import Identity
import Logging
import MeshCA
import Networking
import PolicyCore
import ServiceLifecycle
import UnixSignals
import X509

/// `warden ca`: a SPIFFE certificate authority with Istio's file layout and certificate API.
struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Issue SPIFFE certificates: make a CA, issue certificates and tokens, serve Istio's certificate API, rotate.",
        subcommands: [
            CAInitCommand.self, CAIssueCommand.self, CATokenCommand.self, CAServeCommand.self, CAAgentCommand.self,
        ]
    )
}

/// `warden ca init`: a new root, or an intermediate signed by a root kept elsewhere.
struct CAInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Make a CA: a self-signed root, or with --intermediate one signed by the root in --root-dir.",
        discussion: """
            Writes Istio's plugged-in CA files into --dir: ca-cert.pem, ca-key.pem (mode 0600), cert-chain.pem \
            (the CA certificate up to the root) and root-cert.pem. An existing CA is never replaced without \
            --force. With --intermediate, the root's ca-cert.pem and ca-key.pem are read from --root-dir (keep \
            that directory offline afterwards); the trust domain is the root's.
            """
    )

    @Option(help: "The CA directory to write.")
    var dir: String

    @Option(name: .customLong("trust-domain"), help: "The SPIFFE trust domain (default cluster.local; with --intermediate, the root's).")
    var trustDomain: String?

    @Option(help: "The CA key.")
    var key: KeyAlgorithm = .ecdsaP256

    @Option(help: "How long the CA certificate is valid (87600h: ten years).")
    var ttl: TTL = TTL(seconds: CertificateAuthority.defaultCALifetime)

    @Flag(help: "Make an intermediate CA signed by the root in --root-dir.")
    var intermediate = false

    @Option(name: .customLong("root-dir"), help: "With --intermediate: the directory of the root CA.")
    var rootDir: String?

    @Flag(help: "Replace a CA already in --dir.")
    var force = false

    func validate() throws {
        if intermediate != (rootDir != nil) { throw ValidationError("--intermediate and --root-dir go together") }
    }

    func run() throws {
        try reportingCAErrors {
            let directory = CADirectory(dir)
            if directory.holdsCA && !force {
                throw CAError(.exists, "`\(dir)` already holds a CA: pass --force to replace it")
            }
            let ca: CertificateAuthority
            if let rootDir {
                let root = try CADirectory(rootDir).load(trustDomain: trustDomain)
                ca = try root.intermediate(key: SigningKey(key), lifetime: ttl.seconds)
            } else {
                ca = try CertificateAuthority.root(
                    trustDomain: trustDomain ?? "cluster.local", key: SigningKey(key), lifetime: ttl.seconds)
            }
            try directory.save(ca, force: force)
            writeOutput(
                "\(intermediate ? "intermediate" : "root") CA for `\(ca.trustDomain)` in \(dir):"
                    + " serial \(CertificateText.serial(ca.certificate)), valid until \(CertificateText.time(ca.certificate.notValidAfter))")
        }
    }
}

/// `warden ca issue`: a workload certificate written straight to files.
struct CAIssueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue a SPIFFE workload certificate into Istio's workload files.",
        discussion: """
            Writes OUT/cert-chain.pem (the certificate, then any intermediates), OUT/key.pem (a new ECDSA P-256 \
            key, mode 0600) and OUT/root-cert.pem. The certificate carries the SPIFFE ID as its only URI SAN, \
            the --dns names (an IP address becomes an IP SAN), serverAuth and clientAuth. A SPIFFE ID outside \
            the CA's trust domain is refused.
            """
    )

    @OptionGroup var ca: CADirectoryOptions

    @Option(help: "The workload's SPIFFE ID, e.g. spiffe://cluster.local/ns/default/sa/sleep.")
    var spiffe: String

    @Option(name: .customLong("dns"), help: "A DNS name (or IP address) for the certificate (repeatable).")
    var dnsNames: [String] = []

    @Option(help: "How long the certificate is valid, e.g. 24h or 30m.")
    var ttl: TTL = TTL(seconds: CertificateAuthority.defaultLeafLifetime)

    @Option(help: "The directory to write the workload's files to.")
    var out: String

    func run() throws {
        try reportingCAErrors {
            let authority = try ca.load()
            let names = SANOption.split(dnsNames)
            let request = try LeafRequest(
                spiffeID: parseSPIFFEID(spiffe), dnsNames: names.dnsNames, ipAddresses: names.addresses,
                lifetime: ttl.seconds)
            let key = try SigningKey(.ecdsaP256)
            let issued = try authority.issue(request, publicKey: key.publicKey)
            try WorkloadFiles(out).save(issued, key: key)
            writeOutput(
                "issued \(request.spiffeID.uri) to \(out): serial \(issued.serialNumber),"
                    + " valid until \(CertificateText.time(issued.certificate.notValidAfter))")
        }
    }
}

/// `warden ca token`: a one-time bootstrap token for a workload's first certificate.
struct CATokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint a one-time bootstrap token with which a workload gets its first certificate.",
        discussion: """
            Prints the token (a JWT signed with the CA key) on standard output. `warden ca serve` accepts it once, \
            in `authorization: Bearer <token>`, for a CSR of this SPIFFE ID and --dns names; a second use is refused.
            """
    )

    @OptionGroup var ca: CADirectoryOptions

    @Option(help: "The SPIFFE ID the token entitles.")
    var spiffe: String

    @Option(name: .customLong("dns"), help: "A DNS name the token entitles (repeatable).")
    var dnsNames: [String] = []

    @Option(help: "How long the token is valid; at most 168h.")
    var ttl: TTL = TTL(seconds: 3600)

    func run() throws {
        try reportingCAErrors {
            let minted = try ca.load().bootstrapToken(for: parseSPIFFEID(spiffe), dnsNames: dnsNames, lifetime: ttl.seconds)
            writeError("bootstrap token for \(minted.grant.spiffeID.uri), valid until \(CertificateText.time(minted.grant.expiresAt))")
            writeOutput(minted.token)
        }
    }
}

/// `warden ca serve`: Istio's `CreateCertificate` over gRPC with TLS.
struct CAServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve istio.v1.auth.IstioCertificateService/CreateCertificate over gRPC with TLS.",
        discussion: """
            Callers authenticate with a certificate of this CA (mutual TLS) or, for a first certificate, with a \
            bootstrap token from `warden ca token` in `authorization: Bearer <token>`; each token works once (used \
            ids are kept in DIR/used-bootstrap-tokens). Certificates name the caller's SPIFFE ID, whatever the CSR \
            asks; a CSR for another identity or for names the caller is not entitled to is refused with \
            PERMISSION_DENIED. The listener's own certificate comes from this CA and names localhost, 127.0.0.1 \
            and the --dns names. Each issuance is logged to standard error. SIGTERM or SIGINT stops the server.
            """
    )

    @OptionGroup var ca: CADirectoryOptions

    @Option(help: "The listen address, host:port (port 0: any free port).")
    var listen: String = "127.0.0.1:15012"

    @Option(name: .customLong("dns"), help: "Another name (or IP address) for the serving certificate (repeatable).")
    var dnsNames: [String] = []

    @Option(name: .customLong("default-ttl"), help: "The validity of a certificate when the request names none.")
    var defaultTTL: TTL = TTL(seconds: CertificateAuthority.defaultLeafLifetime)

    @Option(name: .customLong("max-ttl"), help: "The most validity a request may get.")
    var maxTTL: TTL = TTL(seconds: CertificateAuthority.defaultLeafLifetime)

    func run() async throws {
        guard let (host, port) = HostPort.parse(listen) else {
            throw ValidationError("--listen must be host:port, found `\(listen)`")
        }
        var configuration = CAServer.Configuration(directory: CADirectory(ca.dir))
        configuration.host = host
        configuration.port = port
        configuration.serverNames = dnsNames
        configuration.trustDomain = ca.trustDomain
        configuration.lifetimes = LifetimePolicy(
            defaultLifetime: min(defaultTTL.seconds, maxTTL.seconds), maximumLifetime: maxTTL.seconds)
        let server = try reportingCAErrors {
            try CAServer(configuration: configuration, logger: .standardError(level: .info))
        }
        do {
            try await server.run()
        } catch {
            writeError("warden: error: \(error)")
            throw ExitCode(Warden.Status.failed)
        }
    }
}

/// `warden ca agent`: keeps a workload's certificate files fresh.
struct CAAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Keep a workload's certificate files fresh from `warden ca serve`.",
        discussion: """
            When half of the certificate's lifetime has passed (with a little jitter), makes a new key and CSR, \
            asks the CA over TLS (with the current certificate, or with --bootstrap-token for the first one), and \
            replaces OUT/cert-chain.pem, OUT/key.pem (0600) and OUT/root-cert.pem atomically. Retries with \
            backoff while the CA is down. The CA's certificate is verified against --root-cert (default \
            OUT/root-cert.pem). SIGTERM or SIGINT stops the agent.
            """
    )

    @Option(help: "The CA's address, host:port.")
    var ca: String = "127.0.0.1:15012"

    @Option(help: "The directory of the workload's files.")
    var out: String

    @Option(name: .customLong("bootstrap-token"), help: "A bootstrap token for the first certificate.")
    var bootstrapToken: String?

    @Option(name: .customLong("bootstrap-token-file"), help: "Read the bootstrap token from this file.")
    var bootstrapTokenFile: String?

    @Option(name: .customLong("root-cert"), help: "The roots the CA's certificate must chain to (default OUT/root-cert.pem).")
    var rootCert: String?

    @Option(name: .customLong("server-name"), help: "The name the CA's certificate must carry (default: the --ca host).")
    var serverName: String?

    @Option(help: "The validity to ask for, e.g. 24h; by default the CA's.")
    var ttl: TTL?

    @Flag(help: "Renew once and exit (status 1 when the CA refuses or cannot be reached).")
    var once = false

    func validate() throws {
        if bootstrapToken != nil && bootstrapTokenFile != nil {
            throw ValidationError("give --bootstrap-token or --bootstrap-token-file, not both")
        }
    }

    func run() async throws {
        guard let (host, port) = HostPort.parse(ca) else { throw ValidationError("--ca must be host:port, found `\(ca)`") }
        let files = WorkloadFiles(out)
        let rootsPath = rootCert ?? files.file(WorkloadFiles.rootCertificate)
        var configuration = try reportingCAErrors {
            CertificateAgent.Configuration(
                host: host, port: port, trustedRootsPEM: try AtomicFile.read(rootsPath), output: files)
        }
        configuration.serverName = serverName
        configuration.requestedLifetime = ttl?.seconds ?? 0
        if let bootstrapTokenFile {
            configuration.bootstrapToken = try readInput(bootstrapTokenFile).trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            configuration.bootstrapToken = bootstrapToken
        }
        let logger = Logger.standardError(level: .info)
        let agent = CertificateAgent(configuration: configuration, logger: logger)
        if once {
            do {
                try await agent.renewOnce()
            } catch {
                writeError("warden: error: \(error)")
                throw ExitCode(Warden.Status.failed)
            }
            return
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: agent, serviceName: "certificate-agent")],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// The CA directory of `issue`, `token` and `serve`.
struct CADirectoryOptions: ParsableArguments {
    @Option(help: "The CA directory.")
    var dir: String

    @Option(name: .customLong("trust-domain"), help: "The trust domain, when the CA certificate names none (a CA made elsewhere).")
    var trustDomain: String?

    func load() throws(CAError) -> CertificateAuthority {
        try CADirectory(dir).load(trustDomain: trustDomain)
    }
}

/// A lifetime as Go writes durations: `24h`, `87600h`, `30m`, `20s`, `1h30m`.
struct TTL: ExpressibleByArgument, CustomStringConvertible, Sendable {
    var seconds: TimeInterval

    init(seconds: TimeInterval) {
        self.seconds = seconds
    }

    init?(argument: String) {
        var total: TimeInterval = 0
        var number = ""
        var sawUnit = false
        for character in argument {
            if character.isASCII, character.isNumber || character == "." {
                number.append(character)
                continue
            }
            guard let value = Double(number) else { return nil }
            switch character {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            default: return nil
            }
            number = ""
            sawUnit = true
        }
        guard number.isEmpty, sawUnit, total > 0, total.isFinite else { return nil }
        seconds = total
    }

    static var defaultCompletionKind: CompletionKind { .default }

    /// The largest whole unit: `87600h`, `30m`, `20s`.
    var description: String {
        let whole = Int(seconds)
        guard Double(whole) == seconds else { return "\(seconds)s" }
        if whole % 3600 == 0 { return "\(whole / 3600)h" }
        if whole % 60 == 0 { return "\(whole / 60)m" }
        return "\(whole)s"
    }
}

extension KeyAlgorithm: ExpressibleByArgument {}

/// `--dns` values: IP addresses become IP SANs, the rest DNS names.
enum SANOption {
    static func split(_ values: [String]) -> (dnsNames: [String], addresses: [IPAddressBytes]) {
        var dnsNames: [String] = [], addresses: [IPAddressBytes] = []
        for value in values {
            if let address = IPAddressBytes(value) { addresses.append(address) } else { dnsNames.append(value) }
        }
        return (dnsNames, addresses)
    }
}

enum HostPort {
    /// `host:port`, `[v6]:port`; the port 0...65535.
    static func parse(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}

func parseSPIFFEID(_ text: String) throws(CAError) -> SPIFFEID {
    do {
        return try SPIFFEID(parsing: text)
    } catch {
        throw CAError(.badIdentity, error.message)
    }
}

/// Runs `body`; a `CAError` is printed as `warden: error: <code>: <message>` and exits with status 2.
func reportingCAErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CAError {
        throw usage("warden: error: \(error.code.rawValue): \(error.message)")
    }
}
