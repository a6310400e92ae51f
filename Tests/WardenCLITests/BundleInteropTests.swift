import Foundation
import PolicyCore
import Testing
import WardenTesting

/// Bundles across OPA and Warden. OPA's own engine (the oracle in ../shared/tools) evaluates the Rego and data of
/// a bundle `warden build` wrote, read by Python's tarfile as OPA's reader lays it out; and a bundle written with
/// `opa build`'s layout and signature by scripts/opa-bundle.py (digests computed there, independently of Warden)
/// loads, verified, in Warden.
@Suite struct BundleInteropTests {
    static let script = Repository.path("scripts/opa-bundle.py")

    @Test func wardenBundlesEvaluateInOPAsEngine() async throws {
        let fixture = try await BundleFixture()
        try await fixture.publish("r1")
        let input = try fixture.dir.write("input.json", #"{"attributes": {"request": {"http": {"method": "GET"}}}}"#)
        let out = try await ProcessRunner.run("/usr/bin/env", ["python3", Self.script, "eval", fixture.published, "data.envoy.authz.allow", input],
                                        timeout: .seconds(180))
        #expect(out.status == 0, "\(out.stderr)")
        let result = try JSONReader.parse(out.stdout)
        #expect(result["result"] == ["allowed": true, "headers": ["x-rev": "r1"]])
    }

    @Test func opaLayoutBundlesLoadInWardenWithTheirSignatures() async throws {
        let fixture = try await BundleFixture()
        let src = try fixture.source("opa-1")
        try FileManager.default.removeItem(atPath: src + "/custom.yaml")  // OPA's build carries Rego and data only
        let bundle = fixture.dir.path + "/opa.tar.gz"
        let made = try await ProcessRunner.run(
            "/usr/bin/env", ["python3", Self.script, "make", src, bundle, "--revision", "opa-1", "--key", fixture.key])
        #expect(made.status == 0, "\(made.stderr)")
        let checked = try await ProcessRunner.warden(["check", bundle, "--bundle-key", fixture.publicKey])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        #expect(checked.stdout.contains("ok: bundle revision `opa-1`: 0 policies, 1 Rego module, 2 files, signature verified"))
        let wrongKey = try await ProcessRunner.warden(["check", bundle, "--bundle-key", fixture.dir.path + "/other.pub"])
        #expect(wrongKey.status == 1)
        let unkeyed = try await ProcessRunner.warden(["check", bundle])
        #expect(unkeyed.stdout.contains("bundle is signed but no verification key is configured"))
    }

    @Test func buildWritesNothingWhenAnyFileIsInvalid() async throws {
        let fixture = try await BundleFixture()
        let src = try fixture.source("bad")
        try fixture.dir.write("src-bad/broken.rego", "package broken\n\nallow if {\n")
        let output = fixture.dir.path + "/never.tar.gz"
        let out = try await ProcessRunner.warden(["build", src, "-o", output])
        #expect(out.status == 1)
        #expect(out.stderr.contains("broken.rego:"))
        #expect(out.stderr.contains("no bundle written"))
        #expect(!FileManager.default.fileExists(atPath: output))
        let check = try await ProcessRunner.warden(["check", src])
        #expect(check.status == 1, "warden check reports the same error")
    }
}
