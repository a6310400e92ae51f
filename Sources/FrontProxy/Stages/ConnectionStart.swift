/// The first stage of a connection: what its first bytes say it is, before any byte is handed to TLS or HTTP
/// (Envoy's `tls_inspector`). A TLS connection is read up to the end of its first record, the ClientHello, so the
/// server name (SNI) and the application protocols it offers are known; a plaintext connection is known from its
/// first byte.
public enum ConnectionStart: Sendable, Hashable {
    /// Not enough bytes yet.
    case needMoreBytes
    /// A TLS ClientHello (the whole first record has arrived).
    case tls(ClientHello)
    /// Anything else: plaintext (HTTP, or garbage the HTTP parser will refuse).
    case plaintext
    /// The HTTP/2 connection preface in plaintext: h2c with prior knowledge, as gRPC clients without TLS speak.
    case plaintextHTTP2
    /// A TLS record header that announces no usable ClientHello (too large, or not a handshake).
    case malformedTLS

    /// What a ClientHello tells before the handshake.
    public struct ClientHello: Sendable, Hashable {
        /// The `server_name` extension's host name.
        public var serverName: String?
        /// The `application_layer_protocol_negotiation` extension's protocols, in the client's order.
        public var applicationProtocols: [String]

        public init(serverName: String? = nil, applicationProtocols: [String] = []) {
            self.serverName = serverName
            self.applicationProtocols = applicationProtocols
        }
    }

    /// What an HTTP/2 client sends first (RFC 9113 §3.4).
    static let http2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// The largest first record accepted (TLS's own limit for a plaintext record is 16 KiB).
    public static let maximumRecordLength = 16_384

    /// Classifies the bytes received so far.
    public static func classify(_ bytes: some Collection<UInt8>) -> ConnectionStart {
        guard let first = bytes.first else { return .needMoreBytes }
        if first == http2Preface[0] {
            // "PRI * HTTP/2.0…", or an HTTP/1 method starting with P (POST, PUT, PATCH), told apart by what follows.
            let matched = zip(bytes, http2Preface).prefix { $0 == $1 }.count
            if matched == http2Preface.count { return .plaintextHTTP2 }
            return matched == bytes.count ? .needMoreBytes : .plaintext
        }
        // A TLS record: content type 22 (handshake), version 3.x.
        guard first == 0x16 else { return .plaintext }
        let header = Array(bytes.prefix(5))
        if header.count >= 2, header[1] != 0x03 { return .plaintext }
        guard header.count == 5 else { return .needMoreBytes }
        let length = Int(header[3]) << 8 | Int(header[4])
        guard length >= 4, length <= maximumRecordLength else { return .malformedTLS }
        guard bytes.count >= 5 + length else { return .needMoreBytes }
        let record = Array(bytes.dropFirst(5).prefix(length))
        guard let hello = parseClientHello(record) else { return .malformedTLS }
        return .tls(hello)
    }

    /// Reads SNI and ALPN out of a handshake record holding a ClientHello (RFC 8446 §4.1.2); nil when it is not one.
    /// A ClientHello split over several records is still TLS: its extensions are then simply not read.
    static func parseClientHello(_ record: [UInt8]) -> ClientHello? {
        var reader = ByteReader(record)
        guard reader.u8() == 1, let length = reader.u24() else { return nil }  // handshake type: client_hello
        guard length <= reader.remaining else { return ClientHello() }  // continues in the next record
        guard reader.skip(2 + 32),  // legacy_version, random
            let sessionID = reader.u8(), reader.skip(Int(sessionID)),
            let suites = reader.u16(), reader.skip(Int(suites)),
            let compressions = reader.u8(), reader.skip(Int(compressions))
        else { return nil }
        var hello = ClientHello()
        guard let extensionsLength = reader.u16(), var extensions = reader.slice(Int(extensionsLength)) else { return hello }
        while let type = extensions.u16(), let size = extensions.u16(), var body = extensions.slice(Int(size)) {
            switch type {
            case 0:  // server_name: a list of (type, name); type 0 is a host name
                guard let listLength = body.u16(), var list = body.slice(Int(listLength)) else { continue }
                while let nameType = list.u8(), let nameLength = list.u16(), let name = list.bytes(Int(nameLength)) {
                    if nameType == 0, hello.serverName == nil { hello.serverName = String(validating: name, as: UTF8.self) }
                }
            case 16:  // application_layer_protocol_negotiation
                guard let listLength = body.u16(), var list = body.slice(Int(listLength)) else { continue }
                while let protocolLength = list.u8(), let name = list.bytes(Int(protocolLength)) {
                    if let text = String(validating: name, as: UTF8.self) { hello.applicationProtocols.append(text) }
                }
            default:
                continue
            }
        }
        return hello
    }
}

/// Big-endian reading over a byte array, every read bounded.
struct ByteReader {
    private let bytes: [UInt8]
    private var index: Int
    private let end: Int

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        index = 0
        end = bytes.count
    }

    private init(_ bytes: [UInt8], from start: Int, to end: Int) {
        self.bytes = bytes
        index = start
        self.end = end
    }

    var remaining: Int { end - index }

    mutating func u8() -> UInt8? {
        guard index < end else { return nil }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { index += 2 }
        return UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
    }

    mutating func u24() -> Int? {
        guard remaining >= 3 else { return nil }
        defer { index += 3 }
        return Int(bytes[index]) << 16 | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2])
    }

    mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, remaining >= count else { return false }
        index += count
        return true
    }

    mutating func bytes(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, remaining >= count else { return nil }
        defer { index += count }
        return bytes[index..<index + count]
    }

    /// A reader over the next `count` bytes, which this one then skips.
    mutating func slice(_ count: Int) -> ByteReader? {
        guard count >= 0, remaining >= count else { return nil }
        defer { index += count }
        return ByteReader(bytes, from: index, to: index + count)
    }
}
