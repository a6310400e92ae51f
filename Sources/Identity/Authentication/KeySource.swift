import JOSE

/// Where remote key sets come from. `Identity` only declares what it needs; the `JWKSClient` module fetches over
/// HTTP(S), caches, refreshes in the background, and keeps the last good keys when a fetch fails.
public protocol KeySource: Sendable {
    /// The keys held for `location` right now, without waiting; nil when none were ever fetched.
    func cachedKeys(for location: RemoteKeys) -> KeySnapshot?

    /// The keys for `location`, fetching them first when none are held, waiting at most `timeout`.
    func keys(for location: RemoteKeys, timeout: Duration) async -> Result<KeySnapshot, JOSEError>

    /// A token named a `kid` the held keys lack: fetch again (the source limits how often) and return the keys then
    /// held.
    func refresh(_ location: RemoteKeys, unknownKeyID: String, timeout: Duration) async -> Result<KeySnapshot, JOSEError>
}

/// A key set and its revision: the revision changes whenever the set's content does, so results verified with an
/// older revision can be told apart.
public struct KeySnapshot: Sendable {
    public let keys: JWKSet
    public let revision: UInt64

    public init(keys: JWKSet, revision: UInt64) {
        self.keys = keys
        self.revision = revision
    }
}
