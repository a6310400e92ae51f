import ExtAuthz
import GRPCCore
import GRPCNIOTransportHTTP2
import Networking
import NIOCore
import NIOSSL
import SwiftProtobuf

/// Asks the authorization server (`warden serve`, or any Envoy ext_authz v3 gRPC server) about one request.
public protocol AuthorizationClient: Sendable {
    /// The server's answer to a serialized `CheckRequest` within `timeout`, or how the call failed, completed on
    /// `eventLoop` (the loop of the connection that needs it). Never fails: every failure is a kind the proxy fails
    /// closed on.
    func check(_ request: [UInt8], timeout: Duration, on eventLoop: any EventLoop)
        -> EventLoopFuture<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>>

    /// Keeps the connection up (reconnecting with backoff) until cancelled or `shutDown`.
    func run() async throws

    /// Stops taking calls; `run` returns once the calls in flight finish.
    func shutDown()
}

/// A check of the authorization server's certificate chain as it presented it (leaf first), run inside the TLS
/// handshake; a failed future refuses the connection, so no check is sent to that server.
public typealias ServerCertificateCheck = @Sendable ([NIOSSLCertificate], any EventLoop) -> EventLoopFuture<Void>

/// The ext_authz client on grpc-swift-2 and grpc-swift-nio-transport: one long-lived HTTP/2 connection to the
/// server that every check is multiplexed over, re-established with exponential backoff when it drops. Calls do not
/// wait for a connection (`waitForReady` off): with none, a check fails at once as `unavailable`. Each call runs as a
/// Swift task; `InPlaceAuthorizationClient` is the proxy's default, and this one its measured baseline
/// (`--authz-client grpc-swift`, BENCHMARKS.md).
public final class GRPCAuthorizationClient: AuthorizationClient {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var initialBackoff: Duration
        public var maximumBackoff: Duration
        /// Mutual TLS to the server: the proxy's certificate and key, and the roots the server's chain must lead to
        /// (no host name is checked: SPIFFE servers have none).
        public var tls: TLSFiles?
        /// With `tls`: what the server's certificate must prove beyond a chain to the roots (its SPIFFE ID).
        public var verifyServer: ServerCertificateCheck?

        public init(
            host: String, port: Int, initialBackoff: Duration = .milliseconds(100), maximumBackoff: Duration = .seconds(3),
            tls: TLSFiles? = nil, verifyServer: ServerCertificateCheck? = nil
        ) {
            self.host = host
            self.port = port
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
            self.tls = tls
            self.verifyServer = verifyServer
        }
    }

    static func transportSecurity(
        _ tls: TLSFiles?, verifyServer: ServerCertificateCheck? = nil
    ) -> HTTP2ClientTransport.Posix.TransportSecurity {
        guard let tls, let chain = tls.certificateChain, let key = tls.privateKey, let bundle = tls.trustBundle else {
            return .plaintext
        }
        return .mTLS(certificateChain: [.file(path: chain, format: .pem)], privateKey: .file(path: key, format: .pem)) {
            $0.trustRoots = .certificates([.file(path: bundle, format: .pem)])
            $0.serverCertificateVerification = .noHostnameVerification
            if let verifyServer {
                $0.customVerificationCallback = { certificates, promise in
                    verifyServer(certificates, promise.futureResult.eventLoop)
                        .map { NIOSSLVerificationResultWithMetadata.certificateVerified(VerificationMetadata(nil)) }
                        .cascade(to: promise)
                }
            }
        }
    }

    private let client: GRPCClient<HTTP2ClientTransport.Posix>

    public init(options: Options) throws {
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: options.host, port: options.port),
            transportSecurity: Self.transportSecurity(options.tls, verifyServer: options.verifyServer),
            config: .defaults { config in
                config.backoff = .init(
                    initial: options.initialBackoff, max: options.maximumBackoff, multiplier: 1.6, jitter: 0.2)
                config.connection.maxIdleTime = nil
            })
        client = GRPCClient(transport: transport)
    }

    public func run() async throws {
        try await client.runConnections()
    }

    public func shutDown() {
        client.beginGracefulShutdown()
    }

    public func check(
        _ request: [UInt8], timeout: Duration, on eventLoop: any EventLoop
    ) -> EventLoopFuture<Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>> {
        eventLoop.makeFutureWithTask { await self.check(request, timeout: timeout) }
    }

    /// Sends the serialized request as it is: grpc-swift-2's serializer is handed the bytes, not a message to
    /// encode again.
    public func check(_ request: [UInt8], timeout: Duration) async -> Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure> {
        var options = CallOptions.defaults
        options.timeout = timeout
        options.waitForReady = false
        do {
            return .success(try await client.unary(
                request: ClientRequest(message: request), descriptor: Envoy_Service_Auth_V3_Authorization.Method.Check.descriptor,
                serializer: SerializedMessage(), deserializer: CheckResponseDeserializer(),
                options: options
            ) { try $0.message })
        } catch let error as RPCError {
            return .failure(Self.failure(error))
        } catch {
            return .failure(.unavailable)
        }
    }

    /// A message already serialized, passed through.
    struct SerializedMessage: MessageSerializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    }

    struct CheckResponseDeserializer: MessageDeserializer {
        func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> Envoy_Service_Auth_V3_CheckResponse {
            do {
                return try bytes.withUnsafeBytes { try Envoy_Service_Auth_V3_CheckResponse(serializedBytes: Array($0)) }
            } catch {
                throw RPCError(code: .invalidArgument, message: "the CheckResponse does not decode", cause: error)
            }
        }
    }

    /// The kind of a failed call.
    static func failure(_ error: RPCError) -> CheckFailure {
        switch error.code {
        case .deadlineExceeded: return .timeout
        case .unavailable: return .unavailable
        default: return error.cause is BinaryDecodingError || error.cause is SwiftProtobufError ? .malformed : .error
        }
    }
}
