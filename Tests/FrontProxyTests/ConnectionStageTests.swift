import FrontProxy
import Identity
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

@Suite("Connection stages: first bytes and PeerAuthentication")
struct ConnectionStageTests {
    /// The ClientHello a real TLS client (BoringSSL through swift-nio-ssl) sends.
    static func clientHello(serverName: String?, protocols: [String]) throws -> [UInt8] {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = protocols
        configuration.certificateVerification = .none
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            try NIOSSLClientHandler(context: NIOSSLContext(configuration: configuration), serverHostname: serverName))
        _ = channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        _ = try? channel.finish()
        return bytes
    }

    @Test func plaintextIsKnownFromTheFirstByte() {
        #expect(ConnectionStart.classify(Array("GET / HTTP/1.1\r\n".utf8)) == .plaintext)
        #expect(ConnectionStart.classify(Array("POST / HTTP/1.1\r\n".utf8)) == .plaintext)
        // HTTP/2's preface (h2c with prior knowledge), known once whole; a P alone may still become it.
        #expect(ConnectionStart.classify(Array("P".utf8)) == .needMoreBytes)
        #expect(ConnectionStart.classify(Array("PRI * HTTP/2.0\r\n".utf8)) == .needMoreBytes)
        #expect(ConnectionStart.classify(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0".utf8)) == .plaintextHTTP2)
        #expect(ConnectionStart.classify(Array("PRI * HTTP/1.1\r\n".utf8)) == .plaintext)
        #expect(ConnectionStart.classify([UInt8]()) == .needMoreBytes)
        // 0x16 not followed by a TLS version is not TLS either.
        #expect(ConnectionStart.classify([0x16, 0x41]) == .plaintext)
    }

    @Test func aRealClientHelloIsReadWholeWithItsServerNameAndProtocols() throws {
        let hello = try Self.clientHello(serverName: "details.default.svc.cluster.local", protocols: ["h2", "http/1.1"])
        #expect(hello.count > 100)
        #expect(ConnectionStart.classify(hello) == .tls(.init(
            serverName: "details.default.svc.cluster.local", applicationProtocols: ["h2", "http/1.1"])))
        // Any prefix of it asks for more.
        for cut in [1, 3, 5, hello.count / 2, hello.count - 1] {
            #expect(ConnectionStart.classify(hello.prefix(cut)) == .needMoreBytes)
        }
        let anonymous = try Self.clientHello(serverName: nil, protocols: [])
        #expect(ConnectionStart.classify(anonymous) == .tls(.init()))
    }

    @Test func aRecordThatIsNoClientHelloIsRefused() {
        // A handshake record announcing more than TLS allows.
        #expect(ConnectionStart.classify([0x16, 0x03, 0x01, 0xFF, 0xFF]) == .malformedTLS)
        // A whole record holding another handshake message (type 2, server_hello).
        #expect(ConnectionStart.classify([0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]) == .malformedTLS)
    }

    @Test func peerAuthenticationDecidesWhatAConnectionMayBe() {
        let tls = ConnectionStart.tls(.init())
        #expect(ConnectionAdmission.plan(mode: .strict, start: tls) == .terminateTLS(.required))
        #expect(ConnectionAdmission.plan(mode: .strict, start: .plaintext) == .refuse(.plaintextNotAllowed))
        #expect(ConnectionAdmission.plan(mode: .permissive, start: tls) == .terminateTLS(.optional))
        #expect(ConnectionAdmission.plan(mode: .permissive, start: .plaintext) == .plaintext)
        #expect(ConnectionAdmission.plan(mode: .disable, start: tls) == .refuse(.tlsNotAllowed))
        #expect(ConnectionAdmission.plan(mode: .disable, start: .plaintext) == .plaintext)
        for mode in [MutualTLSMode.strict, .permissive, .disable] {
            #expect(ConnectionAdmission.plan(mode: mode, start: .malformedTLS) == .refuse(.malformedTLS))
        }
    }
}
