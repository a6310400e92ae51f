import AuthzPolicy
import DecisionPoint
import Foundation
import PolicyCore
import PolicyLoading
import Rego
import Testing
import WardenTesting

/// The last good set of a policies directory, kept on disk and served by a restart whose directory does not load.
@Suite struct PersistedPoliciesTests {
    /// A DENY of `/admin`, a Rego module and its data in a subdirectory.
    static let files = BundleTests.files

    static let broken = "kind: AuthorizationPolicy\nmetadata: {name: bad}\nspec: {action: NOPE\n"

    static func directory() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        for (name, text) in files { try directory.write("policies/" + name, text) }
        return directory
    }

    static func store(_ directory: TemporaryDirectory, persistence: String? = nil) -> PolicyStore {
        let paths = [directory.path + "/policies"]
        return PolicyStore(
            paths: paths, loader: PolicyLoader(),
            persisted: PersistedPolicies(directory: persistence ?? directory.path + "/state", paths: paths))
    }

    static func decision(_ store: PolicyStore, _ path: String) throws -> Decision? {
        let request = try AuthzRequest(attributes: ["destination.namespace": "default", "request.path": .string(path)])
        return store.decisionPoint.snapshot?.authorization.decide(request).decision
    }

    @Test func aRestartWithABrokenFileServesTheLastGoodSet() throws {
        let directory = try Self.directory()
        let first = Self.store(directory)
        guard case .installed = first.reload() else { Issue.record("first load"); return }
        let persisted = try #require(first.persisted)
        #expect(FileManager.default.fileExists(atPath: persisted.file))
        #expect(first.status.persistedRevision?.hasPrefix("sha256:") == true)
        #expect(first.status.persistError == nil)
        #expect(!first.status.fromPersisted)

        // The process dies; a broken file arrives; a new store over the same paths starts.
        try directory.write("policies/broken.yaml", Self.broken)
        let second = Self.store(directory)
        guard case .refused(let errors) = second.reload() else { Issue.record("refused"); return }
        #expect(errors.first?.span?.file == directory.path + "/policies/broken.yaml")
        #expect(!second.status.ready)
        guard case .success(let restored)? = second.restorePersisted() else { Issue.record("restored"); return }
        #expect(restored.revision == first.status.persistedRevision)
        #expect(restored.persistedAt != nil)
        #expect(second.status.ready)
        #expect(second.status.fromPersisted)
        #expect(second.status.lastError.first?.span?.file == directory.path + "/policies/broken.yaml", "the load error stays visible")
        #expect(try Self.decision(second, "/admin") == .deny)
        #expect(try Self.decision(second, "/public") == .allow)
        let rego = try #require(second.decisionPoint.snapshot?.rego)
        #expect(rego.data["meta"]?["open"] == .bool(true), "data at its directory's path, as the directory placed it")
        #expect(try rego.prepare(path: ["envoy", "authz", "allow"]).evaluateValue(input: .null) == .value(.bool(true)))

        // The persisted set is served once only: while a set serves, there is nothing to restore.
        #expect(second.restorePersisted() == nil)

        // A good load of the directory replaces it as usual.
        try directory.remove("policies/broken.yaml")
        guard case .installed = second.reload() else { Issue.record("recovered"); return }
        #expect(!second.status.fromPersisted)
        #expect(second.status.lastError.isEmpty)
    }

    @Test func theLastGoodSetIsWhatWasCompiled() throws {
        let directory = try Self.directory()
        let store = Self.store(directory)
        store.reload()
        // A refused set is not persisted: the file keeps the last good one.
        try directory.write("policies/broken.yaml", Self.broken)
        guard case .refused = store.reload() else { Issue.record("refused"); return }
        let restored = try #require(try store.persisted?.read())
        var found: [String: String] = [:]
        for entry in restored.bundle.files { found[entry.path] = String(decoding: entry.bytes, as: UTF8.self) }
        #expect(found == Self.files)
        #expect(restored.bundle.manifest.revision == store.status.persistedRevision)
    }

    @Test func aSetPersistedForOtherPathsIsNotServed() throws {
        let directory = try Self.directory()
        let state = directory.path + "/state"
        Self.store(directory, persistence: state).reload()
        let other = try TemporaryDirectory()
        try other.write("policies/broken.yaml", Self.broken)
        let paths = [other.path + "/policies"]
        let store = PolicyStore(paths: paths, loader: PolicyLoader(), persisted: PersistedPolicies(directory: state, paths: paths))
        guard case .refused = store.reload() else { Issue.record("refused"); return }
        guard case .failure(let error)? = store.restorePersisted() else { Issue.record("refused restore"); return }
        #expect(error.message.contains("were loaded from"))
        #expect(!store.status.ready, "fails closed")
    }

    @Test func aFailedWriteIsRecordedAndTheSetServes() throws {
        let directory = try Self.directory()
        // The persistence directory cannot be created: a file is in its way.
        try directory.write("state", "not a directory")
        let store = Self.store(directory)
        guard case .installed = store.reload() else { Issue.record("installed"); return }
        #expect(store.status.ready)
        #expect(store.status.persistError?.code == Diagnostic.Code.io)
        #expect(store.status.persistedRevision == nil)
    }

    @Test func withoutAPersistedSetAStartFailsClosed() throws {
        let directory = try Self.directory()
        try directory.write("policies/broken.yaml", Self.broken)
        let store = Self.store(directory)
        guard case .refused = store.reload() else { Issue.record("refused"); return }
        #expect(store.restorePersisted() == nil)
        #expect(!store.status.ready)
        #expect(store.decisionPoint.snapshot == nil)
    }
}
