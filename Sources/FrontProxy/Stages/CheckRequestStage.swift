import ExtAuthz
import Identity
import NIOCore
import NIOHTTP1
import PolicyCore

/// The workload a proxy fronts, as its checks name it.
public struct Workload: Sendable, Hashable {
    public var namespace: String
    public var labels: [String: String]
    /// The workload port requests are for (the upstream's): `destination.port`.
    public var port: Int
    /// Its declared ports (`portLevelMtls` applies to these only).
    public var declaredPorts: Set<Int>

    public init(namespace: String, labels: [String: String], port: Int, declaredPorts: Set<Int>? = nil) {
        self.namespace = namespace
        self.labels = labels
        self.port = port
        self.declaredPorts = declaredPorts ?? [port]
    }
}

/// The check stage's request: what Envoy's ext_authz filter sends for the request as the earlier stages left it
/// (headers with HTTP/2's pseudo-headers, `x-forwarded-*` and the request id, without the token that jwt_authn
/// consumed), the peers, the SNI, the verified JWT payload under jwt_authn's metadata, and the workload as context
/// extensions.
public enum CheckRequestStage {
    /// The body a check carries, when the proxy is set to send it.
    public struct Body: Sendable, Hashable {
        public var bytes: [UInt8]
        /// Only the first part of the body: it was longer than the check may carry, or had not ended.
        public var partial: Bool
        /// Sent as `raw_body` bytes whatever it holds (Istio's `packAsBytes`).
        public var asBytes: Bool

        /// The first `maximumBytes` of `chunks`; `whole` says whether the request's body ended with them.
        public init(_ chunks: [ByteBuffer], maximumBytes: Int, whole: Bool, asBytes: Bool = false) {
            self.asBytes = asBytes
            var bytes: [UInt8] = []
            for chunk in chunks where bytes.count < maximumBytes {
                bytes += chunk.readableBytesView.prefix(maximumBytes - bytes.count)
            }
            self.bytes = bytes
            partial = !whole || chunks.reduce(0) { $0 + $1.readableBytes } > maximumBytes
        }
    }

    /// Envoy's header on a check that carries a body: whether the body is partial.
    public static let partialBodyHeader = "x-envoy-auth-partial-body"

    public static func parts(
        _ request: ProxiedRequest, connection: ConnectionFacts, workload: Workload, ownIdentity: SPIFFEID?,
        body: Body? = nil
    ) -> CheckRequestParts {
        var headers: [(name: String, value: String)] = [
            (":authority", request.authority), (":method", request.method.rawValue), (":path", request.target),
            (":scheme", connection.scheme),
        ]
        headers.reserveCapacity(request.headers.count + 5)
        for header in request.headers where !isFieldName(header.name, "host") {
            headers.append((header.name, header.value))
        }
        if let body { headers.append((partialBodyHeader, body.partial ? "true" : "false")) }
        var tokens: [(issuer: String, payload: Value)] = []
        if let token = request.token { tokens.append((token.issuer, token.claims)) }
        return CheckRequestParts(
            source: .init(identity: connection.peerIdentity, address: connection.sourceAddress, port: connection.sourcePort),
            destination: .init(identity: ownIdentity, address: connection.localAddress, port: workload.port),
            namespace: workload.namespace, labels: workload.labels, requestID: request.requestID,
            method: request.method.rawValue, scheme: connection.scheme, host: request.authority, target: request.target,
            httpProtocol: connection.httpProtocol, headers: headers, body: body?.bytes ?? [], bodyAsBytes: body?.asBytes ?? false,
            serverName: connection.serverName,
            verifiedTokens: tokens)
    }
}

