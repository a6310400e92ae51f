import Foundation
import PolicyCore
import SwiftProtobuf

extension Envoy_Service_Auth_V3_CheckRequest {
    /// Decodes a `CheckRequest` as swift-protobuf does, faster for the requests proxies send.
    ///
    /// swift-protobuf decodes map fields (the request headers, the context extensions, the peers' labels, a
    /// `Struct`'s fields) through generic code it cannot specialize for a caller: at a sidecar's dozen headers that
    /// was most of the decoding's CPU. `CheckWireReader` reads the fields proxies send — peers, the HTTP
    /// request, context extensions, the metadata's `Struct`s — straight from the wire into the same message, and
    /// hands the rest (typed metadata, timestamps, header maps, non-socket addresses) to swift-protobuf
    /// one submessage at a time, within what is left of its nesting limit. Anything it does not expect (an unknown
    /// field, a field repeated where swift-protobuf would merge, a wrong wire type, invalid UTF-8, bad framing,
    /// nesting past the limit) makes it give up, and the whole request is decoded by swift-protobuf: the result, or
    /// the error, is always swift-protobuf's.
    public init(checkRequestBytes bytes: [UInt8]) throws {
        self = try DecodedCheck(bytes, metadataMemo: nil).request
    }
}

/// A `CheckRequest` read from its wire bytes, as `CheckRequest(checkRequestBytes:)` reads it, with its metadata
/// context as a memo knows it when the reader took the request itself (`CheckRequestMapper.decode(_:)`).
public struct DecodedCheck: Sendable {
    public let request: Envoy_Service_Auth_V3_CheckRequest
    /// The request's metadata context, which equals `request.attributes.metadataContext`, and its `request.auth`.
    let metadata: DecodedMetadata?

    /// A message from elsewhere, its metadata not known to any memo.
    public init(_ request: Envoy_Service_Auth_V3_CheckRequest) {
        self.request = request
        metadata = nil
    }

    init(_ bytes: [UInt8], metadataMemo: MemoCache<ByteKey, DecodedMetadata>?) throws {
        var metadata: DecodedMetadata?
        if let request = bytes.withUnsafeBytes({
            CheckWireReader.checkRequest($0, metadataMemo: metadataMemo, metadata: &metadata)
        }) {
            self.request = request
            self.metadata = metadata
        } else {
            self.request = try Envoy_Service_Auth_V3_CheckRequest(serializedBytes: bytes)
            self.metadata = nil
        }
    }
}

/// A check's metadata context and the `request.auth` its jwt_authn payload gives: a pure function of the context's
/// bytes, so a memo may keep it by them.
struct DecodedMetadata: Sendable {
    let metadata: Envoy_Config_Core_V3_Metadata
    let requestAuth: AuthzRequest.RequestAuth?

    init(_ metadata: Envoy_Config_Core_V3_Metadata) {
        self.metadata = metadata
        requestAuth = CheckRequestMapper.verifiedPayloadAuth(metadata.filterMetadata)
    }
}

/// The protobuf wire format of the `CheckRequest` fields proxies send (and of the answers servers give, in
/// CheckResponseDecoding.swift); every function returns nil where swift-protobuf's own decoding must decide.
enum CheckWireReader {
    typealias Bytes = UnsafeRawBufferPointer
    typealias AttributeContext = Envoy_Service_Auth_V3_AttributeContext

    /// The attributes may come in several pieces, which protobuf merges: `warden proxy` sends a connection's
    /// peers, a token's payload and the request's own fields as concatenated pieces (`CheckRequestEncoder`). Each
    /// piece is read into the attributes so far; a field two pieces both hold (which swift-protobuf would merge
    /// message by message) makes the reader give up.
    ///
    /// With `metadataMemo`, the metadata context is read through it, and `metadata` is what it gave; a context
    /// longer than `memoizedMetadataBytes` is read as it comes.
    static func checkRequest(
        _ bytes: Bytes, metadataMemo: MemoCache<ByteKey, DecodedMetadata>? = nil, metadata: inout DecodedMetadata?
    ) -> Envoy_Service_Auth_V3_CheckRequest? {
        message(bytes, Envoy_Service_Auth_V3_CheckRequest()) { request, field, wire, reader in
            guard field == 1, let body = reader.body(wire) else { return false }
            var attributes = request.attributes
            request.clearAttributes()  // so the pieces are read into storage no one else holds
            guard attributeContext(body, into: &attributes, metadataMemo: metadataMemo, metadata: &metadata)
            else { return false }
            request.attributes = attributes
            return true
        }
    }

    static func checkRequest(_ bytes: Bytes) -> Envoy_Service_Auth_V3_CheckRequest? {
        var unused: DecodedMetadata?
        return checkRequest(bytes, metadata: &unused)
    }

    /// A token's payload is a few hundred bytes; a larger context is not kept.
    static let memoizedMetadataBytes = 4096

    static func attributeContext(
        _ bytes: Bytes, into context: inout AttributeContext, metadataMemo: MemoCache<ByteKey, DecodedMetadata>?,
        metadata decoded: inout DecodedMetadata?
    ) -> Bool {
        var extensions = context.contextExtensions
        let read = fields(bytes, of: &context) { context, field, wire, reader in
            guard let body = reader.body(wire) else { return false }
            switch field {
            case 1:
                guard !context.hasSource, let peer = peer(body) else { return false }
                context.source = peer
            case 2:
                guard !context.hasDestination, let peer = peer(body) else { return false }
                context.destination = peer
            case 4:
                guard !context.hasRequest, let request = request(body) else { return false }
                context.request = request
            case 10:
                return mapEntry(body, into: &extensions)
            case 11:
                guard !context.hasMetadataContext else { return false }
                if let metadataMemo, body.count <= memoizedMetadataBytes {
                    guard let known = metadataMemo.value(ByteKey(body), computing: { key in
                        key.bytes.withUnsafeBytes { metadata($0, depth: 3) }.map(DecodedMetadata.init)
                    }) else { return false }
                    context.metadataContext = known.metadata
                    decoded = known
                } else {
                    guard let metadata = metadata(body, depth: 3) else { return false }
                    context.metadataContext = metadata
                }
            case 12:
                guard !context.hasTlsSession, let session = tlsSession(body) else { return false }
                context.tlsSession = session
            case 13:
                guard !context.hasRouteMetadataContext, let metadata = metadata(body, depth: 3)
                else { return false }
                context.routeMetadataContext = metadata
            default:
                return false
            }
            return true
        }
        if read, !extensions.isEmpty { context.contextExtensions = extensions }
        return read
    }

    /// The TLS session: its SNI (a proxy sends it on every check of a TLS connection).
    static func tlsSession(_ bytes: Bytes) -> AttributeContext.TLSSession? {
        message(bytes, AttributeContext.TLSSession()) { session, field, wire, reader in
            guard field == 1, let body = reader.body(wire), let text = Reader.string(body) else { return false }
            session.sni = text
            return true
        }
    }

    static func peer(_ bytes: Bytes) -> AttributeContext.Peer? {
        var labels: [String: String] = [:]
        var read = message(bytes, AttributeContext.Peer()) { peer, field, wire, reader in
            guard let body = reader.body(wire) else { return false }
            switch field {
            case 1:
                guard !peer.hasAddress, let address = address(body) else { return false }
                peer.address = address
                return true
            case 3: return mapEntry(body, into: &labels)
            case 2, 4, 5:
                guard let text = Reader.string(body) else { return false }
                switch field {
                case 2: peer.service = text
                case 4: peer.principal = text
                default: peer.certificate = text
                }
                return true
            default:
                return false
            }
        }
        if !labels.isEmpty { read?.labels = labels }
        return read
    }

    /// A socket address by hand; a pipe or an internal address by swift-protobuf.
    static func address(_ bytes: Bytes) -> Envoy_Config_Core_V3_Address? {
        let socket = message(bytes, Envoy_Config_Core_V3_Address()) { address, field, wire, reader in
            guard field == 1, address.address == nil, let body = reader.body(wire), let socket = socketAddress(body)
            else { return false }
            address.socketAddress = socket
            return true
        }
        return socket ?? decoded(Envoy_Config_Core_V3_Address.self, bytes, depth: 4)
    }

    static func socketAddress(_ bytes: Bytes) -> Envoy_Config_Core_V3_SocketAddress? {
        message(bytes, Envoy_Config_Core_V3_SocketAddress()) { socket, field, wire, reader in
            switch (field, wire) {
            case (1, 0):
                guard let value = reader.varint() else { return false }
                socket.protocol = .init(rawValue: Int(Int32(truncatingIfNeeded: value)))!
            case (3, 0):
                guard socket.portSpecifier == nil, let value = reader.varint() else { return false }
                socket.portValue = UInt32(truncatingIfNeeded: value)
            case (6, 0):
                guard let value = reader.varint() else { return false }
                socket.ipv4Compat = value != 0
            case (2, 2), (4, 2), (5, 2), (7, 2):
                guard let body = reader.lengthDelimited(), let text = Reader.string(body) else { return false }
                switch field {
                case 2: socket.address = text
                case 4:
                    guard socket.portSpecifier == nil else { return false }
                    socket.namedPort = text
                case 5: socket.resolverName = text
                default: socket.networkNamespaceFilepath = text
                }
            default:
                return false
            }
            return true
        }
    }

    static func request(_ bytes: Bytes) -> AttributeContext.Request? {
        message(bytes, AttributeContext.Request()) { request, field, wire, reader in
            guard let body = reader.body(wire) else { return false }
            switch field {
            case 1:
                guard !request.hasTime, let time = decoded(Google_Protobuf_Timestamp.self, body, depth: 4) else { return false }
                request.time = time
            case 2:
                guard !request.hasHTTP, let http = httpRequest(body) else { return false }
                request.http = http
            default:
                return false
            }
            return true
        }
    }

    static func httpRequest(_ bytes: Bytes) -> AttributeContext.HttpRequest? {
        var headers = [String: String](minimumCapacity: 16)
        var read = message(bytes, AttributeContext.HttpRequest()) { http, field, wire, reader in
            if field == 9 {
                guard wire == 0, let value = reader.varint() else { return false }
                http.size = Int64(bitPattern: value)
                return true
            }
            guard let body = reader.body(wire) else { return false }
            switch field {
            case 3:
                return mapEntry(body, into: &headers)
            case 12:
                http.rawBody = Data(body)
            case 13:
                guard !http.hasHeaderMap, let map = decoded(Envoy_Config_Core_V3_HeaderMap.self, body, depth: 5) else { return false }
                http.headerMap = map
            case 1, 2, 4, 5, 6, 7, 8, 10, 11:
                guard let text = Reader.string(body) else { return false }
                switch field {
                case 1: http.id = text
                case 2: http.method = text
                case 4: http.path = text
                case 5: http.host = text
                case 6: http.scheme = text
                case 7: http.query = text
                case 8: http.fragment = text
                case 10: http.protocol = text
                default: http.body = text
                }
            default:
                return false
            }
            return true
        }
        if !headers.isEmpty { read?.headers = headers }
        return read
    }

    /// A message's fields in order: `read` takes each field's number and wire type with the reader at its value,
    /// and returns false to give up. Nil when it gives up or the framing is bad.
    static func message<M>(_ bytes: Bytes, _ empty: M, _ read: (inout M, Int, Int, inout Reader) -> Bool) -> M? {
        var message = empty
        return fields(bytes, of: &message, read) ? message : nil
    }

    /// The same, read into a message already holding fields (a later piece of it); false when it gives up.
    static func fields<M>(_ bytes: Bytes, of message: inout M, _ read: (inout M, Int, Int, inout Reader) -> Bool) -> Bool {
        var reader = Reader(bytes)
        while let (field, wire) = reader.tag() {
            guard read(&message, field, wire, &reader) else { return false }
        }
        return !reader.isMalformed
    }

    /// One `map<string, string>` entry (key 1, value 2, either may be absent); a later entry for a key replaces an
    /// earlier one, as swift-protobuf's map decoding does.
    static func mapEntry(_ bytes: Bytes, into map: inout [String: String]) -> Bool {
        entry(bytes, into: &map, absent: "", valueMayRepeat: true) { Reader.string($0) }
    }

    /// One map entry whose value is read by `value`. A value that repeats within the entry is kept last for a
    /// string and gives up for a message (which swift-protobuf would merge).
    static func entry<V>(
        _ bytes: Bytes, into map: inout [String: V], absent: V, valueMayRepeat: Bool = false, _ value: (Bytes) -> V?
    ) -> Bool {
        var key = ""
        var found: V?
        let read: Void? = message(bytes, ()) { _, field, wire, reader in
            guard let body = reader.body(wire) else { return false }
            switch field {
            case 1:
                guard let text = Reader.string(body) else { return false }
                key = text
            case 2:
                guard valueMayRepeat || found == nil, let read = value(body) else { return false }
                found = read
            default:
                return false
            }
            return true
        }
        guard read != nil else { return false }
        map[key] = found ?? absent
        return true
    }

    /// swift-protobuf's nesting limit: a message deeper than this in the whole request is refused.
    static let depthLimit = BinaryDecodingOptions().messageDepthLimit

    /// Envoy's metadata, filter name to `Struct` (jwt_authn's verified payloads), read by hand: swift-protobuf reads
    /// a `Struct` through its generic map decoding. Typed metadata goes to swift-protobuf. `depth`: the metadata's in
    /// the whole request.
    static func metadata(_ bytes: Bytes, depth: Int) -> Envoy_Config_Core_V3_Metadata? {
        var filters: [String: Google_Protobuf_Struct] = [:]
        let read: Void? = message(bytes, ()) { _, field, wire, reader in
            guard field == 1, let body = reader.body(wire) else { return false }
            return entry(body, into: &filters, absent: Google_Protobuf_Struct()) { structValue($0, depth: depth + 1) }
        }
        guard read != nil else { return decoded(Envoy_Config_Core_V3_Metadata.self, bytes, depth: depth) }
        var metadata = Envoy_Config_Core_V3_Metadata()
        metadata.filterMetadata = filters
        return metadata
    }

    static func structValue(_ bytes: Bytes, depth: Int) -> Google_Protobuf_Struct? {
        guard depth <= depthLimit else { return nil }
        var fields: [String: Google_Protobuf_Value] = [:]
        let read: Void? = message(bytes, ()) { _, field, wire, reader in
            guard field == 1, let body = reader.body(wire) else { return false }
            return entry(body, into: &fields, absent: Google_Protobuf_Value()) { value($0, depth: depth + 1) }
        }
        return read == nil ? nil : Google_Protobuf_Struct(fields: fields)
    }

    /// One `Value`; a second kind in it gives up (swift-protobuf keeps the last, or merges two messages).
    static func value(_ bytes: Bytes, depth: Int) -> Google_Protobuf_Value? {
        guard depth <= depthLimit else { return nil }
        return message(bytes, Google_Protobuf_Value()) { value, field, wire, reader in
            guard value.kind == nil else { return false }
            switch (field, wire) {
            case (1, 0):
                guard let raw = reader.varint() else { return false }
                value.nullValue = .init(rawValue: Int(Int32(truncatingIfNeeded: raw)))!
            case (2, 1):
                guard let bits = reader.fixed64() else { return false }
                value.numberValue = Double(bitPattern: bits)
            case (4, 0):
                guard let raw = reader.varint() else { return false }
                value.boolValue = raw != 0
            case (3, 2):
                guard let body = reader.lengthDelimited(), let text = Reader.string(body) else { return false }
                value.stringValue = text
            case (5, 2):
                guard let body = reader.lengthDelimited(), let inner = structValue(body, depth: depth + 1) else { return false }
                value.structValue = inner
            case (6, 2):
                guard let body = reader.lengthDelimited(), let list = listValue(body, depth: depth + 1) else { return false }
                value.listValue = list
            default:
                return false
            }
            return true
        }
    }

    static func listValue(_ bytes: Bytes, depth: Int) -> Google_Protobuf_ListValue? {
        guard depth <= depthLimit else { return nil }
        return message(bytes, Google_Protobuf_ListValue()) { list, field, wire, reader in
            guard field == 1, let body = reader.body(wire), let item = value(body, depth: depth + 1) else { return false }
            list.values.append(item)
            return true
        }
    }

    /// A submessage this reader leaves to swift-protobuf, at `depth` in the whole request (the request is 1):
    /// decoded with what is left of swift-protobuf's nesting limit there, so that a request nested too deeply
    /// for it is refused here too.
    static func decoded<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: Bytes, depth: Int) -> M? {
        var message = M()
        return merge(bytes, into: &message, depth: depth) ? message : nil
    }

    /// The same, merged into `message` as swift-protobuf merges a singular message field that comes again.
    static func merge<M: SwiftProtobuf.Message>(_ bytes: Bytes, into message: inout M, depth: Int) -> Bool {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = depthLimit - (depth - 1)
        return (try? message.merge(serializedBytes: Array(bytes), options: options)) != nil
    }

    /// A cursor over protobuf wire bytes. `tag()` returns nil at the end, or on bad framing, which `isMalformed`
    /// then tells.
    struct Reader {
        let bytes: Bytes
        var position = 0
        private(set) var isMalformed = false

        init(_ bytes: Bytes) {
            self.bytes = bytes
        }

        /// The next field's number and wire type.
        mutating func tag() -> (Int, Int)? {
            guard position < bytes.count else { return nil }
            guard let key = varint(), key >> 3 > 0, key >> 3 <= 536_870_911 else {
                isMalformed = true
                return nil
            }
            return (Int(key >> 3), Int(key & 7))
        }

        /// A little-endian 64-bit value (wire type 1).
        mutating func fixed64() -> UInt64? {
            guard bytes.count - position >= 8 else {
                isMalformed = true
                return nil
            }
            var value: UInt64 = 0
            for index in 0..<8 { value |= UInt64(bytes[position + index]) << (8 * index) }
            position += 8
            return value
        }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while position < bytes.count, shift < 64 {
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            isMalformed = true
            return nil
        }

        /// A length-delimited value, or nil (and nothing read) when the field is of another wire type.
        mutating func body(_ wire: Int) -> Bytes? {
            wire == 2 ? lengthDelimited() : nil
        }

        mutating func lengthDelimited() -> Bytes? {
            guard let length = varint(), length <= UInt64(bytes.count - position) else {
                isMalformed = true
                return nil
            }
            let start = position
            position += Int(length)
            return Bytes(rebasing: bytes[start..<position])
        }

        /// Valid UTF-8 as a string; nil otherwise (swift-protobuf refuses it). ASCII, nearly every field a proxy
        /// sends, takes a direct path: the standard library's validating initializer is generic and, called
        /// from here, unspecialized (its metadata lookups cost more than the rest of the decoding).
        static func string(_ bytes: Bytes) -> String? {
            let code = bytes.assumingMemoryBound(to: UInt8.self)
            var high: UInt8 = 0
            for byte in code { high |= byte }
            if high < 0x80 { return String(decoding: code, as: UTF8.self) }
            return String(validating: code, as: UTF8.self)
        }
    }
}
