@testable import Identity
import JOSE
import PolicyCore
import Testing

@Suite("Verified-token cache")
struct VerifiedTokenCacheTests {
    static func entry(_ subject: String, validUntil: Double = 1_000, revision: UInt64 = 0) -> VerifiedTokenCache.Entry {
        let token = AuthenticatedToken(
            issuer: "iss", subject: subject, principal: "iss/" + subject, audiences: [], presenter: nil,
            claims: ["sub": .string(subject)], normalizedClaims: ["sub": .string(subject)], header: [:],
            location: .header(name: "authorization", prefix: "Bearer "), ruleIndex: 0, expiresAt: validUntil)
        return VerifiedTokenCache.Entry(
            result: AuthenticationResult(outcome: .authenticated(token), headersToRemove: ["authorization"]),
            validUntil: validUntil, keyRevision: revision)
    }

    static func key(_ token: String, location: Int = 0) -> VerifiedTokenCache.Key { .init(token: token[...], location: location) }

    @Test func evictsTheLeastRecentlyUsed() {
        let cache = VerifiedTokenCache(capacity: 2, maximumLifetime: 600)
        cache.insert(Self.key("a"), Self.entry("a"), now: 0)
        cache.insert(Self.key("b"), Self.entry("b"), now: 0)
        #expect(cache.lookup(Self.key("a"), now: 1)?.token.subject == "a")  // a is now the most recent
        cache.insert(Self.key("c"), Self.entry("c"), now: 2)
        #expect(cache.lookup(Self.key("b"), now: 3) == nil)
        #expect(cache.lookup(Self.key("a"), now: 3) != nil)
        #expect(cache.lookup(Self.key("c"), now: 3) != nil)
        #expect(cache.count == 2)
    }

    @Test func entriesExpireWithTheTokenOrTheMaximumLifetime() {
        let cache = VerifiedTokenCache(capacity: 8, maximumLifetime: 100)
        cache.insert(Self.key("short"), Self.entry("short", validUntil: 50), now: 0)
        cache.insert(Self.key("long"), Self.entry("long", validUntil: 10_000), now: 0)
        #expect(cache.lookup(Self.key("short"), now: 49) != nil)
        #expect(cache.lookup(Self.key("short"), now: 50) == nil)
        #expect(cache.lookup(Self.key("long"), now: 99) != nil)
        #expect(cache.lookup(Self.key("long"), now: 100) == nil)
        #expect(cache.count == 0)
        // Already expired: not kept at all.
        cache.insert(Self.key("stale"), Self.entry("stale", validUntil: 5), now: 10)
        #expect(cache.count == 0)
    }

    @Test func keysDifferByTokenAndLocation() {
        let cache = VerifiedTokenCache(capacity: 8, maximumLifetime: 100)
        cache.insert(Self.key("t", location: 0), Self.entry("t"), now: 0)
        #expect(cache.lookup(Self.key("t", location: 1), now: 1) == nil)
        #expect(cache.lookup(Self.key("t2", location: 0), now: 1) == nil)
        #expect(cache.lookup(Self.key("t", location: 0), now: 1) != nil)
        cache.remove(Self.key("t", location: 0))
        #expect(cache.lookup(Self.key("t", location: 0), now: 1) == nil)
    }

    @Test func removedSlotsAreReused() {
        let cache = VerifiedTokenCache(capacity: 3, maximumLifetime: 100)
        for round in 0..<50 {
            cache.insert(Self.key("x\(round)"), Self.entry("x\(round)", validUntil: Double(round) + 1), now: Double(round))
            _ = cache.lookup(Self.key("x\(round - 1)"), now: Double(round))  // expires the previous one
        }
        #expect(cache.count <= 3)
        #expect(cache.lookup(Self.key("x49"), now: 49)?.token.subject == "x49")
    }
}
