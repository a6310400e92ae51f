import ExtAuthz
import Foundation
import Identity
import JWKSClient
import Logging
import NIOCore
import NIOSSL
import Networking
import PolicyCore
import ServiceLifecycle
import SwiftASN1
import UnixSignals
import X509

/// `warden proxy`: the policy enforcement point. Terminates mutual TLS as PeerAuthentication says, verifies JWTs as
/// RequestAuthentication says, asks the authorization server about every request over Envoy's ext_authz API, and
/// forwards what is allowed to the workload — or, in outbound mode, carries the local application's plaintext
/// requests to another workload's proxy over mutual TLS, checking who answers. Everything runs as one
/// swift-service-lifecycle `ServiceGroup`; SIGTERM or SIGINT drains in-flight requests, then stops.
public final class FrontProxy: Sendable {
    public let configuration: ProxyConfiguration
    public let logger: Logger
    public let metrics: ProxyMetrics
    public let policies: ProxyPolicies

    /// Why the proxy cannot start.
    public struct StartError: Error, Sendable, CustomStringConvertible {
        public var description: String
        public var diagnostics: [Diagnostic]

        public init(_ description: String, diagnostics: [Diagnostic] = []) {
            self.description = description
            self.diagnostics = diagnostics
        }
    }

    /// What `run` bound, for callers that asked for port 0.
    public struct Bound: Sendable {
        public var port: Int
        public var adminPort: Int?
    }

    public init(configuration: ProxyConfiguration) throws(StartError) {
        let problems = configuration.problems()
        guard problems.isEmpty else { throw StartError(problems.joined(separator: "; ")) }
        self.configuration = configuration
        logger = .standardError(level: configuration.logLevel)
        metrics = ProxyMetrics()
        let ownIdentity = try configuration.certificateChain.flatMap { path throws(StartError) in try Self.ownIdentity(path) }
        let settings = ExchangeSettings(
            workload: configuration.workload, ownIdentity: ownIdentity, failureStatus: configuration.failureStatus,
            maximumRequestBodyBytes: configuration.maximumRequestBodyBytes, upstreamAuthority: configuration.upstream.description,
            checkBody: configuration.checkBody, pathNormalizer: configuration.pathNormalizer,
            upstreamHTTP2: configuration.upstreamHTTP2)
        policies = ProxyPolicies(
            directory: configuration.policies,
            base: .init(settings: settings, rootNamespace: configuration.rootNamespace, defaultNamespace: configuration.namespace),
            keySource: configuration.outbound || configuration.policies == nil ? nil : JWKSClient())
    }

    /// The SPIFFE ID in the leaf of a certificate chain file: the proxy's own identity.
    static func ownIdentity(_ path: String) throws(StartError) -> SPIFFEID? {
        guard let data = FileManager.default.contents(atPath: path) else { throw StartError("cannot read `\(path)`") }
        do {
            let leaf = try Certificate(pemEncoded: String(decoding: data, as: UTF8.self).firstPEMBlock)
            guard let names = try leaf.extensions.subjectAlternativeNames else { return nil }
            for case .uniformResourceIdentifier(let uri) in names {
                if let id = try? SPIFFEID(parsing: uri) { return id }
            }
            return nil
        } catch {
            throw StartError("`\(path)` holds no readable certificate: \(error)")
        }
    }

    /// Loads the policies, binds the listeners and serves until SIGTERM/SIGINT or cancellation.
    public func run(onReady: @escaping @Sendable (Bound) -> Void = { _ in }) async throws {
        let configuration = self.configuration, logger = self.logger, metrics = self.metrics, policies = self.policies
        switch policies.reload(force: true) {
        case .refused(let errors):
            throw StartError("the policies in `\(configuration.policies ?? "")` have errors", diagnostics: errors)
        case .installed(let snapshot, let warnings):
            for warning in warnings { logger.warning("\(warning.description)") }
            logger.info("\(Self.describe(snapshot, configuration))")
        case .unchanged:
            logger.info("\(Self.describe(policies.current, configuration))")
        }

        // TLS.
        var inboundTLS: InboundTLS?
        var upstreamTLS: UpstreamTLS?
        var contexts: [ReloadingTLSContext] = []
        var verifications: [PeerVerification] = []
        if let chain = configuration.certificateChain, let key = configuration.privateKey, let bundle = configuration.trustBundle {
            let files = TLSFiles(certificateChain: chain, privateKey: key, trustBundle: bundle)
            do {
                if configuration.outbound {
                    let context = try ReloadingTLSContext(
                        files: files,
                        settings: TLSSettings(
                            cipherSuites: TLSSettings.meshCipherSuites,
                            applicationProtocols: [configuration.upstreamHTTP2 ? "h2" : "http/1.1"], peerCertificates: .required),
                        role: .client)
                    let serverVerification = try PeerVerification(
                        trustBundlePath: bundle, trustDomain: configuration.trustDomain, usage: .serverAuth)
                    contexts = [context]
                    verifications = [serverVerification]
                    upstreamTLS = Self.secureNaming(
                        context: context, verification: serverVerification, expected: configuration.expectedPeer!, logger: logger)
                } else {
                    let required = try ReloadingTLSContext(
                        files: files,
                        settings: TLSSettings(
                            cipherSuites: TLSSettings.meshCipherSuites, applicationProtocols: ["h2", "http/1.1"],
                            peerCertificates: .required),
                        role: .server)
                    let optional = try ReloadingTLSContext(
                        files: files,
                        settings: TLSSettings(
                            cipherSuites: TLSSettings.meshCipherSuites, applicationProtocols: ["h2", "http/1.1"],
                            peerCertificates: .optional),
                        role: .server)
                    let clientVerification = try PeerVerification(
                        trustBundlePath: bundle, trustDomain: configuration.trustDomain, usage: .clientAuth)
                    contexts = [required, optional]
                    verifications = [clientVerification]
                    inboundTLS = InboundTLS(
                        requiringClientCertificate: required, acceptingClientCertificate: optional,
                        verification: clientVerification)
                }
            } catch {
                throw StartError("tls: \(error)")
            }
        }

        var authorization: (any AuthorizationClient)?
        if let address = configuration.authorization {
            let files = configuration.authorizationTLS
                ? TLSFiles(
                    certificateChain: configuration.certificateChain, privateKey: configuration.privateKey,
                    trustBundle: configuration.trustBundle)
                : nil
            // With TLS, the server must prove the expected identity (`--authz-server-identity`; by default any SPIFFE ID
            // of the trust domain) on top of a chain to the trust bundle, or no check is sent to it.
            var serverCheck: ServerCertificateCheck?
            if configuration.authorizationTLS, let bundle = configuration.trustBundle {
                do {
                    let serverVerification = try PeerVerification(
                        trustBundlePath: bundle, trustDomain: configuration.trustDomain, usage: .serverAuth)
                    verifications.append(serverVerification)
                    serverCheck = Self.authorizationServerCheck(
                        serverVerification, expected: configuration.authorizationServerIdentity, logger: logger)
                } catch {
                    throw StartError("tls: \(error)")
                }
            }
            switch configuration.authorizationClient {
            case .inPlace:
                var authzTLS: ReloadingTLSContext?
                if let files {
                    do {
                        authzTLS = try ReloadingTLSContext(
                            files: files,
                            settings: TLSSettings(
                                cipherSuites: TLSSettings.meshCipherSuites, applicationProtocols: ["h2"],
                                peerCertificates: .required),
                            role: .client)
                    } catch {
                        throw StartError("tls: \(error)")
                    }
                    contexts.append(authzTLS!)
                }
                authorization = InPlaceAuthorizationClient(
                    options: .init(host: address.host, port: address.port, tls: authzTLS, verifyServer: serverCheck))
            case .grpcSwift:
                authorization = try GRPCAuthorizationClient(
                    options: .init(host: address.host, port: address.port, tls: files, verifyServer: serverCheck))
            }
        }
        let upstream = UpstreamPool(settings: UpstreamSettings(
            host: configuration.upstream.host, port: configuration.upstream.port,
            connectTimeout: TimeAmount(configuration.connectTimeout), tls: upstreamTLS, http2: configuration.upstreamHTTP2))
        let memory = QuietMemoryTrim()
        var observers: [any ExchangeObserver] = [metrics, memory]
        var accessLog: LineLog?
        if let destination = configuration.accessLog {
            let lines = try LineLog(destination: destination)
            accessLog = lines
            observers.append(AccessLog(lines: lines))
        }
        let environment = ProxyEnvironment(
            snapshot: { policies.current }, authorization: authorization, checkTimeout: configuration.checkTimeout,
            upstream: upstream, upstreamTimeout: TimeAmount(configuration.upstreamTimeout),
            observer: ObserverChain(observers))
        let listener = try await ProxyListener(
            options: .init(
                host: configuration.listen.host, port: configuration.listen.port,
                maximumConnections: configuration.maximumConnections, limits: configuration.limits),
            kind: configuration.outbound ? .outbound : .inbound(inboundTLS), environment: environment, observer: metrics,
            memory: memory)
        var adminListener: HTTPServer.Listener?
        if let address = configuration.admin {
            adminListener = try await HTTPServer(options: .init(host: address.host, port: address.port, maxBodyBytes: 0)) { request, _ in
                AdminAPI.handle(request, metrics: metrics, isReady: listener.tracker.isShuttingDown == false)
            }.bind()
        }
        let admin = adminListener

        // Shutdown runs in reverse order: the listener drains first, then checks in flight finish, the log last.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let accessLog { services.append(.init(service: accessLog, serviceName: "access-log")) }
        if let authorization { services.append(.init(service: AuthorizationClientService(client: authorization), serviceName: "authz-client")) }
        if let interval = configuration.watchInterval {
            if configuration.policies != nil {
                services.append(.init(service: ClosureService {
                    await cancelWhenGracefulShutdown {
                        await policies.watch(every: interval) { outcome in Self.log(outcome, logger: logger, metrics: metrics) }
                    }
                }, serviceName: "policy-watch"))
            }
            if !contexts.isEmpty {
                let contexts = contexts, verifications = verifications
                services.append(.init(service: RepeatingService(every: interval) {
                    Self.reloadTLS(
                        contexts, verifications: verifications, policies: policies, configuration: configuration, logger: logger)
                }, serviceName: "tls-reload"))
            }
        }
        // What a burst freed goes back to the system once the proxy has been quiet for a check interval.
        services.append(.init(service: RepeatingService(every: .seconds(5)) { memory.check() }, serviceName: "memory-trim"))
        services.append(.init(service: SignalHandlerService(signals: [.sighup]) { _ in
            logger.info("SIGHUP: reloading policies")
            Self.log(policies.reload(force: true), logger: logger, metrics: metrics)
        }, serviceName: "sighup-reload"))
        if let admin { services.append(.init(service: admin, serviceName: "admin-listener")) }
        services.append(.init(service: listener, serviceName: "proxy-listener"))
        services.append(.init(
            service: ClosureService {
                let mode = configuration.outbound ? "outbound" : "inbound"
                logger.info("proxy (\(mode)) listening on \(configuration.listen.host):\(listener.port)")
                if let admin, let address = configuration.admin {
                    logger.info("admin listening on \(address.host):\(admin.port ?? address.port)")
                }
                metrics.setReady(true)
                onReady(Bound(port: listener.port, adminPort: admin?.port))
            },
            successTerminationBehavior: .ignore, serviceName: "ready"))

        var group = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.drainTimeout
        group.logging.keys.serviceKey = "service"
        try await ServiceGroup(configuration: group).run()
        upstream.closeIdle()
        logger.info("stopped")
    }

    static func describe(_ snapshot: ProxySnapshot, _ configuration: ProxyConfiguration) -> String {
        let workload = snapshot.settings.workload
        var text = "workload \(workload.namespace) \(labelsText(workload.labels)) port \(workload.port): "
        if configuration.outbound {
            return text + "outbound to \(configuration.upstream), expecting \(configuration.expectedPeer?.uri ?? "")"
        }
        text += "mTLS \(snapshot.mode)"
        if let by = snapshot.peerAuthentication.deciding { text += " (PeerAuthentication \(by))" }
        let rules = snapshot.settings.authenticator?.rules.count ?? 0
        text += ", \(rules) JWT \(rules == 1 ? "rule" : "rules"), revision \(snapshot.revision)"
        return text
    }

    static func log(_ outcome: ProxyPolicies.LoadOutcome, logger: Logger, metrics: ProxyMetrics) {
        switch outcome {
        case .installed(let snapshot, let warnings):
            metrics.recordReload(success: true)
            for warning in warnings { logger.warning("\(warning.description)") }
            logger.info("policies reloaded: mTLS \(snapshot.mode), revision \(snapshot.revision)")
        case .refused(let errors):
            metrics.recordReload(success: false)
            logger.error("policies not loaded; the last good set keeps serving:")
            for error in errors { logger.error("\(error.description)") }
        case .unchanged:
            break
        }
    }

    /// Picks up rotated certificate files (new connections get them, established ones keep theirs) and a new trust
    /// bundle; a rotation that does not load keeps the old files and says why.
    static func reloadTLS(
        _ contexts: [ReloadingTLSContext], verifications: [PeerVerification], policies: ProxyPolicies,
        configuration: ProxyConfiguration, logger: Logger
    ) {
        var rotated = false
        for context in contexts {
            do {
                if try context.reloadIfChanged() { rotated = true }
            } catch {
                logger.error("tls: keeping the previous certificate: \(error)")
            }
        }
        for verification in verifications {
            do {
                if try verification.reloadIfChanged() { logger.info("tls: loaded a new trust bundle") }
            } catch {
                logger.error("tls: keeping the previous trust bundle: \(error)")
            }
        }
        guard rotated, let chain = configuration.certificateChain else { return }
        logger.info("tls: loaded a new certificate from `\(chain)`")
        if let identity = try? ownIdentity(chain) {
            policies.updateBase { $0.settings.ownIdentity = identity }
        }
    }

    /// The check of the authorization server's certificate (`--authz-tls`): a chain Identity's verifier accepts for
    /// `serverAuth`, naming `expected` when given. A refusal is logged; the connection is not made and checks fail
    /// closed as for an unreachable server.
    static func authorizationServerCheck(
        _ verification: PeerVerification, expected: SPIFFEID?, logger: Logger
    ) -> ServerCertificateCheck {
        { certificates, eventLoop in
            verification.verifyServer(certificates, expected: expected, on: eventLoop).map { _ in }.flatMapErrorThrowing {
                error in
                logger.warning("authz: the authorization server's certificate is refused: \(error)")
                throw error
            }
        }
    }

    /// The outbound check of the upstream's certificate: a chain Identity's verifier accepts for `serverAuth`, naming
    /// exactly `expected` (the seed's secure naming). A mismatch refuses the connection and is logged.
    static func secureNaming(
        context: ReloadingTLSContext, verification: PeerVerification, expected: SPIFFEID, logger: Logger
    ) -> UpstreamTLS {
        UpstreamTLS(
            context: { context.current },
            verify: { certificates, eventLoop in
                verification.verifyServer(certificates, expected: expected, on: eventLoop).map { _ in }.flatMapErrorThrowing {
                    error in
                    if let mismatch = error as? ServerIdentityMismatch {
                        logger.warning(
                            "secure naming: the upstream is `\(mismatch.found.uri)`, not the expected `\(expected.uri)`; refused")
                        throw UpstreamConnectError(
                            kind: .secureNaming,
                            message: "the upstream is `\(mismatch.found.uri)`, not the expected `\(expected.uri)`")
                    }
                    logger.warning("outbound TLS: the upstream's certificate is refused: \(error)")
                    throw UpstreamConnectError(kind: .tls, message: "the upstream's certificate is refused: \(error)")
                }
            })
    }
}

/// Requests answered are activity: the heap is trimmed only once the proxy has gone quiet.
extension QuietMemoryTrim: ExchangeObserver {
    public func exchangeFinished(_ record: ExchangeRecord, connection: ConnectionFacts) {
        noteActivity()
    }
}

/// Runs the authorization client's connection as a service; graceful shutdown lets checks in flight finish.
struct AuthorizationClientService: Service {
    let client: any AuthorizationClient

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await client.run()
        } onGracefulShutdown: {
            client.shutDown()
        }
    }
}

extension String {
    /// The first `-----BEGIN …-----` … `-----END …-----` block, or the whole text.
    var firstPEMBlock: String {
        guard let begin = range(of: "-----BEGIN "), let end = range(of: "-----END ", range: begin.upperBound..<endIndex),
            let close = range(of: "-----", range: end.upperBound..<endIndex)
        else { return self }
        return String(self[begin.lowerBound..<close.upperBound])
    }
}
