@testable import FrontProxy
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing

/// A first request whose header list is over swift-nio-http2's 16 KiB default, sent before the client has
/// acknowledged the server's larger bound (as curl and Envoy send it), reaches the server's HTTP/2 handler whole.
@Suite struct SettingsAcknowledgementGateTests {
    static let bound = 60 << 10
    static let acknowledgement: [UInt8] = [0, 0, 0, 0x4, 0x1, 0, 0, 0, 0]

    /// A client's first flight: its preface and SETTINGS, then one request per header value, each header block
    /// in frames of at most 16 KiB (HEADERS, then CONTINUATION). NIO's own client cannot send a block over one frame.
    static func clientFlight(values: [Int]) throws -> [UInt8] {
        func frame(_ type: UInt8, _ flags: UInt8, _ stream: Int, _ payload: ByteBufferView) -> [UInt8] {
            let length = payload.count
            return [UInt8(length >> 16), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags]
                + [UInt8(stream >> 24), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)]
                + Array(payload)
        }
        var bytes = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + frame(0x4, 0, 0, ByteBuffer().readableBytesView)
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        for (index, size) in values.enumerated() {
            var block = ByteBuffer()
            try encoder.encode(
                headers: [":method": "GET", ":scheme": "http", ":path": "/", ":authority": "a", "x-big": String(repeating: "a", count: size)],
                to: &block)
            let pieces = stride(from: 0, to: block.readableBytes, by: 16_384).map {
                block.getSlice(at: $0, length: min(16_384, block.readableBytes - $0))!
            }
            for (number, piece) in pieces.enumerated() {
                let endHeaders: UInt8 = number == pieces.count - 1 ? 0x4 : 0
                bytes += number == 0
                    ? frame(0x1, endHeaders | 0x1, 2 * index + 1, piece.readableBytesView)
                    : frame(0x9, endHeaders, 2 * index + 1, piece.readableBytesView)
            }
        }
        return bytes
    }

    /// The server side: (the gate,) NIO's HTTP/2 handler with the proxy's bound.
    static func server(gate: Bool, holding: TimeAmount = .seconds(1)) throws -> EmbeddedChannel {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [HTTP2Setting(parameter: .maxHeaderListSize, value: bound)]
        let server = EmbeddedChannel()
        if gate {
            try server.pipeline.syncOperations.addHandler(
                SettingsAcknowledgementGate(maximumHeldBytes: 2 * bound + 65_536, maximumHoldingTime: holding))
        }
        try server.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server, connectionConfiguration: configuration))
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return server
    }

    /// The `x-big` sizes of the requests that reached the server's HTTP/2 handler since last asked.
    static func arrived(_ server: EmbeddedChannel) throws -> [Int] {
        var sizes: [Int] = []
        while let frame = try server.readInbound(as: HTTP2Frame.self) {
            if case .headers(let headers) = frame.payload { sizes.append(headers.headers.first(name: "x-big")?.count ?? 0) }
        }
        return sizes
    }

    /// The requests that arrived after `chunks`, or the error that ended the connection.
    static func serve(_ chunks: [[UInt8]], gate: Bool) throws -> Result<[Int], any Error> {
        let server = try Self.server(gate: gate)
        defer { _ = try? server.finish() }
        var sizes: [Int] = []
        do {
            for chunk in chunks {
                try server.writeInbound(ByteBuffer(bytes: chunk))
                sizes += try arrived(server)
            }
        } catch {
            return .failure(error)
        }
        return .success(sizes)
    }

    @Test func aLargeFirstRequestWaitsForTheAcknowledgementAndPasses() throws {
        let flight = try Self.clientFlight(values: [40_000, 100])
        // Without the gate the default bound ends the connection.
        guard case .failure = try Self.serve([flight, Self.acknowledgement], gate: false) else {
            Issue.record("the decoder took 40,000 bytes before the acknowledgement: the gate is no longer needed")
            return
        }
        #expect(try Self.serve([flight, Self.acknowledgement], gate: true).get() == [40_000, 100])
        // Any split of the bytes: frame headers and the preface cut anywhere.
        let all = flight + Self.acknowledgement
        for size in [1, 5, 9, 23, 1000, 16_393] {
            let chunks = stride(from: 0, to: all.count, by: size).map { Array(all[$0..<min($0 + size, all.count)]) }
            #expect(try Self.serve(chunks, gate: true).get() == [40_000, 100], "chunks of \(size)")
        }
    }

    @Test func smallRequestsPassAtOnceAndTheGateLeavesAtTheAcknowledgement() throws {
        let server = try Self.server(gate: true)
        defer { _ = try? server.finish() }
        try server.writeInbound(ByteBuffer(bytes: try Self.clientFlight(values: [100, 200])))
        #expect(try Self.arrived(server) == [100, 200], "nothing waits for the acknowledgement")
        #expect(throws: Never.self) { try server.pipeline.syncOperations.handler(type: SettingsAcknowledgementGate.self) }
        try server.writeInbound(ByteBuffer(bytes: Self.acknowledgement))
        #expect(throws: (any Error).self) { try server.pipeline.syncOperations.handler(type: SettingsAcknowledgementGate.self) }
    }

    @Test func heldBytesBeyondTheBoundGoOnAsTheyAre() throws {
        let flight = try Self.clientFlight(values: [40_000])
        let server = try Self.server(gate: false)
        defer { _ = try? server.finish() }
        try server.pipeline.syncOperations.addHandler(SettingsAcknowledgementGate(maximumHeldBytes: 10_000), position: .first)
        // Released at once, so the default bound ends the connection.
        #expect(throws: (any Error).self) {
            try server.writeInbound(ByteBuffer(bytes: flight))
            try server.throwIfErrorCaught()
        }
    }

    @Test func aClientThatNeverAcknowledgesGetsTheDefaultAfterTheHoldingTime() throws {
        let server = try Self.server(gate: true, holding: .seconds(1))
        defer { _ = try? server.finish() }
        try server.writeInbound(ByteBuffer(bytes: try Self.clientFlight(values: [40_000])))
        #expect(try Self.arrived(server).isEmpty, "held")
        // Released when the time is up: the decoder's default then ends the connection, as without the gate.
        server.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(throws: (any Error).self) { try server.throwIfErrorCaught() }
    }
}
