import Foundation
import NIOCore
import NIOPosix
import Networking
import Synchronization
import WardenTesting

/// A self-signed certificate for 127.0.0.1 made with openssl, written as PEM files.
struct TestCertificate {
    let certificate: String
    let key: String

    init(in directory: TemporaryDirectory, name: String) async throws {
        certificate = directory.path + "/\(name).pem"
        key = directory.path + "/\(name)-key.pem"
        let result = try await ProcessRunner.run("/usr/bin/env", [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=\(name)", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", key, "-out", certificate,
        ])
        guard result.status == 0 else { throw TestFailure(message: "openssl: \(result.stderr)") }
    }

    /// Copies this certificate and key over `other`'s files, each by rename (a rotation).
    func install(over other: TestCertificate) throws {
        for (from, to) in [(certificate, other.certificate), (key, other.key)] {
            let temporary = to + ".new"
            try? FileManager.default.removeItem(atPath: temporary)
            try FileManager.default.copyItem(atPath: from, toPath: temporary)
            guard rename(temporary, to) == 0 else { throw TestFailure(message: "cannot rename onto \(to)") }
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// curl against a local server: the HTTP status, or nil when the connection or handshake failed.
func curlStatus(_ url: String, arguments: [String] = [], maxTime: Int = 5) async throws -> Int? {
    let result = try await ProcessRunner.run(
        "/usr/bin/env", ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", String(maxTime)] + arguments + [url],
        timeout: .seconds(maxTime + 10))
    guard result.status == 0 else { return nil }
    return Int(result.stdout)
}

/// Opens a plain TCP connection to 127.0.0.1:`port`; the returned channel closes when the server closes it.
func openConnection(port: Int) async throws -> any Channel {
    try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
}

/// Writes `send` on a new connection to 127.0.0.1 and returns everything read until the server closes it.
func exchange(port: Int, send: String) async throws -> String {
    let (channel, received) = try await collectingConnection(port: port)
    try await channel.writeAndFlush(ByteBuffer(string: send))
    try await channel.closeFuture.get()
    return received()
}

/// A connection to 127.0.0.1:`port` and what it has read so far, as text.
func collectingConnection(port: Int) async throws -> (any Channel, received: @Sendable () -> String) {
    let received = Mutex<[UInt8]>([])
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteCollector { bytes in received.withLock { $0 += bytes } })
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    return (channel, { String(decoding: received.withLock { $0 }, as: UTF8.self) })
}

/// Hands every byte read to `collect`.
final class ByteCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let collect: @Sendable ([UInt8]) -> Void
    init(_ collect: @escaping @Sendable ([UInt8]) -> Void) { self.collect = collect }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        collect(Array(unwrapInboundIn(data).readableBytesView))
    }
}
