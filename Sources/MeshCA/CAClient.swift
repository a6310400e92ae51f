import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Identity
import PolicyCore
import SwiftProtobuf
import X509

/// A client of a CA's `CreateCertificate` over TLS, as a workload calls it: with its current certificate (mutual
/// TLS) or with a bootstrap token.
public struct CAClient: Sendable {
    public enum Credential: Sendable {
        /// The workload's current certificate chain (leaf first) and key.
        case certificate(chain: [Certificate], key: SigningKey)
        /// A bootstrap token, sent as `authorization: Bearer <token>`.
        case bootstrapToken(String)
        /// Nothing: the CA refuses such calls; for tests of that refusal.
        case none
    }

    public var host: String
    public var port: Int
    /// The name the CA's certificate must carry; nil: the host (an IP address is checked against IP SANs).
    public var serverName: String?
    /// The roots the CA's serving certificate must chain to (PEM).
    public var trustedRootsPEM: String
    /// How long one call may take, in seconds.
    public var callTimeout: TimeInterval

    public init(
        host: String, port: Int, serverName: String? = nil, trustedRootsPEM: String, callTimeout: TimeInterval = 10
    ) {
        self.host = host
        self.port = port
        self.serverName = serverName
        self.trustedRootsPEM = trustedRootsPEM
        self.callTimeout = callTimeout
    }

    /// Sends a PEM CSR and returns the CA's `cert_chain` (one PEM per certificate, leaf first, root last).
    /// `validity` in seconds; 0 leaves it to the CA. A refusal throws the CA's `RPCError`.
    public func createCertificate(csr: String, credential: Credential, validity: TimeInterval = 0) async throws -> [String] {
        let trust = TLSConfig.TrustRootsSource.certificates([.bytes(Array(trustedRootsPEM.utf8), format: .pem)])
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        var metadata: Metadata = [:]
        switch credential {
        case .certificate(let chain, let key):
            security = .mTLS(
                certificateChain: chain.map { .bytes(Array(PEMCertificates.pem($0).utf8), format: .pem) },
                privateKey: .bytes(Array(key.pem.utf8), format: .pem)
            ) { $0.trustRoots = trust }
        case .bootstrapToken(let token):
            security = .tls { $0.trustRoots = trust }
            metadata.addString("Bearer \(token)", forKey: "authorization")
        case .none:
            security = .tls { $0.trustRoots = trust }
        }
        let serverName = self.serverName
        let config = HTTP2ClientTransport.Posix.Config.defaults {
            if let serverName { $0.http2.authority = serverName }
        }
        let transport: HTTP2ClientTransport.Posix
        if IPAddress(host) == nil {
            transport = try .init(target: .dns(host: host, port: port), transportSecurity: security, config: config)
        } else if host.contains(":") {
            transport = try .init(target: .ipv6(address: host, port: port), transportSecurity: security, config: config)
        } else {
            transport = try .init(target: .ipv4(address: host, port: port), transportSecurity: security, config: config)
        }
        var options = CallOptions.defaults
        options.timeout = .milliseconds(Int64(callTimeout * 1000))
        let request = Istio_V1_Auth_IstioCertificateRequest.with {
            $0.csr = csr
            $0.validityDuration = Int64(validity)
        }
        return try await withGRPCClient(transport: transport) { client in
            try await Istio_V1_Auth_IstioCertificateService.Client(wrapping: client).createCertificate(
                request, metadata: metadata, options: options
            ).certChain
        }
    }
}
