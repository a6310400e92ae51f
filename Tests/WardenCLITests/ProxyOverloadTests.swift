import Foundation
import Synchronization
import Testing
import WardenTesting

/// A TCP relay on 127.0.0.1 whose answers (server to client) can be held: the server reads, decides and answers at
/// once, and the answers reach the client only when released — a server that is slow as its client sees it, with
/// every request already taken. Blocking socket calls run on threads of their own.
final class HoldingRelay: Sendable {
    let port: Int
    private let listener: Int32
    private let holding = Atomic(false)
    private let closed = Atomic(false)

    init(to target: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.address(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            close(listener)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            while !closed.load(ordering: .relaxed) {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var target = Self.address(port: target)
                let connected = withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                guard connected == 0 else {
                    close(client)
                    close(server)
                    continue
                }
                Thread.detachNewThread { self.pump(from: client, to: server, holdable: false) }
                Thread.detachNewThread { self.pump(from: server, to: client, holdable: true) }
            }
        }
    }

    /// Answers wait in the relay from now on.
    func hold() { holding.store(true, ordering: .relaxed) }

    /// Answers held, and those to come, go through.
    func release() { holding.store(false, ordering: .relaxed) }

    /// `release()` after `delay`, timed on a thread of its own: a test task stalled beside the other suites cannot
    /// hold answers past their deadline.
    func release(after delay: TimeInterval) {
        Thread.detachNewThread { [self] in
            Thread.sleep(forTimeInterval: delay)
            release()
        }
    }

    func stop() {
        closed.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func pump(from source: Int32, to destination: Int32, holdable: Bool) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        defer {
            shutdown(destination, Int32(SHUT_RDWR))
            close(source)
        }
        while !closed.load(ordering: .relaxed) {
            let count = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            // Bytes read while holding wait here until released.
            while holdable, holding.load(ordering: .relaxed), !closed.load(ordering: .relaxed) {
                Thread.sleep(forTimeInterval: 0.005)
            }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes { send(destination, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { return }
                sent += written
            }
        }
    }

    private static func address(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return address
    }
}

/// Many checks at once against a slow authorization server: the ones whose deadline passes fail closed, and only
/// they — the others, on the same HTTP/2 connection, are answered and forwarded.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ProxyOverloadTests {
    /// `count` requests at once over one HTTP/2 connection (curl's parallel transfers), as `sleep`; their statuses.
    static func concurrently(
        _ harness: ProxyHarness, _ prefix: String, count: Int, parallel: Int? = nil
    ) async throws -> [Int: Int] {
        var config = ""
        for index in 0..<count {
            config += "url = \"\(harness.detailsURL)/\(prefix)/\(index)\"\noutput = /dev/null\n"
        }
        let file = try harness.directory.write("\(prefix).curl", config)
        let out = try await ProcessRunner.run(
            try tool("curl", package: "curl"),
            harness.asSleep + ["--http2", "-sS", "-Z", "--parallel-max", "\(parallel ?? count)", "-w", "%{http_code}\n",
                               "--max-time", "20", "-K", file],
            timeout: .seconds(30))
        var statuses: [Int: Int] = [:]
        for line in out.stdout.split(separator: "\n") { statuses[Int(line) ?? 0, default: 0] += 1 }
        return statuses
    }

    @Test func lateAnswersFailOnlyTheirOwnChecks() async throws {
        let harness = try await ProxyHarness(authentication: ProxyHarness.peerAuthentication("STRICT"))
        defer { harness.stop() }
        let relay = try HoldingRelay(to: harness.server!.grpcPort)
        defer { relay.stop() }
        try await harness.restartProxy(["--authz", "127.0.0.1:\(relay.port)", "--check-timeout", "2s"])
        #expect(try await curlExit(harness.asSleep + [harness.detailsURL + "/first"]).status == 200)

        // 64 checks whose answers come after their deadline: each fails closed.
        relay.hold()
        let late = try await Self.concurrently(harness, "late", count: 64)
        #expect(late == [403: 64])
        // 64 more while the late answers are still held; the server's answers are released 300 ms later, late ones
        // first, and every one of these is in time.
        relay.release(after: 0.3)
        #expect(try await Self.concurrently(harness, "in-time", count: 64) == [200: 64])

        let paths = harness.upstreamRequests().compactMap { $0["path"] as? String }
        #expect(paths.filter { $0.hasPrefix("/in-time/") }.count == 64)
        #expect(!paths.contains { $0.hasPrefix("/late/") })
        let metrics = try await curlExit(["http://127.0.0.1:\(harness.proxy.adminPort!)/metrics"])
        #expect(metrics.body.contains(#"warden_proxy_check_failures_total{kind="timeout"} 64"#), "\(metrics.body)")
        #expect(metrics.body.contains(#"warden_proxy_check_failures_total{kind="unavailable"} 0"#), "\(metrics.body)")
        // The connection to the server stayed up: more checks pass at once.
        #expect(try await Self.concurrently(harness, "after", count: 16) == [200: 16])
    }

    /// A check the server answered leaves its stream to the server's END_STREAM: a reset per call would have the
    /// server take the proxy for an attacker and drop the connection every 200 checks (GOAWAY ENHANCE_YOUR_CALM),
    /// failing the checks in flight on it.
    @Test func hundredsOfChecksOnOneConnectionAllPass() async throws {
        let harness = try await ProxyHarness(authentication: ProxyHarness.peerAuthentication("STRICT"))
        defer { harness.stop() }
        let statuses = try await Self.concurrently(harness, "many", count: 600, parallel: 4)
        // No check failed closed, and curl's own connection to the proxy lasted: it reads each response's end with
        // its last bytes (`EndStreamCoalescer`), so it resets no stream the proxy already answered, and the proxy's
        // HTTP/2 has no reason to end the connection with ENHANCE_YOUR_CALM (curl's status 0).
        #expect(statuses == [200: 600], "\(statuses)")
        let metrics = try await curlExit(["http://127.0.0.1:\(harness.proxy.adminPort!)/metrics"])
        #expect(metrics.body.contains(#"warden_proxy_check_failures_total{kind="unavailable"} 0"#), "\(metrics.body)")
    }
}
