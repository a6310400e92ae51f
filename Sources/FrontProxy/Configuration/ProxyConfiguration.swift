import ExtAuthz
import Foundation
import Logging
import NIOCore
import Networking
import PolicyCore

/// The ext_authz clients the proxy has.
public enum AuthorizationClientKind: String, Sendable, CaseIterable {
    /// `InPlaceAuthorizationClient`: checks written and read on the request's event loop.
    case inPlace = "in-place"
    /// `GRPCAuthorizationClient`: grpc-swift-2's client, a task per check.
    case grpcSwift = "grpc-swift"
}

/// Everything `warden proxy` is told: where it listens and forwards, whom it asks, which workload it fronts, its
/// certificate files, limits and timeouts.
public struct ProxyConfiguration: Sendable {
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port` (`[::1]:80` for IPv6); nil when it does not parse.
        public init?(parsing text: String) {
            var hostPart: Substring, portPart: Substring
            if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
                hostPart = text[text.index(after: text.startIndex)..<close]
                let rest = text[text.index(after: close)...]
                guard rest.hasPrefix(":") else { return nil }
                portPart = rest.dropFirst()
            } else {
                guard let colon = text.lastIndex(of: ":") else { return nil }
                hostPart = text[..<colon]
                portPart = text[text.index(after: colon)...]
            }
            guard !hostPart.isEmpty, let port = Int(portPart), (0...65535).contains(port) else { return nil }
            host = String(hostPart)
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var listen = Address(host: "127.0.0.1", port: 15006)
    public var upstream = Address(host: "127.0.0.1", port: 8080)
    /// Speak HTTP/2 to the upstream, as Istio does for ports it knows carry gRPC or HTTP/2 (gRPC services need it):
    /// with prior knowledge (h2c) inbound, by ALPN over mutual TLS outbound.
    public var upstreamHTTP2 = false
    /// The authorization server (`warden serve`'s gRPC address); required inbound, optional outbound.
    public var authorization: Address?
    public var certificateChain: String?
    public var privateKey: String?
    public var trustBundle: String?
    /// A directory of PeerAuthentication and RequestAuthentication documents.
    public var policies: String?
    public var namespace = "default"
    public var labels: [String: String] = [:]
    /// The workload's declared ports (default: the upstream's port).
    public var ports: [Int]?
    public var trustDomain = "cluster.local"
    public var rootNamespace = "istio-system"
    public var admin: Address?
    public var checkTimeout: Duration = .milliseconds(200)
    /// Which ext_authz client asks the server.
    public var authorizationClient = AuthorizationClientKind.inPlace
    /// Ask the server over mutual TLS, presenting the workload's certificate and verifying the server's chain against
    /// the trust bundle, so a server with an allow-list of client SPIFFE IDs can tell this proxy from anyone else.
    public var authorizationTLS = false
    /// With `authorizationTLS`: the SPIFFE ID the server's certificate must name. Nil: any SPIFFE ID of `trustDomain`
    /// (the verifier refuses other trust domains for every peer).
    public var authorizationServerIdentity: SPIFFEID?
    public var failureStatus = 403
    /// Outbound mode: plaintext in from the local application, mutual TLS out to `upstream`, whose certificate must
    /// name `expectedPeer`.
    public var outbound = false
    public var expectedPeer: SPIFFEID?
    /// Where access-log lines go; nil turns them off.
    public var accessLog: LineLog.Destination? = .standardOutput
    public var logLevel: Logger.Level = .info
    public var maximumConnections = 10_000
    public var limits = ConnectionLimits()
    public var maximumRequestBodyBytes = 64 << 20
    /// Whether checks carry the request body (`--check-body-bytes`, `--check-partial-body`).
    public var checkBody: ExchangeSettings.CheckBody?
    /// How paths are normalized before the check and forwarding (`--path-normalization`): by default as
    /// `warden serve` normalizes them, so the upstream gets the path policies matched.
    public var pathNormalizer: PathNormalizer? = PathNormalizer()
    public var upstreamTimeout: Duration = .seconds(15)
    public var connectTimeout: Duration = .seconds(5)
    /// How often the policies directory and the certificate files are looked at; nil: never.
    public var watchInterval: Duration? = .seconds(1)
    /// How long in-flight requests may take to finish after SIGTERM.
    public var drainTimeout: Duration = .seconds(10)

    public init() {}

    /// The workload this proxy fronts.
    public var workload: Workload {
        Workload(namespace: namespace, labels: labels, port: upstream.port, declaredPorts: ports.map(Set.init))
    }

    /// Problems that make the configuration unusable, as sentences.
    public func problems() -> [String] {
        var out: [String] = []
        let tlsFiles = [certificateChain, privateKey, trustBundle].compactMap { $0 }.count
        if tlsFiles != 0 && tlsFiles != 3 { out.append("give --cert, --key and --trust-bundle together") }
        if outbound {
            if tlsFiles != 3 { out.append("--outbound needs --cert, --key and --trust-bundle (mutual TLS to the upstream)") }
            if expectedPeer == nil { out.append("--outbound needs --expect-peer: the SPIFFE ID the upstream must prove") }
        } else {
            if authorization == nil { out.append("--authz is required: the authorization server every request is checked with") }
            if expectedPeer != nil { out.append("--expect-peer is for --outbound") }
        }
        if let checkBody, checkBody.maximumBytes < 1 || checkBody.maximumBytes > maximumRequestBodyBytes {
            out.append("--check-body-bytes must be between 1 and --max-request-body (\(maximumRequestBodyBytes))")
        }
        if authorizationTLS {
            if tlsFiles != 3 { out.append("--authz-tls needs --cert, --key and --trust-bundle (the proxy's identity to the server)") }
            if authorization == nil { out.append("--authz-tls needs --authz") }
        }
        if let identity = authorizationServerIdentity {
            if !authorizationTLS { out.append("--authz-server-identity needs --authz-tls") }
            if !identity.isMember(of: trustDomain) {
                out.append("--authz-server-identity `\(identity.uri)` is not in the trust domain `\(trustDomain)`")
            }
        }
        if !(100...599).contains(failureStatus) { out.append("--failure-status must be an HTTP status (100 to 599)") }
        if checkTimeout <= .zero { out.append("--check-timeout must be positive") }
        for port in ports ?? [] where !(1...65535).contains(port) { out.append("--ports: \(port) is not a port") }
        return out
    }
}
