import Crypto
import Foundation
import Identity
import JOSE
import JWKSClient
import NIOCore
import NIOSSL
import PolicyCore
import SwiftASN1
import Synchronization
import Testing
import WardenTesting
import X509

@Suite("JWKS client against a local server", .serialized)
struct JWKSClientTests {
    static let issuer = "https://issuer.example.com"
    static let keyA = JWTFactory.SigningKey.p256(keyID: "a")
    static let keyB = JWTFactory.SigningKey.rsa(keyID: "b")

    static func token(_ key: JWTFactory.SigningKey, issuer: String = issuer) -> String {
        JWTFactory.token(JWTFactory.claims(issuer: issuer), key: key)
    }

    static func bearer(_ token: String) -> AuthenticationRequest {
        AuthenticationRequest(headers: [("authorization", "Bearer " + token)], url: "https://web.example.com/")
    }

    /// The timeout of fetches that should succeed, where the test is not about timing: the client's tasks share two
    /// cores with every other suite. (A fetch meant to fail takes its whole timeout: the HTTP client retries the
    /// connection until then.)
    static let patience: Duration = .seconds(20)

    static func quick(
        refresh: Duration = .seconds(300), retry: Duration = .seconds(10), refetch: Duration = .seconds(30),
        fetchTimeout: Duration = .seconds(2)
    ) -> JWKSClient.Configuration {
        JWKSClient.Configuration(
            refreshInterval: refresh, retryInterval: retry, minimumRefetchInterval: refetch, fetchTimeout: fetchTimeout)
    }

    /// Polls `condition` for up to `seconds`: generous, since it returns as soon as the condition holds, and the
    /// client's background tasks share two cores with a hundred other suites (5 s was seen not to be enough).
    static func eventually(_ seconds: Double = 20, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    @Test func fetchesOnceAndServesFromMemory() async throws {
        let server = try await JWKSTestServer()
        server.serve("/jwks", body: JWTFactory.jwks([Self.keyA]))
        let client = JWKSClient(configuration: Self.quick())
        defer { client.shutdown() }
        let location = RemoteKeys.uri(server.baseURL + "/jwks")
        #expect(client.cachedKeys(for: location) == nil)
        let first = try await client.keys(for: location, timeout: Self.patience).get()
        #expect(first.keys.keys.map(\.keyID) == ["a"])
        let second = try await client.keys(for: location, timeout: Self.patience).get()
        #expect(second.revision == first.revision)
        #expect(client.cachedKeys(for: location)?.revision == first.revision)
        #expect(server.requestCount("/jwks") == 1)
        try await server.stop()
    }

    @Test func concurrentFirstUsesShareOneFetch() async throws {
        let server = try await JWKSTestServer()
        server.serve("/jwks", .init(body: JWTFactory.jwks([Self.keyA]), delay: .milliseconds(200)))
        let client = JWKSClient(configuration: Self.quick())
        defer { client.shutdown() }
        let location = RemoteKeys.uri(server.baseURL + "/jwks")
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<10 {
                group.addTask { (try? await client.keys(for: location, timeout: Self.patience).get()) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: true, count: 10))
        #expect(server.requestCount("/jwks") == 1)
        try await server.stop()
    }

    @Test func rotationANewKidIsFetchedWhenATokenNamesIt() async throws {
        let server = try await JWKSTestServer()
        server.serve("/jwks", body: JWTFactory.jwks([Self.keyA]))
        // The refetch interval is measured on a clock the test moves, so a slow machine cannot stretch "right after".
        let clock = MovableClock()
        var configuration = Self.quick(refetch: .seconds(30))
        configuration.now = clock.now
        let client = JWKSClient(configuration: configuration)
        defer { client.shutdown() }
        let authenticator = RequestAuthenticator(
            rules: [JWTRule(issuer: Self.issuer, keys: .remote(.uri(server.baseURL + "/jwks")))], keySource: client)

        #expect(await authenticator.authenticate(Self.bearer(Self.token(Self.keyA))).token != nil)
        #expect(server.requestCount("/jwks") == 1)

        // The issuer rotates: key b appears. Within the interval, a token signed by b is refused without a fetch;
        // once it has passed, the first such token makes the client fetch again.
        server.serve("/jwks", body: JWTFactory.jwks([Self.keyA, Self.keyB]))
        clock.advance(.seconds(29))
        #expect(await authenticator.authenticate(Self.bearer(Self.token(Self.keyB))).failure?.error.code == .noMatchingKey)
        #expect(server.requestCount("/jwks") == 1)
        clock.advance(.seconds(2))
        let rotated = await authenticator.authenticate(Self.bearer(Self.token(Self.keyB)))
        #expect(rotated.token?.principal == "\(Self.issuer)/user-1")
        #expect(server.requestCount("/jwks") == 2)

        // Made-up kids cannot make the client fetch more often than the minimum interval: right after the
        // rotation fetch none, once the interval has passed exactly one for a burst.
        let stranger = JWTFactory.SigningKey.p256(keyID: "made-up")
        #expect(await authenticator.authenticate(Self.bearer(Self.token(stranger))).failure?.error.code == .noMatchingKey)
        #expect(server.requestCount("/jwks") == 2)
        clock.advance(.seconds(31))
        for _ in 0..<5 {
            #expect(await authenticator.authenticate(Self.bearer(Self.token(stranger))).failure?.error.code == .noMatchingKey)
        }
        #expect(server.requestCount("/jwks") == 3)
        try await server.stop()
    }

    @Test func serverDownCachedKeysKeepWorking() async throws {
        let server = try await JWKSTestServer()
        server.serve("/jwks", body: JWTFactory.jwks([Self.keyA]))
        let client = JWKSClient(configuration: Self.quick(refresh: .milliseconds(100), retry: .milliseconds(50), refetch: .zero))
        defer { client.shutdown() }
        let location = RemoteKeys.uri(server.baseURL + "/jwks")
        // No verified-token cache, so every request really uses the held keys.
        let authenticator = RequestAuthenticator(
            rules: [JWTRule(issuer: Self.issuer, keys: .remote(location))], keySource: client,
            options: .init(cacheCapacity: 0))
        #expect(await authenticator.authenticate(Self.bearer(Self.token(Self.keyA))).token != nil)

        try await server.stop()
        #expect(await Self.eventually { (client.status(of: location)?.failedFetches ?? 0) >= 2 })
        let status = try #require(client.status(of: location))
        #expect(status.lastError?.code == .keysUnavailable)
        #expect(status.lastError?.message.contains("cannot connect to 127.0.0.1") == true)
        #expect(status.keys?.keys.keys.map(\.keyID) == ["a"])
        for _ in 0..<3 {
            #expect(await authenticator.authenticate(Self.bearer(Self.token(Self.keyA))).token != nil)
        }
        // An unknown kid while the server is down: the refetch fails, the held keys stay, the token fails.
        #expect(await authenticator.authenticate(Self.bearer(Self.token(Self.keyB))).failure?.error.code == .noMatchingKey)
        #expect(client.cachedKeys(for: location)?.keys.keys.count == 1)
    }

    @Test func backgroundRefreshPicksUpNewKeysAndComesBackAfterAnOutage() async throws {
        let server = try await JWKSTestServer()
        server.serve("/jwks", body: JWTFactory.jwks([Self.keyA]))
        let client = JWKSClient(configuration: Self.quick(refresh: .milliseconds(100), retry: .milliseconds(50)))
        defer { client.shutdown() }
        let location = RemoteKeys.uri(server.baseURL + "/jwks")
        let first = try await client.keys(for: location, timeout: Self.patience).get()
        // Unchanged documents keep their revision.
        #expect(await Self.eventually { server.requestCount("/jwks") >= 3 })
        #expect(client.cachedKeys(for: location)?.revision == first.revision)
        // An error answer keeps the last good keys.
        server.serve("/jwks", .init(status: 500, body: "{}"))
        #expect(await Self.eventually { client.status(of: location)?.lastError != nil })
        #expect(client.cachedKeys(for: location)?.revision == first.revision)
        // New content: a new revision, without any request asking for it.
        server.serve("/jwks", body: JWTFactory.jwks([Self.keyA, Self.keyB]))
        #expect(await Self.eventually { client.cachedKeys(for: location)?.keys.keys.count == 2 })
        #expect(client.cachedKeys(for: location)!.revision > first.revision)
        #expect(client.status(of: location)?.lastError == nil)
        // After shutdown nothing is fetched any more. A fetch already under way may still arrive (late, on a loaded
        // machine): the count is taken once it has held still for half a second, then it must not move for six
        // refresh intervals.
        client.shutdown()
        var settled = server.requestCount("/jwks"), stillSince = ContinuousClock.now
        let settleDeadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now - stillSince < .milliseconds(500), ContinuousClock.now < settleDeadline {
            try await Task.sleep(for: .milliseconds(50))
            let now = server.requestCount("/jwks")
            if now != settled { (settled, stillSince) = (now, ContinuousClock.now) }
        }
        try await Task.sleep(for: .milliseconds(600))
        #expect(server.requestCount("/jwks") == settled)
        try await server.stop()
    }

    @Test func badAnswersAreErrorsNotKeys() async throws {
        let server = try await JWKSTestServer()
        server.serve("/not-json", body: "<html>")
        server.serve("/no-keys", body: #"{"keys":[{"kty":"RSA","kid":"x","use":"enc","n":"AQAB","e":"AQAB"}]}"#)
        server.serve("/huge", body: "{\"keys\":[],\"pad\":\"" + String(repeating: "x", count: 2 << 20) + "\"}")
        server.serve("/silent", .init(body: "", silent: true))
        server.serve("/moved", .init(status: 302, body: "", location: "/jwks"))
        server.serve("/jwks", body: JWTFactory.jwks([Self.keyA]))
        // Time enough for the answers that succeed (a redirect is two requests) beside the other suites on two
        // cores; the one that must time out says its own timeout. The client's own fetch timeout is far longer, so a
        // call that took it instead of its caller's would show.
        let client = JWKSClient(configuration: Self.quick(fetchTimeout: .seconds(30)))
        defer { client.shutdown() }
        func failure(_ path: String, timeout: Duration = .seconds(10)) async -> String? {
            switch await client.keys(for: .uri(server.baseURL + path), timeout: timeout) {
            case .success: return nil
            case .failure(let error): return error.message
            }
        }
        #expect(await failure("/missing") == "jwks remote fetch failed: 127.0.0.1 answered 404")
        #expect(await failure("/not-json")?.hasPrefix("jwks from `\(server.baseURL)/not-json` is invalid") == true)
        #expect(await failure("/no-keys") == "jwks from `\(server.baseURL)/no-keys` has no usable key")
        #expect(await failure("/huge")?.contains("larger than 1048576 bytes") == true)
        let started = Date()
        #expect(await failure("/silent", timeout: .milliseconds(300)) == "jwks remote fetch failed: timed out fetching from 127.0.0.1")
        // A silent server would hold the call forever, or for the client's 30 s: the caller's 300 ms ended it. (The
        // margin is for a loaded machine: beside the other suites this took 4.3 s once.)
        #expect(Date().timeIntervalSince(started) < 15)
        let moved = await failure("/moved")
        #expect(moved == nil, "\(moved ?? "")")
        let direct = await failure("/jwks")
        #expect(direct == nil, "\(direct ?? "")")
        try await server.stop()
    }

    @Test func aLocationThatNeverAnsweredFailsFastBetweenRetries() async throws {
        let server = try await JWKSTestServer()
        server.serve("/jwks", .init(status: 503, body: "{}"))
        // The five calls below take milliseconds; the retry interval leaves a loaded machine ample room for them.
        let client = JWKSClient(configuration: Self.quick(retry: .seconds(2)))
        defer { client.shutdown() }
        let location = RemoteKeys.uri(server.baseURL + "/jwks")
        for _ in 0..<5 {
            guard case .failure(let error) = await client.keys(for: location, timeout: Self.patience) else {
                Issue.record("keys from a failing server")
                return
            }
            #expect(error.message == "jwks remote fetch failed: 127.0.0.1 answered 503")
        }
        #expect(server.requestCount("/jwks") == 1)
        // The background retry finds the keys once the server answers.
        server.serve("/jwks", body: JWTFactory.jwks([Self.keyA]))
        // On a loaded machine the retry that finds the keys may come late.
        #expect(await Self.eventually(20) { client.cachedKeys(for: location) != nil })
        #expect(try await client.keys(for: location, timeout: Self.patience).get().keys.keys.count == 1)
        try await server.stop()
    }

    @Test func openIDDiscoveryFindsTheJWKS() async throws {
        let server = try await JWKSTestServer()
        server.serve("/.well-known/openid-configuration", body: "{\"issuer\":\"\(server.baseURL)\",\"jwks_uri\":\"\(server.baseURL)/keys\"}")
        server.serve("/keys", body: JWTFactory.jwks([Self.keyB]))
        let client = JWKSClient(configuration: Self.quick())
        defer { client.shutdown() }
        let authenticator = RequestAuthenticator(
            rules: [JWTRule(issuer: server.baseURL, keys: .remote(.discovery(issuer: server.baseURL + "/")))], keySource: client)
        #expect(await authenticator.authenticate(Self.bearer(Self.token(Self.keyB, issuer: server.baseURL))).token != nil)
        #expect(server.requestCount("/keys") == 1)
        try await server.stop()
    }

    @Test func httpsWithAVerifiedCertificate() async throws {
        let (certificate, key) = try Self.selfSignedCertificate()
        let serverTLS = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: certificate, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)))
        let server = try await JWKSTestServer(tls: serverTLS)
        server.serve("/jwks", body: JWTFactory.jwks([Self.keyA]))

        var trusting = TLSConfiguration.makeClientConfiguration()
        trusting.trustRoots = .certificates([try NIOSSLCertificate(bytes: certificate, format: .der)])
        var configuration = Self.quick()
        configuration.tls = trusting
        let client = JWKSClient(configuration: configuration)
        defer { client.shutdown() }
        let keys = try await client.keys(for: .uri(server.baseURL + "/jwks"), timeout: Self.patience).get()
        #expect(keys.keys.keys.count == 1)

        // The system roots do not know this certificate: the fetch fails instead of trusting it.
        let strict = JWKSClient(configuration: Self.quick())
        defer { strict.shutdown() }
        guard case .failure(let error) = await strict.keys(for: .uri(server.baseURL + "/jwks"), timeout: .seconds(2)) else {
            Issue.record("an unknown certificate was trusted")
            return
        }
        #expect(error.message.contains("TLS error") || error.message.contains("closed the connection"))
        try await server.stop()
    }

    /// A self-signed certificate for 127.0.0.1 (DER) and its key.
    static func selfSignedCertificate() throws -> ([UInt8], P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("127.0.0.1") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date(timeIntervalSinceNow: -60), notValidAfter: Date(timeIntervalSinceNow: 3600),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
            },
            issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return (serializer.serializedBytes, key)
    }
}

/// A clock that stands still until the test moves it, so intervals pass when the test says, whatever the machine's
/// load. (The real clock plus an offset let a stalled test run past an interval on its own.)
final class MovableClock: Sendable {
    private let current = Mutex(ContinuousClock.now)

    func advance(_ duration: Duration) { current.withLock { $0 += duration } }

    var now: @Sendable () -> ContinuousClock.Instant {
        { [self] in current.withLock { $0 } }
    }
}
