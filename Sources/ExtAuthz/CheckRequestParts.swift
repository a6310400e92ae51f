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
    /// The body goes as `raw_body` bytes even when it is UTF-8 (Istio's `packAsBytes`); otherwise as `body` text when
    /// it is UTF-8, as Envoy sends it by default.
    public var bodyAsBytes: Bool
    /// The SNI the client sent in its TLS handshake.
    public var serverName: String?
    /// Verified JWT payloads, as Envoy's jwt_authn filter writes them into metadata (Istio keys them by issuer).
    public var verifiedTokens: [(issuer: String, payload: Value)]

    public init(
        source: Peer = Peer(), destination: Peer = Peer(), namespace: String? = nil, labels: [String: String] = [:],
        requestID: String? = nil, method: String = "GET", scheme: String = "http", host: String = "", target: String = "/",
        httpProtocol: String = "HTTP/1.1", headers: [(name: String, value: String)] = [], body: [UInt8] = [],
        bodyAsBytes: Bool = false, serverName: String? = nil, verifiedTokens: [(issuer: String, payload: Value)] = []
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
        self.bodyAsBytes = bodyAsBytes
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
        http.headers = Dictionary(uniqueKeysWithValues: joinedHeaders().lazy.map { ($0.name, $0.value) })
        if !body.isEmpty {
            if !bodyAsBytes, let text = String(validating: body, as: UTF8.self) { http.body = text } else { http.rawBody = .init(body) }
            http.size = Int64(body.count)
        }
        check.attributes.request.http = http
    }

    /// `setRequestFields`'s fields serialized onto `bytes` as a `CheckRequest` of their own, written field by field
    /// rather than built as messages and handed to swift-protobuf (whose generic visitor was most of a proxy's
    /// encoding time): the same bytes up to the order of the header map's entries.
    func appendRequestFields(to bytes: inout [UInt8]) {
        var http: [UInt8] = []
        http.reserveCapacity(64 + target.utf8.count + headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 6 })
        ProtobufWire.appendString(requestID ?? "", field: 1, to: &http)
        ProtobufWire.appendString(method, field: 2, to: &http)
        for (name, value) in joinedHeaders() {
            // A map entry is a message of key (1) and value (2), both always written.
            ProtobufWire.appendTag(field: 3, lengthDelimited: true, to: &http)
            ProtobufWire.appendVarint(
                UInt64(ProtobufWire.stringFieldSize(name) + ProtobufWire.stringFieldSize(value)), to: &http)
            ProtobufWire.appendString(name, field: 1, always: true, to: &http)
            ProtobufWire.appendString(value, field: 2, always: true, to: &http)
        }
        ProtobufWire.appendString(target, field: 4, to: &http)
        ProtobufWire.appendString(host, field: 5, to: &http)
        ProtobufWire.appendString(scheme, field: 6, to: &http)
        if !body.isEmpty {
            ProtobufWire.appendTag(field: 9, lengthDelimited: false, to: &http)
            ProtobufWire.appendVarint(UInt64(body.count), to: &http)
        }
        ProtobufWire.appendString(httpProtocol, field: 10, to: &http)
        if !body.isEmpty {
            if !bodyAsBytes, let text = String(validating: body, as: UTF8.self) {
                ProtobufWire.appendString(text, field: 11, to: &http)
            } else {
                ProtobufWire.appendBytes(body, field: 12, to: &http)
            }
        }
        // CheckRequest.attributes (1) → AttributeContext.request (4) → Request.http (2).
        let request = ProtobufWire.lengthDelimitedSize(http.count)
        let attributes = ProtobufWire.lengthDelimitedSize(request)
        bytes.reserveCapacity(bytes.count + ProtobufWire.lengthDelimitedSize(attributes))
        ProtobufWire.appendTag(field: 1, lengthDelimited: true, to: &bytes)
        ProtobufWire.appendVarint(UInt64(attributes), to: &bytes)
        ProtobufWire.appendTag(field: 4, lengthDelimited: true, to: &bytes)
        ProtobufWire.appendVarint(UInt64(request), to: &bytes)
        ProtobufWire.appendTag(field: 2, lengthDelimited: true, to: &bytes)
        ProtobufWire.appendVarint(UInt64(http.count), to: &bytes)
        bytes += http
    }

    /// The header fields as a check carries them: names lower-cased, a repeated name's values joined with `,` in the
    /// order received.
    func joinedHeaders() -> [(name: String, value: String)] {
        var joined: [(name: String, value: String)] = []
        joined.reserveCapacity(headers.count)
        // A few fields are joined by looking back; many, through an index (a linear look-back would be quadratic in
        // what a client sends).
        var index: [String: Int]? = headers.count > 32 ? [:] : nil
        for (name, value) in headers {
            let key = Headers.normalize(name)
            let earlier = index.map { $0[key] } ?? joined.firstIndex { $0.name == key }
            if let earlier {
                joined[earlier].value += "," + value
            } else {
                index?[key] = joined.count
                joined.append((key, value))
            }
        }
        return joined
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
        parts.appendRequestFields(to: &bytes)
        return bytes
    }

    /// A `CheckRequest` holding only the fields `set` sets, serialized with map entries in key order: the same
    /// token gives the same bytes on every connection, by which the server knows a payload it has read before
    /// (`CheckRequestMapper.decode(_:)`).
    private static func serialized(_ set: (inout Envoy_Service_Auth_V3_CheckRequest) -> Void) throws -> [UInt8] {
        var check = Envoy_Service_Auth_V3_CheckRequest()
        set(&check)
        return try check.serializedBytes(options: deterministic)
    }

    private static let deterministic = {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        return options
    }()
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

/// The few pieces of protobuf's wire format that `appendRequestFields` writes.
enum ProtobufWire {
    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    static func varintSize(_ value: Int) -> Int {
        var size = 1, value = UInt64(value)
        while value >= 0x80 {
            size += 1
            value >>= 7
        }
        return size
    }

    /// A field's key: its number and wire type (2, length-delimited, or 0, varint). Fields written here are below 16,
    /// so a key is one byte.
    static func appendTag(field: Int, lengthDelimited: Bool, to bytes: inout [UInt8]) {
        bytes.append(UInt8(field << 3 | (lengthDelimited ? 2 : 0)))
    }

    /// A length-delimited field of `length` bytes, key and length included.
    static func lengthDelimitedSize(_ length: Int) -> Int { 1 + varintSize(length) + length }

    static func stringFieldSize(_ value: String) -> Int { lengthDelimitedSize(value.utf8.count) }

    /// A string field; an empty one is left out (proto3's default) unless `always`.
    static func appendString(_ value: String, field: Int, always: Bool = false, to bytes: inout [UInt8]) {
        let utf8 = value.utf8
        guard always || !utf8.isEmpty else { return }
        appendTag(field: field, lengthDelimited: true, to: &bytes)
        appendVarint(UInt64(utf8.count), to: &bytes)
        bytes.append(contentsOf: utf8)
    }

    static func appendBytes(_ value: [UInt8], field: Int, to bytes: inout [UInt8]) {
        appendTag(field: field, lengthDelimited: true, to: &bytes)
        appendVarint(UInt64(value.count), to: &bytes)
        bytes += value
    }
}
