import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization
import Testing
import WardenTesting

/// WebSocket through the real `warden proxy`: the upgrade is checked like any request, a 101 from the upstream turns
/// both connections into one byte stream, and a denied upgrade never reaches the upstream. The client and the
/// upstream are swift-nio's WebSocket implementation, the client over mutual TLS as `sleep`.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ProxyWebSocketTests {
    @Test func anUpgradeIsCheckedThenRelayedBothWaysAndLogged() async throws {
        let upstream = try await WebSocketEchoServer.start()
        defer { upstream.stop() }
        let harness = try await ProxyHarness(
            authorization: ProxyHarness.deny(paths: ["/ws/denied"]), upstreamPort: upstream.port)
        defer { harness.stop() }

        let client = try await WebSocketTestClient.connect(harness, path: "/ws/chat?room=1")
        // The upstream's greeting, sent right after its 101, arrives first.
        #expect(try await client.next() == "welcome /ws/chat?room=1")
        try await client.send("hello")
        #expect(try await client.next() == "hello")
        // Larger than every buffer on the way: it crosses the tunnel in pieces, in order.
        let large = String(repeating: "0123456789abcdef", count: 16 << 10)
        try await client.send(large)
        #expect(try await client.next() == large)
        try await client.close()

        // The upstream got the upgrade with the proxy's headers; the client's own XFCC could not reach it.
        let seen = try #require(upstream.requests.first { $0.path == "/ws/chat?room=1" })
        #expect(seen.headers["upgrade"] == "websocket")
        #expect(seen.headers["x-forwarded-client-cert"]?.hasSuffix("URI=\(ProxyHarness.sleepID)") == true)
        #expect(seen.headers["sec-websocket-key"] != nil)

        // One access-log line for the whole tunnel, written when it closed, with the bytes each way.
        let lines = try await harness.accessLog(atLeast: 1)
        let line = try #require(lines.first { ($0["path"] as? String) == "/ws/chat?room=1" })
        #expect(line["status"] as? Int == 101)
        #expect(line["decision"] as? String == "allow")
        #expect(line["peer_principal"] as? String == "cluster.local/ns/default/sa/sleep")
        #expect((line["request_bytes"] as? Int ?? 0) > large.utf8.count)
        #expect((line["response_bytes"] as? Int ?? 0) > large.utf8.count)
    }

    @Test func aDeniedUpgradeNeverReachesTheUpstreamAndARefusedOneIsAnswered() async throws {
        let upstream = try await WebSocketEchoServer.start()
        defer { upstream.stop() }
        let harness = try await ProxyHarness(
            authorization: ProxyHarness.deny(paths: ["/ws/denied"]), upstreamPort: upstream.port)
        defer { harness.stop() }
        let upgrade = [
            "--http1.1", "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
            "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ]

        let denied = try await curlExit(harness.asSleep + upgrade + [harness.detailsURL + "/ws/denied"])
        #expect(denied.status == 403)
        #expect(!upstream.requests.contains { $0.path == "/ws/denied" })

        // The upstream declines to switch and answers as HTTP: the answer is passed on, and the connection closes
        // after it (HTTP/1.1 reads nothing after a request that asked to upgrade).
        let refused = try await curlExit(harness.asSleep + upgrade + [harness.detailsURL + "/ws/refused"])
        #expect(refused.status == 200 && refused.body == "plain")
        #expect(refused.headers.lowercased().contains("connection: close"))
        #expect(upstream.requests.contains { $0.path == "/ws/refused" })
    }

    /// A request asking to upgrade to what the proxy does not tunnel (curl's `h2c` over plaintext) is forwarded as
    /// plain HTTP/1.1 and its connection closed after the answer, so the client's next request goes on a new one
    /// rather than waiting on a connection that reads no more.
    @Test func anUpgradeTheProxyDoesNotTunnelIsAnsweredAndTheClientMovesOn() async throws {
        let harness = try await ProxyHarness()  // no PeerAuthentication: PERMISSIVE, plaintext taken
        defer { harness.stop() }
        let out = try await ProcessRunner.run(
            try tool("curl", package: "curl"),
            ["-sS", "--http2", "--max-time", "10", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} ",
             harness.httpURL + "/first", harness.httpURL + "/second"],
            timeout: .seconds(20))
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "200 200 ")
        let requests = harness.upstreamRequests()
        #expect(requests.compactMap { $0["path"] as? String } == ["/first", "/second"])
        for request in requests {
            let headers = request["headers"] as? [String: Any] ?? [:]
            #expect(headers["upgrade"] == nil && headers["http2-settings"] == nil)
        }
    }
}

/// A WebSocket echo server on 127.0.0.1 (plain HTTP, as the proxy's upstream): it greets each connection with
/// `welcome <path>`, then sends back every text message; `/ws/refused` is not upgraded and gets `200 plain`.
final class WebSocketEchoServer: Sendable {
    struct Request: Sendable {
        var path: String
        var headers: [String: String]
    }

    let port: Int
    private let channel: any Channel
    private let log: RequestLog

    var requests: [Request] { log.requests.withLock { $0 } }

    private init(channel: any Channel, log: RequestLog) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.log = log
    }

    static func start() async throws -> WebSocketEchoServer {
        let log = RequestLog()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: 1 << 20,
                    shouldUpgrade: { channel, head in
                        log.append(head)
                        return channel.eventLoop.makeSucceededFuture(head.uri == "/ws/refused" ? nil : HTTPHeaders())
                    },
                    upgradePipelineHandler: { channel, head in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(EchoFrames(greeting: "welcome " + head.uri))
                        }
                    })
                // Once upgraded, the HTTP answerer leaves: frames are the echo's.
                let upgraded: NIOHTTPServerUpgradeConfiguration = (upgraders: [upgrader], completionHandler: { context in
                    if let plain = try? context.pipeline.syncOperations.handler(type: PlainAnswer.self) {
                        context.pipeline.syncOperations.removeHandler(plain, promise: nil)
                    }
                })
                return channel.pipeline.configureHTTPServerPipeline(withServerUpgrade: upgraded).flatMap {
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(PlainAnswer()) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return WebSocketEchoServer(channel: channel, log: log)
    }

    func stop() { channel.close(promise: nil) }

    /// What the server saw, shared with its connections' handlers.
    final class RequestLog: Sendable {
        let requests = Mutex<[Request]>([])

        func append(_ head: HTTPRequestHead) {
            let headers = Dictionary(head.headers.map { ($0.name.lowercased(), $0.value) }) { first, _ in first }
            requests.withLock { $0.append(Request(path: head.uri, headers: headers)) }
        }
    }

    /// A request that was not upgraded.
    final class PlainAnswer: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": "5"])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "plain")))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// Greets, echoes text messages, answers a close with a close.
    final class EchoFrames: ChannelInboundHandler {
        typealias InboundIn = WebSocketFrame
        typealias OutboundOut = WebSocketFrame

        private let greeting: String
        private var message = ByteBuffer()

        init(greeting: String) {
            self.greeting = greeting
        }

        func handlerAdded(context: ChannelHandlerContext) {
            let frame = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: greeting))
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            switch frame.opcode {
            case .text, .continuation:
                var data = frame.unmaskedData
                message.writeBuffer(&data)
                guard frame.fin else { return }
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: message)), promise: nil)
                message.clear()
            case .connectionClose:
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: ByteBuffer())))
                    .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            default:
                break
            }
        }
    }
}

/// A WebSocket client connected through the proxy as `sleep` (mutual TLS), collecting the text messages it gets.
final class WebSocketTestClient: Sendable {
    private let channel: any Channel
    private let inbox: Inbox
    private let taken = Mutex(0)

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    static func connect(_ harness: ProxyHarness, path: String) async throws -> WebSocketTestClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(harness.sleep.certificateChain).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: harness.sleep.key, format: .pem))
        tls.trustRoots = .file(harness.sleep.rootCertificate)
        let context = try NIOSSLContext(configuration: tls)
        let inbox = Inbox()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                let upgrader = NIOWebSocketClientUpgrader(
                    maxFrameSize: 1 << 20,
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(CollectText(inbox: inbox))
                        }
                    })
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "details"))
                }.flatMap {
                    channel.pipeline.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes,
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                }.flatMap {
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(SendUpgradeRequest(path: path))
                    }
                }
            }
            .connect(host: "127.0.0.1", port: harness.proxy.port).get()
        return WebSocketTestClient(channel: channel, inbox: inbox)
    }

    /// The next text message, waiting up to 20 s.
    func next() async throws -> String {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let message = inbox.messages.withLock { messages in
                taken.withLock { index -> String? in
                    guard index < messages.count else { return nil }
                    index += 1
                    return messages[index - 1]
                }
            }
            if let message { return message }
            try await Task.sleep(for: .milliseconds(20))
        }
        let count = inbox.messages.withLock { $0.count }
        throw WebSocketTestError("no message within 20 s after \(count) (connection active: \(channel.isActive))")
    }

    func send(_ text: String) async throws {
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
        try await channel.writeAndFlush(frame)
    }

    /// Sends a close frame and waits for the connection to close.
    func close() async throws {
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: ByteBuffer())
        try await channel.writeAndFlush(frame)
        try await channel.closeFuture.get()
    }

    final class Inbox: Sendable {
        let messages = Mutex<[String]>([])
    }

    /// Writes the request the upgrader completes with its fields, then leaves.
    final class SendUpgradeRequest: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart

        private let path: String

        init(path: String) {
            self.path = path
        }

        func channelActive(context: ChannelHandlerContext) {
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: ["host": "details"])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            context.fireChannelActive()
        }
    }

    final class CollectText: ChannelInboundHandler {
        typealias InboundIn = WebSocketFrame

        private let inbox: Inbox
        private var message = ByteBuffer()

        init(inbox: Inbox) {
            self.inbox = inbox
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            guard frame.opcode == .text || frame.opcode == .continuation else { return }
            var data = frame.unmaskedData
            message.writeBuffer(&data)
            guard frame.fin else { return }
            let text = String(buffer: message)
            message.clear()
            inbox.messages.withLock { $0.append(text) }
        }
    }
}

struct WebSocketTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A tunnel's half-close, with raw bytes on both sides: the client (plaintext, PERMISSIVE) shuts its sending side,
/// the upstream sees its input end, says goodbye and closes, and the client gets the goodbye and then the close.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ProxyTunnelHalfCloseTests {
    @Test func aHalfCloseCrossesTheTunnelBothWays() async throws {
        let upstream = try await RawUpgradeServer.start()
        defer { upstream.stop() }
        let harness = try await ProxyHarness(upstreamPort: upstream.port)
        defer { harness.stop() }

        let client = try await RawClient.upgraded(port: harness.proxy.port, path: "/raw")
        try await client.send("ping")
        try await client.waitFor { $0.hasSuffix("\r\n\r\nping") }
        try await client.shutDownOutput()
        // The upstream saw its input end (the proxy passed the half-close on), answered and closed.
        try await client.waitFor { $0.hasSuffix("pingbye") }
        try await client.waitForClose()
        #expect(upstream.sawInputEnd)
    }
}

/// A tunnel whose upstream stops reading: the proxy stops reading from the client instead of holding what it sends,
/// and passes everything on once the upstream reads again.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ProxyTunnelBackpressureTests {
    @Test func aStalledUpstreamStopsTheClientNotTheProxysMemory() async throws {
        let upstream = try await StalledUpgradeServer.start()
        defer { upstream.stop() }
        let harness = try await ProxyHarness(upstreamPort: upstream.port)
        defer { harness.stop() }
        let pid = harness.proxy.launched.processIdentifier

        let client = try await RawClient.upgraded(port: harness.proxy.port, path: "/stalled")
        let before = try #require(memoryKilobytes(of: pid, "VmRSS"))

        // 128 MiB, each 64 KiB chunk written once the one before it left: the client stalls when nothing takes more.
        let total = 128 << 20, chunk = ByteBuffer(repeating: 0x61, count: 64 << 10)
        let sent = Atomic<Int>(0)
        let writer = Task {
            while sent.load(ordering: .relaxed) < total {
                try await client.write(chunk)
                sent.add(chunk.readableBytes, ordering: .relaxed)
            }
        }
        defer { writer.cancel() }
        // Stalled: nothing more sent for a second (the socket buffers on the way hold some megabytes).
        var last = -1, still = 0
        let stallDeadline = ContinuousClock.now + .seconds(60)
        while still < 5, ContinuousClock.now < stallDeadline {
            try await Task.sleep(for: .milliseconds(200))
            let now = sent.load(ordering: .relaxed)
            still = now == last ? still + 1 : 0
            last = now
            if now >= total { break }
        }
        let during = try #require(memoryKilobytes(of: pid, "VmRSS"))
        print("tunnel: the client stalled after \(last) bytes; proxy RSS \(before) kB before, \(during) kB stalled")
        #expect(last < total / 2, "the client sent \(last) bytes to an upstream that reads nothing")
        #expect(during - before < 16 << 10, "the proxy grew from \(before) kB to \(during) kB while the upstream read nothing")

        // The upstream reads again: every byte arrives, in order of the client's writes.
        upstream.resume()
        try await writer.value
        let deadline = ContinuousClock.now + .seconds(60)
        while upstream.received < total, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(upstream.received == total)
    }
}

/// An upstream that answers its first request with a 101, then reads nothing until `resume`, then counts the bytes.
final class StalledUpgradeServer: Sendable {
    let port: Int
    private let channel: any Channel
    private let state: State

    private init(channel: any Channel, state: State) {
        self.channel = channel
        self.state = state
        self.port = channel.localAddress?.port ?? 0
    }

    var received: Int { state.received.load(ordering: .relaxed) }

    static func start() async throws -> StalledUpgradeServer {
        let state = State()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SwitchingHandler(
                        switched: { context in
                            // Nothing more is read until `resume`.
                            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
                            state.tunnel.withLock { $0 = context.channel }
                        },
                        relay: { _, bytes in state.received.add(bytes.readableBytes, ordering: .relaxed) }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return StalledUpgradeServer(channel: channel, state: state)
    }

    func resume() {
        guard let tunnel = state.tunnel.withLock({ $0 }) else { return }
        tunnel.setOption(ChannelOptions.autoRead, value: true).whenSuccess { tunnel.read() }
    }

    func stop() { channel.close(promise: nil) }

    final class State: Sendable {
        let received = Atomic<Int>(0)
        let tunnel = Mutex<(any Channel)?>(nil)
    }
}

/// An upstream that answers any request with a 101, then echoes bytes; when its input ends it sends `bye` and closes.
final class RawUpgradeServer: Sendable {
    let port: Int
    private let channel: any Channel
    private let ended = Mutex(false)

    var sawInputEnd: Bool { ended.withLock { $0 } }

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    static func start() async throws -> RawUpgradeServer {
        let box = Box()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SwitchingHandler(
                        relay: { context, bytes in context.writeAndFlush(NIOAny(bytes), promise: nil) },
                        inputEnded: { context in
                            box.server.withLock { $0 }?.noteInputEnd()
                            context.writeAndFlush(NIOAny(ByteBuffer(string: "bye"))).assumeIsolated().whenComplete { _ in
                                context.close(promise: nil)
                            }
                        }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = RawUpgradeServer(channel: channel)
        box.server.withLock { $0 = server }
        return server
    }

    func stop() { channel.close(promise: nil) }

    fileprivate func noteInputEnd() { ended.withLock { $0 = true } }

    final class Box: Sendable {
        let server = Mutex<RawUpgradeServer?>(nil)
    }
}

/// A test upstream's connection: the first request head is answered with a 101, and every byte after it (those that
/// came with the head included) goes to `relay`.
final class SwitchingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let switched: (ChannelHandlerContext) -> Void
    private let relay: (ChannelHandlerContext, ByteBuffer) -> Void
    private let inputEnded: (ChannelHandlerContext) -> Void
    private var head = ""
    private var upgraded = false

    init(
        switched: @escaping (ChannelHandlerContext) -> Void = { _ in },
        relay: @escaping (ChannelHandlerContext, ByteBuffer) -> Void,
        inputEnded: @escaping (ChannelHandlerContext) -> Void = { _ in }
    ) {
        self.switched = switched
        self.relay = relay
        self.inputEnded = inputEnded
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !upgraded else { return relay(context, bytes) }
        head += bytes.readString(length: bytes.readableBytes) ?? ""
        guard let end = head.range(of: "\r\n\r\n") else { return }
        upgraded = true
        switched(context)
        context.write(wrapOutboundOut(ByteBuffer(string:
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")), promise: nil)
        let rest = String(head[end.upperBound...])
        if !rest.isEmpty { relay(context, ByteBuffer(string: rest)) }
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed? = event as? ChannelEvent else { return }
        inputEnded(context)
    }
}

/// A plaintext TCP client that keeps everything it reads as text.
final class RawClient: Sendable {
    private let channel: any Channel
    private let received: Received

    private init(channel: any Channel, received: Received) {
        self.channel = channel
        self.received = received
    }

    static func connect(port: Int) async throws -> RawClient {
        let received = Received()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collect(received: received)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawClient(channel: channel, received: received)
    }

    /// Connected to `port`, with `path` upgraded to a WebSocket (the 101 read).
    static func upgraded(port: Int, path: String) async throws -> RawClient {
        let client = try await connect(port: port)
        try await client.send(
            "GET \(path) HTTP/1.1\r\nHost: details\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        try await client.waitFor { $0.hasPrefix("HTTP/1.1 101") && $0.hasSuffix("\r\n\r\n") }
        return client
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Completes once `bytes` have left for the socket.
    func write(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes)
    }

    func shutDownOutput() async throws {
        try await channel.close(mode: .output)
    }

    /// Waits up to 20 s for what was read to satisfy `condition`.
    func waitFor(_ condition: (String) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if condition(received.text.withLock { $0 }) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw WebSocketTestError("not read within 20 s; read: \(received.text.withLock { $0 })")
    }

    func waitForClose() async throws {
        try await channel.closeFuture.get()
    }

    final class Received: Sendable {
        let text = Mutex("")
    }

    final class Collect: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private let received: Received

        init(received: Received) {
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            let text = bytes.readString(length: bytes.readableBytes) ?? ""
            received.text.withLock { $0 += text }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // The other side ended: nothing more comes, so the connection is done.
            if case ChannelEvent.inputClosed? = event as? ChannelEvent { context.close(promise: nil) }
        }
    }
}
