import AuthzPolicy
import DecisionPoint
import Foundation
import PolicyCore
import PolicyLoading
import Testing
import WardenTesting

@Suite struct PolicyStoreTests {
    @Test func aBrokenFileKeepsTheLastGoodSetServing() throws {
        let directory = try TemporaryDirectory()
        try directory.write("deny-admin.yaml", validPolicy)
        let store = PolicyStore(paths: [directory.path], loader: PolicyLoader())
        guard case .installed(let first, _) = store.reload() else { Issue.record("first load"); return }
        #expect(first.revision == 1)

        try directory.write("broken.yaml", "kind: AuthorizationPolicy\nmetadata: {name: b}\nspec: {action: ALLOW, rules: [{from: [{source: {ipBlocks: [10.0.0.0/33]}}]}]}\n")
        guard case .refused(let errors) = store.reload() else { Issue.record("refused"); return }
        #expect(errors.first?.span?.file == directory.path + "/broken.yaml")
        #expect(store.decisionPoint.snapshot?.revision == 1)
        #expect(store.status.lastError.first?.span?.line == 3)
        #expect(store.status.failures == 1)

        try directory.remove("broken.yaml")
        guard case .installed(let second, _) = store.reload() else { Issue.record("recovered"); return }
        #expect(second.revision == 2)
        #expect(store.status.lastError.isEmpty)
    }

    @Test func aWarnedSetIsInstalledAndItsWarningsStayWithIt() throws {
        let directory = try TemporaryDirectory()
        try directory.write("deny-admin.yaml", validPolicy)
        try directory.write("warned.yaml", "kind: AuthorizationPolicy\napiVersion: security.istio.io/v1\nmetadata: {name: w}\nspec: {selector: {}, rules: [{from: []}]}\n")
        let store = PolicyStore(paths: [directory.path], loader: PolicyLoader())
        guard case .installed(let snapshot, let warnings) = store.reload() else { Issue.record("installed"); return }
        #expect(snapshot.authorization.policies.count == 2)
        let codes = ["http_only_deny_rule", "selector_without_labels", "empty_list_ignored"]
        #expect(warnings.map(\.code) == codes)
        #expect(store.status.warnings.map(\.code) == codes)

        try directory.write("broken.yaml", "kind: AuthorizationPolicy\napiVersion: security.istio.io/v1\nmetadata: {name: b}\nspec: {action: DENY}\n")
        guard case .refused = store.reload() else { Issue.record("refused"); return }
        #expect(store.decisionPoint.snapshot?.revision == snapshot.revision, "the last good set keeps serving")
        #expect(store.status.warnings.count == 3, "the warnings of the set serving")
        #expect(store.status.lastError.map(\.code) == ["invalid_value"])
    }

    @Test func watchingReloadsOnlyWhenFilesChange() throws {
        let directory = try TemporaryDirectory()
        try directory.write("deny-admin.yaml", validPolicy)
        let store = PolicyStore(paths: [directory.path], loader: PolicyLoader())
        store.reload()
        guard case .unchanged = store.reload(force: false) else { Issue.record("unchanged"); return }
        try directory.write("more.yaml", validPolicy.replacingOccurrences(of: "deny-admin", with: "deny-more"))
        // Written by rename, the file loads at the first look, or, when the rename fell in the same clock tick as
        // the write, at the second, which finds it unchanged.
        var outcome = store.reload(force: false)
        if case .unchanged = outcome { outcome = store.reload(force: false) }
        guard case .installed(let snapshot, _) = outcome else { Issue.record("changed"); return }
        #expect(snapshot.authorization.policies.count == 2)
    }

    /// A file rewritten in place is not loaded while it is half-written: a look that finds it changed waits
    /// for the next look to find it the same.
    @Test func aFileWrittenInPlaceLoadsOnlyOnceComplete() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("set.yaml", twoDocuments)
        let store = PolicyStore(paths: [directory.path], loader: PolicyLoader())
        store.reload()
        #expect(store.decisionPoint.snapshot?.authorization.policies.count == 2)

        // Truncate and write the first document only, as a writer pausing between the two would leave it.
        let halves = twoDocuments.components(separatedBy: "---\n")
        let handle = try #require(FileHandle(forWritingAtPath: file))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(halves[0].utf8))
        guard case .unchanged = store.reload(force: false) else { Issue.record("loaded half a file"); return }
        #expect(store.decisionPoint.snapshot?.revision == 1)

        // The writer finishes; the next look sees a different file again, and the one after loads it whole.
        try handle.write(contentsOf: Data(("---\n" + halves[1].replacingOccurrences(of: "/admin", with: "/private")).utf8))
        try handle.close()
        guard case .unchanged = store.reload(force: false) else { Issue.record("loaded before settling"); return }
        guard case .installed(let snapshot, _) = store.reload(force: false) else { Issue.record("never loaded"); return }
        #expect(snapshot.authorization.policies.map(\.id.name).sorted() == ["allow-all", "deny-admin"])
        #expect(store.status.failures == 0)
    }

    /// Write-then-rename puts a complete file in place at once; it is loaded at the first look.
    @Test func aFileRenamedIntoPlaceLoadsAtTheFirstLook() throws {
        let directory = try TemporaryDirectory()
        try directory.write("set.yaml", twoDocuments)
        let store = PolicyStore(paths: [directory.path], loader: PolicyLoader())
        store.reload()
        // Staged under a name the loader ignores, written a while ago (as rsync and tar leave a file), then
        // renamed over the policy file: its change time is after its last write.
        let staged = try directory.write("set.yaml.next", twoDocuments.replacingOccurrences(of: "/admin", with: "/private"))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)], ofItemAtPath: staged)
        #expect(rename(staged, directory.path + "/set.yaml") == 0)
        guard case .installed(let snapshot, _) = store.reload(force: false) else { Issue.record("not at first look"); return }
        #expect(snapshot.revision == 2)
        #expect(snapshot.authorization.policies.count == 2)
    }

    @Test func aRemovedFileIsLoadedAfterTwoLooks() throws {
        let directory = try TemporaryDirectory()
        try directory.write("deny-admin.yaml", validPolicy)
        try directory.write("more.yaml", validPolicy.replacingOccurrences(of: "deny-admin", with: "deny-more"))
        let store = PolicyStore(paths: [directory.path], loader: PolicyLoader())
        store.reload()
        try directory.remove("more.yaml")
        guard case .unchanged = store.reload(force: false) else { Issue.record("first look"); return }
        guard case .installed(let snapshot, _) = store.reload(force: false) else { Issue.record("second look"); return }
        #expect(snapshot.authorization.policies.count == 1)
    }

    @Test func watchPicksUpChangesInTheBackground() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("deny-admin.yaml", validPolicy)
        let store = PolicyStore(paths: [directory.path], loader: PolicyLoader())
        store.reload()
        let watcher = Task { await store.watch(every: .milliseconds(20)) }
        defer { watcher.cancel() }
        try directory.write("more.yaml", validPolicy.replacingOccurrences(of: "deny-admin", with: "deny-more"))
        // Generous: CPU-bound suites running beside this one can hold every cooperative thread for seconds.
        let deadline = ContinuousClock.now + .seconds(60)
        while store.decisionPoint.snapshot?.revision != 2 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(store.decisionPoint.snapshot?.authorization.policies.count == 2)
    }
}

/// Two policies in one file: the DENY comes second, so a file cut between them would open /admin.
let twoDocuments = HostileInputs.allowAllThenDenyAdmin(namespace: "default")
