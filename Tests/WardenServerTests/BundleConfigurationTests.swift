import Foundation
import JOSE
import Networking
import PolicyCore
import PolicyLoading
import Testing
import WardenTesting
@testable import WardenServer

/// OPA's configuration keys for bundles and decision-log upload, and the upload buffer.
@Suite struct BundleConfigurationTests {
    static let publicKey = JWTFactory.SigningKey.p256().publicKeyPEM!

    @Test func readsOPAsBundleAndDecisionLogKeys() throws {
        let key = Self.publicKey.split(separator: "\n").joined(separator: "\\n")
        let (config, diagnostics) = ServerConfiguration.decode("""
            services:
              acme: {url: "http://127.0.0.1:8088/", headers: {x-team: authz}, credentials: {bearer: {token: secret}}}
            bundles:
              authz:
                service: acme
                resource: /bundles/authz.tar.gz
                persist: true
                polling: {min_delay_seconds: 5, max_delay_seconds: 10, long_polling_timeout_seconds: 30}
                signing: {keyid: release, scope: write}
            keys:
              release: {algorithm: ES256, key: "\(key)"}
            persistence_directory: state
            decision_logs:
              service: acme
              reporting: {min_delay_seconds: 1, max_delay_seconds: 3, upload_size_limit_bytes: 4096, buffer_size_limit_bytes: 65536}
            labels: {region: eu-1}
            """, file: "/etc/warden/config.yaml")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let c = try #require(config)
        let bundle = try #require(c.bundle)
        #expect(bundle.name == "authz")
        #expect(bundle.url == "http://127.0.0.1:8088/bundles/authz.tar.gz")
        #expect(bundle.headers == ["x-team": "authz", "Authorization": "Bearer secret"])
        #expect(bundle.minDelay == .seconds(5) && bundle.maxDelay == .seconds(10))
        #expect(bundle.longPollingTimeout == .seconds(30))
        #expect(bundle.persist)
        #expect(bundle.verification?.keyID == "release" && bundle.verification?.scope == "write")
        #expect(bundle.verification?.keys["release"]?.algorithm == .es256)
        #expect(c.persistenceDirectory == "/etc/warden/state")
        let upload = try #require(c.decisionLogUpload)
        #expect(upload.url == "http://127.0.0.1:8088/logs")
        #expect(upload.uploadSizeLimitBytes == 4096 && upload.bufferSizeLimitBytes == 65536)
        #expect(upload.maxDelay == .seconds(3))
        #expect(c.labels == ["region": "eu-1"])
    }

    @Test func refusesWhatCannotWork() {
        let (config, diagnostics) = ServerConfiguration.decode("""
            services:
              acme: {url: "ftp://example"}
            bundles:
              authz: {service: other, polling: {min_delay_seconds: 9, max_delay_seconds: 3}, signing: {keyid: nope}}
            """, file: "c.yaml")
        #expect(config == nil)
        let messages = diagnostics.map(\.message)
        #expect(messages.contains { $0.contains("expected an http or https URL") })
        #expect(messages.contains { $0.contains("no service `other`") })
    }

    @Test func pollingWindowsParse() {
        #expect(BundleSettings.parsePolling("5s..10s")! == (.seconds(5), .seconds(10)))
        #expect(BundleSettings.parsePolling("500ms..1s")! == (.milliseconds(500), .seconds(1)))
        #expect(BundleSettings.parsePolling("7")! == (.seconds(7), .seconds(7)))
        #expect(BundleSettings.parsePolling("10s..5s") == nil)
        #expect(BundleSettings.parsePolling("soon") == nil)
        #expect(BundleSettings.join("http://h:1/", "/a/b.tar.gz") == "http://h:1/a/b.tar.gz")
    }

    static func event(_ i: Int) -> Value {
        ["decision_id": .string("id-\(i)"), "padding": .string(String(repeating: "x\(i % 7)", count: 200))]
    }

    @Test func uploadsAreChunkedWithinTheLimitAndInOrder() throws {
        let uploader = DecisionLogUploader(
            settings: DecisionLogUploadSettings(url: "http://127.0.0.1:9/logs", uploadSizeLimitBytes: 2048),
            client: ControlPlaneClient())
        for i in 0..<300 { uploader.record(Self.event(i)) }
        let (count, body) = try #require(uploader.nextChunk())
        #expect(body.count <= 2048)
        #expect(count > 1 && count < 300)
        #expect(uploader.status.buffered == 300, "a chunk leaves the buffer only once it is uploaded")
    }

    @Test func aFullBufferDropsAndCounts() {
        let uploader = DecisionLogUploader(
            settings: DecisionLogUploadSettings(url: "http://127.0.0.1:9/logs", bufferSizeLimitBytes: 4096),
            client: ControlPlaneClient())
        var accepted = 0
        for i in 0..<50 where uploader.record(Self.event(i)) { accepted += 1 }
        let status = uploader.status
        #expect(accepted > 0 && accepted < 50)
        #expect(status.dropped == 50 - accepted)
        #expect(status.bufferedBytes <= 4096)
    }
}
