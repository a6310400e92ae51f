import Foundation
import PolicyCore
import SwiftProtobuf

/// What a proxy knows about one request, in the terms of Envoy's ext_authz `CheckRequest`: the proxy builds its
/// checks from it (as Envoy's ext_authz filter does), and tests and benchmarks build the checks an Istio sidecar
/// would send.
public struct CheckRequestParts: Sendable {
    /// One end of the connection.
    public struct Peer: Sendable, Hashable {
        /// The peer's identity from its certificate; written as the SPIFFE URI, as Envoy reports URI SANs.
        public var identity: SPIFFEID?
        public var address: String?
        public var port: Int?

        public init(identity: SPIFFEID? = nil, address: String? = nil, port: Int? = nil) {
            self.identity = identity
            self.address = address
            self.port = port
        }
    }

    public var source: Peer
    public var destination: Peer
    /// The workload the request is for, as context extensions (`destination.namespace`,
    /// `destination.workload_labels`).
    public var namespace: String?
    public var labels: [String: String]
    public var requestID: String?
    public var method: String
    public var scheme: String
    public var host: String
    /// The request target: path and query, as received (empty when there is none).
    public var target: String
    /// `HTTP/1.1` or `HTTP/2`.
    public var httpProtocol: String
    /// Header fields in the order received; repeated names are joined with `,` as Envoy joins them.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The SNI the client sent in its TLS handshake.
    public var serverName: String?
    /// Verified JWT payloads, as Envoy's jwt_authn filter writes them into metadata (Istio keys them by issuer).
    public var verifiedTokens: [(issuer: String, payload: Value)]

    public init(
        source: Peer = Peer(), destination: Peer = Peer(), namespace: String? = nil, labels: [String: String] = [:],
        requestID: String? = nil, method: String = "GET", scheme: String = "http", host: String = "", target: String = "/",
        httpProtocol: String = "HTTP/1.1", headers: [(name: String, value: String)] = [], body: [UInt8] = [],
        serverName: String? = nil, verifiedTokens: [(issuer: String, payload: Value)] = []
    ) {
        self.source = source
        self.destination = destination
        self.namespace = namespace
        self.labels = labels
        self.requestID = requestID
        self.method = method
        self.scheme = scheme
        self.host = host
        self.target = target
        self.httpProtocol = httpProtocol
        self.headers = headers
        self.body = body
        self.serverName = serverName
        self.verifiedTokens = verifiedTokens
    }

    /// The `CheckRequest` Envoy would send.
    public var checkRequest: Envoy_Service_Auth_V3_CheckRequest {
        var check = Envoy_Service_Auth_V3_CheckRequest()
        setConnectionFields(&check)
        setTokenFields(&check)
        setRequestFields(&check)
        return check
    }

    /// The fields every request of one connection shares: both peers, the workload and the SNI.
    func setConnectionFields(_ check: inout Envoy_Service_Auth_V3_CheckRequest) {
        check.attributes.source = Self.peer(source)
        check.attributes.destination = Self.peer(destination)
        if let namespace { check.attributes.contextExtensions[CheckRequestMapper.ContextExtension.namespace] = namespace }
        if !labels.isEmpty {
            check.attributes.contextExtensions[CheckRequestMapper.ContextExtension.labels] =
                JSONWriter.string(.object(labels.mapValues(Value.string)))
        }
        if let serverName { check.attributes.tlsSession.sni = serverName }
    }

    /// The verified tokens' payloads, under jwt_authn's metadata.
    func setTokenFields(_ check: inout Envoy_Service_Auth_V3_CheckRequest) {
        guard !verifiedTokens.isEmpty else { return }
        var fields: [String: Google_Protobuf_Value] = [:]
        for (issuer, payload) in verifiedTokens { fields[issuer] = payload.protobufValue }
        check.attributes.metadataContext.filterMetadata[CheckRequestMapper.jwtAuthnFilter] = Google_Protobuf_Struct(fields: fields)
    }

    /// The HTTP request itself.
    func setRequestFields(_ check: inout Envoy_Service_Auth_V3_CheckRequest) {
        var http = Envoy_Service_Auth_V3_AttributeContext.HttpRequest()
        http.id = requestID ?? ""
        http.method = method
        http.scheme = scheme
        http.host = host
        http.path = target
        http.protocol = httpProtocol
        var joined: [String: String] = [:]
        for (name, value) in headers {
            let key = Headers.normalize(name)
            joined[key] = joined[key].map { $0 + "," + value } ?? value
        }
        http.headers = joined
        if !body.isEmpty {
            if let text = String(validating: body, as: UTF8.self) { http.body = text } else { http.rawBody = .init(body) }
            http.size = Int64(body.count)
        }
        check.attributes.request.http = http
    }

    /// What `setConnectionFields` reads.
    struct ConnectionKey: Equatable {
        var source: Peer
        var destination: Peer
        var namespace: String?
        var labels: [String: String]
        var serverName: String?
    }

    var connectionKey: ConnectionKey {
        ConnectionKey(source: source, destination: destination, namespace: namespace, labels: labels, serverName: serverName)
    }
}

/// Serializes the checks of one connection, keeping the encoded fields that repeat from check to check: the
/// connection's (peers, workload, SNI) and the last verified token's, which a keep-alive client sends on every
/// request. Protobuf reads concatenated messages as one, merged field by field (`attributes` is merged, maps gain
/// entries), so the kept bytes followed by the request's own decode exactly as `CheckRequestParts.checkRequest`.
/// Kept bytes are reused only for parts equal to the ones they were encoded from.
public struct CheckRequestEncoder: Sendable {
    private var connection: (key: CheckRequestParts.ConnectionKey, bytes: [UInt8])?
    private var tokens: (key: [(issuer: String, payload: Value)], bytes: [UInt8])?

    public init() {}

    /// The serialized `CheckRequest` for `parts`.
    public mutating func encode(_ parts: CheckRequestParts) throws -> [UInt8] {
        let key = parts.connectionKey
        var bytes: [UInt8]
        if let kept = connection, kept.key == key {
            bytes = kept.bytes
        } else {
            bytes = try Self.serialized(parts.setConnectionFields)
            connection = (key, bytes)
        }
        if !parts.verifiedTokens.isEmpty {
            if let kept = tokens, kept.key.elementsEqual(parts.verifiedTokens, by: { $0.issuer == $1.issuer && $0.payload == $1.payload }) {
                bytes += kept.bytes
            } else {
                let encoded = try Self.serialized(parts.setTokenFields)
                tokens = (parts.verifiedTokens, encoded)
                bytes += encoded
            }
        }
        bytes += try Self.serialized(parts.setRequestFields)
        return bytes
    }

    /// A `CheckRequest` holding only the fields `set` sets, serialized.
    private static func serialized(_ set: (inout Envoy_Service_Auth_V3_CheckRequest) -> Void) throws -> [UInt8] {
        var check = Envoy_Service_Auth_V3_CheckRequest()
        set(&check)
        return try check.serializedBytes()
    }
}

extension CheckRequestParts {
    static func peer(_ peer: Peer) -> Envoy_Service_Auth_V3_AttributeContext.Peer {
        var out = Envoy_Service_Auth_V3_AttributeContext.Peer()
        if let identity = peer.identity { out.principal = identity.uri }
        if peer.address != nil || peer.port != nil {
            var socket = Envoy_Config_Core_V3_SocketAddress()
            socket.address = peer.address ?? ""
            if let port = peer.port { socket.portValue = UInt32(clamping: port) }
            out.address.socketAddress = socket
        }
        return out
    }
}
