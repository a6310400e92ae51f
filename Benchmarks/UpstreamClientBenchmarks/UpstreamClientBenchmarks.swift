import AsyncHTTPClient
import Foundation
import Benchmark
import NIOCore
import NIOHTTP1
import NIOPosix

// The choice of `warden proxy`'s upstream client, measured: one keep-alive GET after another to the same local
// server (nginx answering `return 200`, started by `proxy-load.sh`; UPSTREAM_PORT, default 18080), through
// async-http-client's connection pool, and through a plain NIO channel with the HTTP/1.1 client handlers — the
// pipeline of the proxy's own `UpstreamPool`. Both are driven through their EventLoopFuture API, as the proxy drives
// its pool from the event loop; each iteration is one request and its whole response.
//
//   cd Benchmarks && UPSTREAM_PORT=18080 swift package benchmark --target UpstreamClientBenchmarks

let port = Int(ProcessInfo.processInfo.environment["UPSTREAM_PORT"] ?? "") ?? 18080

/// Completes one promise per response, on the channel's event loop.
final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    var pending: EventLoopPromise<Int>?
    var bytes = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: bytes = 0
        case .body(let chunk): bytes += chunk.readableBytes
        case .end:
            let promise = pending
            pending = nil
            promise?.succeed(bytes)
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], maxDuration: .seconds(5), maxIterations: 100_000)

    Benchmark("async-http-client: keep-alive GET") { benchmark in
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let request = try HTTPClient.Request(url: "http://127.0.0.1:\(port)/bench", method: .GET)
        _ = try await client.execute(request: request).get()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let response = try await client.execute(request: request).get()
            blackHole(response.body?.readableBytes)
        }
        benchmark.stopMeasurement()
        try await client.shutdown()
    }

    Benchmark("NIO channel with HTTP/1.1 client handlers (the proxy's pool): keep-alive GET") { benchmark in
        let collector = ResponseCollector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/bench", headers: ["host": "127.0.0.1:\(port)"])
        @Sendable func roundTrip() -> EventLoopFuture<Int> {
            channel.eventLoop.flatSubmit {
                let promise = channel.eventLoop.makePromise(of: Int.self)
                collector.pending = promise
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                return promise.futureResult
            }
        }
        _ = try await roundTrip().get()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await roundTrip().get())
        }
        benchmark.stopMeasurement()
        try await channel.close()
    }
}
