import Foundation
import Testing
import WardenTesting

/// Raw bytes over TCP, for requests no well-behaved client sends. Blocking socket calls run on a thread of their
/// own, never on Swift's cooperative threads.
struct RawConnection {
    struct Exchange {
        var response: String
        /// The proxy closed the connection (rather than the read timing out).
        var closed: Bool
        var connected: Bool
    }

    /// Connects to 127.0.0.1:`port`, sends each of `parts` (pausing `pause` between them), closes its sending side
    /// when `halfClose`, then reads until the peer closes or `readTimeout` passes.
    static func exchange(
        port: Int, _ parts: [String], pause: Duration = .zero, halfClose: Bool = false, readTimeout: Duration = .seconds(5)
    ) async -> Exchange {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: run(port: port, parts, pause: pause, halfClose: halfClose, readTimeout: readTimeout))
            }
        }
    }

    private static func run(port: Int, _ parts: [String], pause: Duration, halfClose: Bool, readTimeout: Duration) -> Exchange {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return Exchange(response: "", closed: false, connected: false) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return Exchange(response: "", closed: false, connected: false) }
        var timeout = timeval(tv_sec: Int(readTimeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        for (index, part) in parts.enumerated() {
            if index > 0, pause > .zero { Thread.sleep(forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18) }
            let bytes = Array(part.utf8)
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        if halfClose { shutdown(fd, Int32(SHUT_WR)) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += buffer[0..<count]
            } else {
                return Exchange(response: String(decoding: received, as: UTF8.self), closed: count == 0 || errno == ECONNRESET, connected: true)
            }
        }
    }
}

/// Hostile input against the proxy: oversized heads, request smuggling, slow heads, oversized bodies, a flood of
/// connections. Each is refused without hurting other connections, and nothing crashes the process.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ProxyHostileInputTests {
    @Test func everyHostileRequestIsRefusedAndTheProxyKeepsServing() async throws {
        let harness = try await ProxyHarness(proxyArguments: [
            "--header-timeout", "1s", "--idle-timeout", "2s", "--max-request-body", "1000", "--max-connections", "20",
        ])
        defer { harness.stop() }
        let port = harness.proxy.port
        // A connection that stays open and healthy through everything below.
        async let bystander = curlExit(["--rate", "60/m", harness.httpURL + "/bystander/1", harness.httpURL + "/bystander/2",
                                        harness.httpURL + "/bystander/3"])

        // Headers over 60 KiB: 431.
        let large = try await curlExit(["-H", "x-large: " + String(repeating: "a", count: 70_000), harness.httpURL + "/large"])
        #expect(large.status == 431)
        // HTTP/2 takes header lists up to the same bound on a connection's first request, though the client sends it
        // before acknowledging the bound (over TLS by ALPN, and h2c); beyond the bound the connection ends.
        let header = ["-H", "x-large: " + String(repeating: "a", count: 40_000)]
        let h2 = try await curlExit(harness.asSleep + ["--http2"] + header + [harness.detailsURL + "/large-h2"])
        #expect(h2.status == 200, "\(h2)")
        let h2c = try await curlExit(["--http2-prior-knowledge"] + header + [harness.httpURL + "/large-h2c"])
        #expect(h2c.status == 200, "\(h2c)")
        let h2Over = try await curlExit(
            ["--http2-prior-knowledge", "-H", "x-large: " + String(repeating: "a", count: 70_000), harness.httpURL + "/large"])
        #expect(h2Over.status != 200 && h2Over.exitStatus != 0)

        let smuggling = [
            "POST /s HTTP/1.1\r\nHost: d\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /s HTTP/1.1\r\nHost: d\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd",
            "GET /s HTTP/1.1\r\nHost: d\r\nX-Folded: a\r\n b\r\n\r\n",
            "POST /s HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip\r\n\r\n",
            "GET /s HTTP/1.1\r\n\r\n",
        ]
        for request in smuggling {
            let answer = await RawConnection.exchange(port: port, [request])
            #expect(answer.response.hasPrefix("HTTP/1.1 400"), "\(request.debugDescription) → \(answer.response)")
            #expect(answer.closed, "the connection stayed open after \(request.debugDescription)")
        }

        // A head that trickles in: 408 and closed after the header timeout.
        let slow = await RawConnection.exchange(port: port, ["GET /slow HTTP/1.1\r\n", "Host: d\r\n"], pause: .milliseconds(1500))
        #expect(slow.response.hasPrefix("HTTP/1.1 408"), "\(slow.response)")

        // A body over the limit: 413, declared or streamed.
        let declared = try await curlExit(["--data-binary", String(repeating: "b", count: 2000), harness.httpURL + "/big"])
        #expect(declared.status == 413)
        let streamed = try await curlExit([
            "-H", "transfer-encoding: chunked", "--data-binary", String(repeating: "b", count: 2000), harness.httpURL + "/big",
        ])
        #expect(streamed.status == 413 || streamed.exitStatus != 0)

        // More connections than allowed: the extra ones are closed at once, the others keep working.
        let held = try await withThrowingTaskGroup(of: RawConnection.Exchange.self) { group in
            for _ in 0..<25 {
                group.addTask { await RawConnection.exchange(port: port, [], readTimeout: .seconds(1)) }
            }
            var all: [RawConnection.Exchange] = []
            for try await exchange in group { all.append(exchange) }
            return all
        }
        #expect(held.contains { $0.closed && $0.response.isEmpty })

        // An idle keep-alive connection is closed after the idle timeout.
        let idle = await RawConnection.exchange(port: port, ["GET /idle HTTP/1.1\r\nHost: d\r\n\r\n"], readTimeout: .seconds(5))
        #expect(idle.response.hasPrefix("HTTP/1.1 200"))
        #expect(idle.closed, "an idle connection stayed open")

        let after = try await curlExit([harness.httpURL + "/after"])
        #expect(after.status == 200)
        let kept = try await bystander
        #expect(kept.exitStatus == 0)
        let paths = harness.upstreamRequests().compactMap { $0["path"] as? String }
        #expect(paths.filter { $0.hasPrefix("/bystander") }.count == 3)
        #expect(paths.contains("/large-h2") && paths.contains("/large-h2c"))
        #expect(paths.contains("/idle"))
        #expect(!paths.contains("/s") && !paths.contains("/slow") && !paths.contains("/big") && !paths.contains("/large"))
        #expect(harness.proxy.launched.isRunning)
    }

    /// Requests a client sends without waiting for the answers (HTTP/1.1 pipelining) are answered one at a time,
    /// in order; a malformed one among them is answered 400 after the ones before it, and the connection closes.
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let harness = try await ProxyHarness()
        defer { harness.stop() }
        let port = harness.proxy.port
        let head = { (path: String) in "GET \(path) HTTP/1.1\r\nHost: d\r\n\r\n" }
        let three = await RawConnection.exchange(
            port: port, [head("/p1") + head("/p2") + "GET /p3 HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"])
        #expect(three.response.components(separatedBy: "HTTP/1.1 200").count - 1 == 3, "\(three.response)")
        #expect(three.closed)
        #expect(harness.upstreamRequests().compactMap { $0["path"] as? String } == ["/p1", "/p2", "/p3"])

        let malformed = await RawConnection.exchange(port: port, [head("/q1") + "GET /q2 HTTP/1.1\r\nX-Folded: a\r\n b\r\n\r\n" + head("/q3")])
        // Each status line, in order (a response's body runs straight into the next response).
        let statuses = malformed.response.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        #expect(statuses == ["200", "400"], "\(malformed.response)")
        #expect(malformed.closed)
        #expect(!harness.upstreamRequests().contains { ["/q2", "/q3"].contains($0["path"] as? String) })
    }

    /// A client that sends its requests and then closes its sending side (BusyBox's wget, `nc`) gets every answer,
    /// the last with `connection: close`, and then the close; a request cut short by the close is not forwarded.
    @Test func aHalfClosedClientGetsItsAnswers() async throws {
        let harness = try await ProxyHarness()
        defer { harness.stop() }
        let port = harness.proxy.port
        let head = { (path: String) in "GET \(path) HTTP/1.1\r\nHost: d\r\n\r\n" }
        let one = await RawConnection.exchange(port: port, [head("/h1")], halfClose: true)
        #expect(one.response.hasPrefix("HTTP/1.1 200"), "\(one.response)")
        #expect(one.closed)
        let two = await RawConnection.exchange(port: port, [head("/h2") + head("/h3")], halfClose: true)
        let statuses = two.response.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        #expect(statuses == ["200", "200"], "\(two.response)")
        #expect(two.response.lowercased().components(separatedBy: "connection: close").count == 2)
        #expect(two.closed)
        let cut = await RawConnection.exchange(
            port: port, ["POST /cut HTTP/1.1\r\nHost: d\r\nContent-Length: 10\r\n\r\nabc"], halfClose: true)
        #expect(cut.closed)
        #expect(harness.upstreamRequests().compactMap { $0["path"] as? String } == ["/h1", "/h2", "/h3"])
    }

    @Test(arguments: [false, true])
    func drainingFinishesTheRequestsInFlight(http2: Bool) async throws {
        let harness = try await ProxyHarness(upstreamArguments: ["--delay", "1s"])
        defer { harness.stop() }
        let ready = try await curlExit(["http://127.0.0.1:\(harness.proxy.adminPort!)/ready"])
        #expect(ready.status == 200)
        // An idle keep-alive connection beside it (answered, then quiet) is closed by the drain, not left to its
        // idle timeout.
        async let idle = RawConnection.exchange(
            port: harness.proxy.port, ["GET /idle HTTP/1.1\r\nHost: d\r\n\r\n"], readTimeout: .seconds(20))
        try await waitUntil { harness.upstreamRequests().contains { $0["path"] as? String == "/idle" } }
        try await Task.sleep(for: .milliseconds(1500))
        async let inFlight = curlExit(http2 ? harness.asSleep + ["--http2", harness.detailsURL + "/slow"] : [harness.httpURL + "/slow"])
        // In flight once the upstream has it (it records a request before its delay): a fixed pause could signal
        // before a slow machine's curl had even connected.
        try await waitUntil { harness.upstreamRequests().contains { $0["path"] as? String == "/slow" } }
        harness.proxy.launched.signal(SIGTERM)
        let finished = try await inFlight
        #expect(finished.status == 200)
        let drainedIdle = await idle
        #expect(drainedIdle.response.hasPrefix("HTTP/1.1 200") && drainedIdle.closed)
        let status = harness.proxy.launched.stop()
        #expect(status == 0)
    }
}
