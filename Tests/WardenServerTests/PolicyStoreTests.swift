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
        guard case .installed(let snapshot, _) = store.reload(force: false) else { Issue.record("changed"); return }
        #expect(snapshot.authorization.policies.count == 2)
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
