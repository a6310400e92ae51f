import Foundation
import PolicyCore
import Synchronization
import Testing
import WardenTesting

/// The checks a concurrent task has made so far.
final class SeenChecks: Sendable {
    private let checks = Mutex<[BundleCheck]>([])

    func append(_ check: BundleCheck) { checks.withLock { $0.append(check) } }
    func count(revision: String) -> Int { checks.withLock { $0.count { $0.revision == revision } } }
    var all: [BundleCheck] { checks.withLock { $0 } }
}

/// Many replicas, one policy source: nginx serves a bundle directory, three `warden serve --bundle` replicas poll
/// it, and decision logs go to test services. Every process runs on 127.0.0.1; every wait is bounded.
@Suite(.serialized) struct BundleServeTests {
    static let maxDelay: Duration = .seconds(2)

    /// A status timestamp (`2026-12-06T15:25:06.123Z`) as a date.
    static func date(fromTimestamp text: String) -> Date? {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return format.date(from: text)
    }

    /// Waits (bounded) until `condition` holds; returns whether it did.
    static func eventually(within limit: Duration, _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return await condition()
    }

    @Test func replicasFollowTheBundleRefuseBadOnesAndSurviveTheSource() async throws {
        let fixture = try await BundleFixture()
        let dir = fixture.dir.path
        try await fixture.publish("r1")
        let port = try FreePort.allocate()
        var nginx: LaunchedProcess? = try await startNginx(root: dir + "/www", prefix: dir + "/nginx", port: port)
        let (fast, fastPort) = try await startReceiver(output: dir + "/uploads.jsonl")
        let (slow, slowPort) = try await startReceiver(output: dir + "/slow-uploads.jsonl", delay: 10)
        defer {
            nginx?.stop()
            fast.stop()
            slow.stop()
        }
        let url = "http://127.0.0.1:\(port)/bundle.tar.gz"
        func replica(_ i: Int, _ extra: [String]) async throws -> ServerProcess {
            try await ServerProcess([
                "--bundle", url, "--bundle-key", fixture.publicKey, "--bundle-poll", "1s..2s",
                "--bundle-persist", dir + "/persist-\(i)",
            ] + extra)
        }
        var replicas = [
            try await replica(0, ["--decision-log", dir + "/decisions-0.jsonl"]),
            try await replica(1, ["--decision-log", "off", "--decision-log-url", "http://127.0.0.1:\(fastPort)/logs"]),
            try await replica(2, ["--decision-log", "off", "--decision-log-url", "http://127.0.0.1:\(slowPort)/logs"]),
        ]
        defer { for r in replicas { r.stop() } }
        // Every check each replica answered, in order, to compare with what its decision logs hold.
        var checks: [[BundleCheck]] = [[], [], []]
        func check(_ i: Int) async -> BundleCheck {
            let c = await bundleCheck(replicas[i])
            checks[i].append(c)
            return c
        }
        for i in 0..<3 {
            #expect(await Self.eventually(within: .seconds(20)) { await check(i).revision == "r1" }, "replica \(i) never served r1")
        }

        // A new revision: every replica decides with it within the poll's max delay plus one second, and a check
        // during the swap never fails and never mixes revisions (its data's revision is the one its decision log
        // entry records for the snapshot that decided it).
        // The hammer checks the first replica without pause until it is stopped; it is stopped only once it has
        // seen the new revision, and the new revision is published only once it has seen the old one, so a slow
        // machine cannot leave the swap outside its checks.
        let first = replicas[0]
        let seen = SeenChecks()
        let hammer = Task {
            while !Task.isCancelled { seen.append(await bundleCheck(first)) }
        }
        #expect(await Self.eventually(within: .seconds(20)) { seen.count(revision: "r1") >= 3 }, "the hammer never checked r1")
        try await fixture.publish("r2")
        let published = Date()
        // Each replica's own activation time, not when a check spawned by this busy test first saw r2: on a loaded
        // machine starting curl alone can take a second.
        var converged: [TimeInterval] = []
        for i in 0..<3 {
            #expect(await Self.eventually(within: .seconds(10)) { await check(i).revision == "r2" }, "replica \(i) never served r2")
            let activated = await serverStatus(replicas[i])?["bundle"]?["last_successful_activation"]
            let at = activated?.stringValue.flatMap(Self.date(fromTimestamp:))
            #expect(at != nil, "replica \(i) reports no activation time: \(String(describing: activated))")
            converged.append(at.map { $0.timeIntervalSince(published) } ?? .infinity)
        }
        #expect(await Self.eventually(within: .seconds(20)) { seen.count(revision: "r2") >= 3 }, "the hammer never checked r2")
        hammer.cancel()
        await hammer.value
        let swap = seen.all
        let bound = Double(Self.maxDelay.components.seconds) + 1
        #expect(converged.allSatisfy { $0 <= bound }, "activated \(converged) s after the publication")
        #expect(swap.count > 10)
        #expect(swap.allSatisfy { $0.status == 200 }, "\(swap.filter { $0.status != 200 }.map(\.status))")
        #expect(Set(swap.compactMap(\.revision)) == ["r1", "r2"], "the swap happened while checks ran")
        // The file decision log flushes every 200 ms; on a loaded machine, later.
        let ids = Set(swap.compactMap(\.decisionID))
        var logged: [String: String] = [:]
        for _ in 0..<100 {
            logged = (try? Self.decisionLog(dir + "/decisions-0.jsonl")) ?? [:]
            if ids.isSubset(of: logged.keys) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        for c in swap {
            #expect(c.revision != nil && logged[c.decisionID ?? ""] == c.revision, "decision \(c.decisionID ?? "?") mixed revisions")
        }

        // A tampered bundle and one signed with another key are refused; r2 keeps deciding everywhere.
        for label in ["tampered", "other key"] {
            if label == "tampered" {
                try await fixture.publishTampered()
            } else {
                try await fixture.publish("r3", key: fixture.otherKey)
            }
            let published = Date()
            for i in 0..<3 {
                // Each replica refuses this bundle itself: a signature error recorded after it was published.
                var status: Value?
                let refused = await Self.eventually(within: .seconds(10)) {
                    status = await serverStatus(replicas[i])
                    let at = status?["bundle"]?["last_error_at"]?.stringValue.flatMap(Self.date(fromTimestamp:))
                    return status?["bundle"]?["last_error"]?["code"] == .string("bundle_signature_error")
                        && at.map { $0 >= published.addingTimeInterval(-0.001) } == true
                }
                #expect(refused, "\(label): \(String(describing: status))")
                #expect(status?["bundle"]?["revision"] == .string("r2"))
                #expect(await check(i).revision == "r2", "\(label): replica \(i) left r2")
            }
        }

        // The source goes away: nothing changes.
        nginx?.stop()
        nginx = nil
        for i in 0..<3 {
            // A poll comes within the max delay, and gives up connecting after two seconds.
            let server = replicas[i]
            #expect(await Self.eventually(within: .seconds(8)) {
                await serverStatus(server)?["bundle"]?["last_error"]?["code"] == .string("bundle_download_error")
            })
            #expect(await check(i).revision == "r2")
        }

        // A replica restarted while the source is down serves the persisted revision.
        replicas[0].stop()
        replicas[0] = try await replica(0, ["--decision-log", "off"])
        let restarted = replicas[0]
        #expect(await Self.eventually(within: .seconds(10)) { await bundleCheck(restarted).revision == "r2" })
        #expect(await serverStatus(restarted)?["bundle"]?["from_persisted"] == .bool(true))

        // Decision logs: the service got every decision of replica 1 in complete batches, in order; the slow one
        // (10 s per upload) never delayed a check of replica 2.
        for _ in 0..<20 {
            _ = await check(1)
            _ = await check(2)
        }
        let expected = checks[1].compactMap(\.decisionID)
        #expect(expected.count == checks[1].count)
        var uploaded: [String] = []
        #expect(await Self.eventually(within: .seconds(15)) {
            uploaded = (try? Self.uploads(dir + "/uploads.jsonl")) ?? []
            return uploaded.count >= expected.count
        })
        #expect(uploaded == expected)
        let slowest = checks[2].map(\.duration).max() ?? .zero
        // Well under the 10 s an upload takes: a check that waited behind one would take about that long, while
        // starting curl beside every other suite was seen to take up to 5 s.
        #expect(slowest < .seconds(6), "a check waited \(slowest) behind a 10 s upload")
        #expect(await Self.eventually(within: .seconds(15)) { ((try? Self.uploads(dir + "/slow-uploads.jsonl")) ?? []).count > 0 })
        let status = await serverStatus(replicas[2])?["decision_logs"]
        #expect(status?["dropped"] == .int(0))
    }

    /// decision id → bundle revision, from a decision log file.
    static func decisionLog(_ file: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
            let entry = try JSONReader.parse(String(line))
            if let id = entry["decision_id"]?.stringValue, let revision = entry["bundle_revision"]?.stringValue {
                out[id] = revision
            }
        }
        return out
    }

    /// The decision ids of every uploaded batch, in order; every line must be one whole JSON array of events.
    static func uploads(_ file: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: file) else { return [] }
        var ids: [String] = []
        for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
            guard case .array(let events) = try JSONReader.parse(String(line)) else { throw CocoaError(.fileReadCorruptFile) }
            ids += events.compactMap { $0["decision_id"]?.stringValue }
        }
        return ids
    }
}
