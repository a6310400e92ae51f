import Foundation
import PolicyCore
import SwiftProtobuf
import Synchronization

/// Turns Envoy's `CheckRequest` into the attributes AuthorizationPolicies match (`AuthzRequest`), the way an
/// Istio sidecar reads them from the same connection and request.
public struct CheckRequestMapper: Sendable {
    public struct Options: Sendable, Hashable {
        public var pathNormalizer: PathNormalizer
        /// Proxies in front of the calling proxy that append to `X-Forwarded-For`; `remote.ip` skips their entries
        /// (Istio's `numTrustedProxies`).
        public var trustedProxies: Int
        /// When set, `request.auth.*` may also come from this header, which `warden proxy` sets after verifying a
        /// JWT (see `VerifiedClaimsHeader`), in the checks of callers `map` is told are trusted with it. Only
        /// enable it behind a proxy that strips the header from clients.
        public var verifiedClaimsHeader: String?
        /// The workload this server guards, when neither the context extensions nor the destination peer name it.
        public var destinationNamespace: String?
        public var destinationLabels: [String: String]

        public init(
            pathNormalizer: PathNormalizer = PathNormalizer(),
            trustedProxies: Int = 0,
            verifiedClaimsHeader: String? = nil,
            destinationNamespace: String? = nil,
            destinationLabels: [String: String] = [:]
        ) {
            self.pathNormalizer = pathNormalizer
            self.trustedProxies = trustedProxies
            self.verifiedClaimsHeader = verifiedClaimsHeader
            self.destinationNamespace = destinationNamespace
            self.destinationLabels = destinationLabels
        }
    }

    /// Context extension keys that name the destination workload (set per route or virtual host in Envoy's
    /// `ext_authz` per-route config).
    public enum ContextExtension {
        public static let namespace = "destination.namespace"
        /// Labels as a JSON object (`{"app":"details"}`) or `key=value` pairs joined by commas.
        public static let labels = "destination.workload_labels"
    }

    /// Envoy's jwt_authn filter, whose metadata carries verified token payloads.
    public static let jwtAuthnFilter = "envoy.filters.http.jwt_authn"

    public var options: Options
    let labelCache = MemoCache<String, [String: String]>(capacity: 256)
    /// Labels a check carries as the destination peer's, by `key(_:)`.
    let peerLabelCache = MemoCache<String, [String: String]>(capacity: 256)
    /// The source peer by the principal the proxy reports: its SPIFFE ID parsed once.
    let peerCache = MemoCache<String, AuthzRequest.Source>(capacity: 1024)
    /// The metadata a check carries, by its bytes: decoded, and its `request.auth` derived, once per token (a proxy
    /// sends a token's verified payload on every request that bears it; see `decode(_:)`).
    let metadataMemo = MemoCache<ByteKey, DecodedMetadata>(capacity: 256)

    public init(options: Options = Options()) {
        self.options = options
    }

    /// The attributes of one check. Never fails: an attribute that cannot be read is left absent, so a rule
    /// that needs it does not match (and a DENY rule written with `not…` does).
    ///
    /// `claimsHeaderTrusted` says whether the caller may vouch for `verifiedClaimsHeader` (false unless said): a
    /// downstream client can send that header itself, so the server passes true only for an authenticated proxy on
    /// its allow-list.
    /// Envoy's jwt_authn metadata is read from any caller: the proxy's own filter writes it, never the client,
    /// so it is exactly as trustworthy as the rest of the `CheckRequest` (`source.principal` included).
    public func map(_ check: Envoy_Service_Auth_V3_CheckRequest, claimsHeaderTrusted: Bool = false) -> AuthzRequest {
        map(DecodedCheck(check), claimsHeaderTrusted: claimsHeaderTrusted)
    }

    /// A `CheckRequest` from its wire bytes (`CheckRequest(checkRequestBytes:)`), its metadata read through
    /// `metadataMemo`: the same token's payload, on every request bearing it, is decoded and mapped once.
    public func decode(_ bytes: [UInt8]) throws -> DecodedCheck {
        try DecodedCheck(bytes, metadataMemo: metadataMemo)
    }

    /// The same for a check read by `decode(_:)`, whose metadata's `request.auth` may be known already.
    public func map(_ decoded: DecodedCheck, claimsHeaderTrusted: Bool = false) -> AuthzRequest {
        let attributes = decoded.request.attributes
        let http = attributes.request.http
        var request = AuthzRequest()

        // Source: the mTLS peer and its socket address.
        let source = attributes.source
        if !source.principal.isEmpty, let peer = peerCache.value(source.principal, computing: {
            AuthzRequest.Source(principal: SPIFFEID.principal(ofPeer: $0))
        }) {
            request.source = peer
        }
        if let socket = Self.socketAddress(source) { request.source.ip = IPAddress(socket.address) }

        // Destination: the socket, then the workload from context extensions, the peer, or configuration. (Each
        // read of a message field copies the field, so each is read once.)
        let destination = attributes.destination
        if let socket = Self.socketAddress(destination) {
            request.destination.ip = IPAddress(socket.address)
            if case .portValue(let port)? = socket.portSpecifier { request.destination.port = Int(port) }
        }
        let extensions = attributes.contextExtensions
        request.destination.namespace = (extensions.isEmpty ? nil : extensions[ContextExtension.namespace])
            ?? Self.namespace(ofPrincipal: destination.principal)
            ?? options.destinationNamespace
        if !extensions.isEmpty, let text = extensions[ContextExtension.labels],
           let labels = labelCache.value(text, computing: Self.labels)
        {
            request.destination.labels = labels
        } else if case let labels = destination.labels, !labels.isEmpty {
            // Kept by content too, so every check of a workload hands the engine the same labels (see `MemoCache`).
            request.destination.labels = peerLabelCache.value(Self.key(labels)) { _ in labels } ?? labels
        } else {
            request.destination.labels = options.destinationLabels
        }

        // The HTTP request.
        var headers: Headers
        if http.hasHeaderMap && !http.headerMap.headers.isEmpty {
            headers = Headers(minimumCapacity: http.headerMap.headers.count)
            for header in http.headerMap.headers {
                let value = header.value.isEmpty ? String(decoding: header.rawValue, as: UTF8.self) : header.value
                headers.add(header.key, value)
            }
        } else {
            headers = Headers(http.headers)
        }
        let host = http.host.isEmpty ? headers[":authority"] ?? headers["host"] ?? "" : http.host
        let target = http.path.isEmpty ? headers[":path"] ?? "" : http.path
        describe(&request, method: http.method, host: host, target: target, query: http.query.isEmpty ? nil : http.query,
                 headers: headers)
        if attributes.hasTlsSession, case let sni = attributes.tlsSession.sni, !sni.isEmpty { request.connectionSNI = sni }
        let verified = if let metadata = decoded.metadata { metadata.requestAuth } else {
            Self.verifiedPayloadAuth(attributes.hasMetadataContext ? attributes.metadataContext.filterMetadata : [:])
        }
        request.auth = verified ?? claimsHeaderAuth(headers: headers, trusted: claimsHeaderTrusted)
        return request
    }

    /// The attributes of a request as ext_authz's HTTP mode receives it (the original method, target and headers,
    /// from the calling proxy's address), read directly: the same attributes `map` gives for the `CheckRequest`
    /// `HTTPCheckRequest.make` builds from them, without building it.
    public func map(
        method: String, target: String, headers pairs: [(name: String, value: String)], sourceAddress: String?,
        claimsHeaderTrusted: Bool = false
    ) -> AuthzRequest {
        var request = AuthzRequest()
        if let sourceAddress { request.source.ip = IPAddress(sourceAddress) }
        request.destination.namespace = options.destinationNamespace
        request.destination.labels = options.destinationLabels
        var headers = Headers(minimumCapacity: pairs.count)
        for (name, value) in pairs { headers.add(name, value) }
        // The first `host` field, as `HTTPCheckRequest` takes it, not the joined values; when that is empty, the
        // joined fields, as `map` falls back to them for a `CheckRequest` without a host.
        func first(_ name: String) -> String? { pairs.first { Headers.normalize($0.name) == name }?.value }
        var host = first("host") ?? first(":authority") ?? ""
        if host.isEmpty { host = headers[":authority"] ?? headers["host"] ?? "" }
        describe(&request, method: method, host: host, target: target, query: nil, headers: headers)
        request.auth = claimsHeaderAuth(headers: headers, trusted: claimsHeaderTrusted)
        return request
    }

    /// The HTTP attributes, whichever form the request came in: the path normalized (or refused), and `remote.ip`.
    private func describe(
        _ request: inout AuthzRequest, method: String, host: String, target: String, query fallbackQuery: String?,
        headers: Headers
    ) {
        request.http.headers = headers
        if !method.isEmpty { request.http.method = method }
        if !host.isEmpty { request.http.host = host }
        if !target.isEmpty {
            let (path, query) = AuthzRequest.HTTPAttributes.split(target: target)
            switch options.pathNormalizer.normalize(path) {
            case .path(let normalized): request.http.path = normalized
            case .refused(let refusal):
                request.http.path = path
                request.http.refusal = refusal
            }
            request.http.query = query ?? fallbackQuery
        }
        request.remoteIP = remoteIP(forwardedFor: headers.value(lowercased: "x-forwarded-for"), source: request.source.ip)
    }

    /// `remote.ip`: the `X-Forwarded-For` entry added by the first untrusted hop, counting from the right past
    /// `trustedProxies` entries; the peer's own address when the header has no such entry.
    public func remoteIP(forwardedFor: String?, source: IPAddress?) -> IPAddress? {
        guard let forwardedFor else { return source }
        // Walk the entries from the right without splitting the whole header: only one entry is needed.
        var end = forwardedFor.endIndex
        var skip = options.trustedProxies
        while true {
            let comma = forwardedFor.utf8[..<end].lastIndex(of: UInt8(ascii: ","))
            let start = comma.map { forwardedFor.utf8.index(after: $0) } ?? forwardedFor.startIndex
            if start != end {  // an empty entry (",,") is no hop
                if skip == 0 { return IPAddress(String(forwardedFor[start..<end].trimmingASCIIWhitespace)) ?? source }
                skip -= 1
            }
            guard let comma else { return source }
            end = comma
        }
    }

    /// `request.auth.*` from a payload the jwt_authn filter verified, which comes first; else `claimsHeaderAuth`.
    static func verifiedPayloadAuth(_ filters: [String: Google_Protobuf_Struct]) -> AuthzRequest.RequestAuth? {
        // Most checks carry no metadata: the filter's name is not hashed for them.
        guard !filters.isEmpty, let metadata = filters[jwtAuthnFilter],
              let claims = jwtPayload(PolicyCore.Value(protobuf: metadata))
        else { return nil }
        return VerifiedClaimsHeader.requestAuth(claims: claims)
    }

    /// `request.auth.*` from the verified-claims header, when the caller is trusted with it.
    func claimsHeaderAuth(headers: Headers, trusted: Bool) -> AuthzRequest.RequestAuth? {
        guard trusted, let name = options.verifiedClaimsHeader, let text = headers[name],
              let claims = try? VerifiedClaimsHeader.decode(text)
        else { return nil }
        return VerifiedClaimsHeader.requestAuth(claims: claims)
    }

    /// jwt_authn writes each payload under the name its provider gives in `payload_in_metadata` (Istio uses the
    /// issuer); a struct that is itself a payload (has `iss`) is taken as is.
    static func jwtPayload(_ metadata: PolicyCore.Value) -> PolicyCore.Value? {
        guard case .object(let members) = metadata else { return nil }
        if metadata["iss"] != nil { return metadata }
        return members.sorted { $0.key < $1.key }.lazy.map(\.value).first { $0["iss"] != nil }
    }

    static func socketAddress(_ peer: Envoy_Service_Auth_V3_AttributeContext.Peer) -> Envoy_Config_Core_V3_SocketAddress? {
        guard peer.hasAddress, case .socketAddress(let socket)? = peer.address.address else { return nil }
        return socket
    }

    /// The `/ns/<name>/` segment of a SPIFFE principal.
    static func namespace(ofPrincipal principal: String) -> String? {
        guard !principal.isEmpty else { return nil }
        return (try? SPIFFEID(principalOrURI: principal))?.namespace
    }

    /// A text naming exactly these labels: each name and value with its length before it, in name order.
    static func key(_ labels: [String: String]) -> String {
        var out = ""
        for (name, value) in labels.sorted(by: { $0.key < $1.key }) {
            out += "\(name.utf8.count):\(name)\(value.utf8.count):\(value)"
        }
        return out
    }

    /// Labels from a context extension: a JSON object of strings, or `key=value` pairs joined by commas.
    static func labels(_ text: String) -> [String: String]? {
        let trimmed = Substring(text).trimmingASCIIWhitespace
        if trimmed.hasPrefix("{") {
            guard case .object(let members)? = try? JSONReader.parse(String(trimmed)) else { return nil }
            var out: [String: String] = [:]
            for (k, v) in members {
                guard let key = k.stringValue, let value = v.stringValue else { return nil }
                out[key] = value
            }
            return out
        }
        var out: [String: String] = [:]
        for pair in trimmed.split(separator: ",") {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex,
                  pair.index(after: equals) != pair.endIndex
            else { return nil }
            out[String(pair[..<equals].trimmingASCIIWhitespace)] =
                String(pair[pair.index(after: equals)...].trimmingASCIIWhitespace)
        }
        return out
    }
}

/// Values computed from a text (or bytes) a check carries, kept for the next check carrying the same: a route sends
/// the same workload labels on every check, a mesh has few peer identities, and a client its token on every
/// request, so each is parsed once. Every check of a workload so hands over the same labels dictionary, by which
/// the AuthorizationPolicy engine finds what it resolved for that workload. Bounded: past `capacity` distinct keys
/// it starts over. A key that gives nothing is not kept.
final class MemoCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let capacity: Int
    private let entries = Mutex<[Key: Value]>([:])

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { entries.withLock { $0.count } }

    func value(_ key: Key, computing compute: (Key) -> Value?) -> Value? {
        if let hit = entries.withLock({ $0[key] }) { return hit }
        guard let computed = compute(key) else { return nil }
        entries.withLock {
            if $0.count >= capacity { $0.removeAll(keepingCapacity: true) }
            $0[key] = computed
        }
        return computed
    }
}

/// Bytes as a dictionary key, hashed in one pass over the buffer: an array of bytes hashes (and so costs) byte by
/// byte, which for a token's metadata was most of a memo hit.
struct ByteKey: Hashable, Sendable {
    let bytes: [UInt8]

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = [UInt8](bytes)
    }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    static func == (a: ByteKey, b: ByteKey) -> Bool {
        a.bytes.count == b.bytes.count && a.bytes.withUnsafeBytes { x in b.bytes.withUnsafeBytes { y in
            x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
        } }
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (the whitespace HTTP headers and label lists allow).
    var trimmingASCIIWhitespace: Substring {
        var out = self
        while let first = out.utf8.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { out = out.dropFirst() }
        while let last = out.utf8.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { out = out.dropLast() }
        return out
    }
}
