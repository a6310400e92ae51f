import Foundation
import JOSE
import PolicyCore
import Testing
import WardenTesting

/// `warden jwt`, run as a user runs it.
@Suite struct JWTCommandTests {
    static func seedJWKSFile(_ dir: TemporaryDirectory) throws -> String {
        try dir.write("jwks.json", SeedToken.jwks)
    }

    static func json(_ text: String) throws -> Value { try JSONReader.parse(text) }

    @Test func verifiesTheSeedToken() async throws {
        let dir = try TemporaryDirectory()
        let jwks = try Self.seedJWKSFile(dir)
        let out = try await ProcessRunner.warden(["jwt", "verify", "--issuer", SeedToken.issuer, "--jwks", jwks, "--format", "json", SeedToken.token])
        #expect(out.status == 0, "\(out.stderr)")
        let report = try Self.json(out.stdout)
        #expect(report["valid"] == true)
        #expect(report["principal"] == .string(SeedToken.principal))
        #expect(report["claims"]?["foo"] == "bar")
        let text = try await ProcessRunner.warden(["jwt", "verify", "--issuer", SeedToken.issuer, "--jwks", jwks, SeedToken.token])
        #expect(text.status == 0)
        #expect(text.stdout.hasPrefix("valid token for \(SeedToken.principal)\n"))
    }

    @Test func badTokenExitsOne() async throws {
        let dir = try TemporaryDirectory()
        let out = try await ProcessRunner.warden(["jwt", "verify", "--issuer", SeedToken.issuer, "--jwks", try Self.seedJWKSFile(dir), "--format", "json", "badtoken"])
        #expect(out.status == 1)
        let report = try Self.json(out.stdout)
        #expect(report["valid"] == false)
        #expect(report["code"] == "jwt_malformed")
        #expect(report["error"]?.stringValue?.contains("three segments") == true)
    }

    @Test func timeAudienceAndIssuerAreChecked() async throws {
        let dir = try TemporaryDirectory()
        let jwks = try Self.seedJWKSFile(dir)
        let late = try await ProcessRunner.warden(["jwt", "verify", "--issuer", SeedToken.issuer, "--jwks", jwks, "--at", "2118-06-30T00:00:00Z", SeedToken.token])
        #expect(late.status == 1)
        #expect(late.stdout == "invalid token: jwt is expired\n")
        let withinSkew = try await ProcessRunner.warden(["jwt", "verify", "--issuer", SeedToken.issuer, "--jwks", jwks, "--at", String(Int(SeedToken.expiresAt) + 30), SeedToken.token])
        #expect(withinSkew.status == 0)
        let noSkew = try await ProcessRunner.warden(["jwt", "verify", "--issuer", SeedToken.issuer, "--jwks", jwks, "--clock-skew", "0", "--at", String(Int(SeedToken.expiresAt) + 30), SeedToken.token])
        #expect(noSkew.status == 1)
        let audience = try await ProcessRunner.warden(["jwt", "verify", "--issuer", SeedToken.issuer, "--audience", "details", "--jwks", jwks, SeedToken.token])
        #expect(audience.status == 1)
        #expect(audience.stdout == "invalid token: audiences in jwt are not allowed\n")
        let issuer = try await ProcessRunner.warden(["jwt", "verify", "--issuer", "someone-else", "--jwks", jwks, SeedToken.token])
        #expect(issuer.stdout == "invalid token: jwt issuer is not configured\n")
    }

    @Test func tokenFromStdinOrAFile() async throws {
        let dir = try TemporaryDirectory()
        let jwks = try Self.seedJWKSFile(dir)
        let stdin = try await ProcessRunner.warden(["jwt", "verify", "--issuer", SeedToken.issuer, "--jwks", jwks, "-"], stdin: SeedToken.token + "\n")
        #expect(stdin.status == 0)
        let file = try dir.write("token", "Bearer " + SeedToken.token + "\n")
        let fromFile = try await ProcessRunner.warden(["jwt", "verify", "--issuer", SeedToken.issuer, "--jwks", jwks, "--token-file", file])
        #expect(fromFile.status == 0)
    }

    @Test func rulesFromARequestAuthenticationFile() async throws {
        let out = try await ProcessRunner.warden(["jwt", "verify", "--policy", "policies/details-require-jwt.yaml", "--format", "json", SeedToken.token])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(try Self.json(out.stdout)["principal"] == .string(SeedToken.principal))
        let scoped = try await ProcessRunner.warden(["jwt", "verify", "--policy", "policies/details-require-jwt.yaml", "--namespace", "default", "--label", "app=details", SeedToken.token])
        #expect(scoped.status == 0)
        let elsewhere = try await ProcessRunner.warden(["jwt", "verify", "--policy", "policies/details-require-jwt.yaml", "--namespace", "default", "--label", "app=reviews", SeedToken.token])
        #expect(elsewhere.status == 2)
        #expect(elsewhere.stderr.contains("no RequestAuthentication jwtRules apply"))
    }

    @Test func otherKeyFormsWork() async throws {
        let key = JWTFactory.SigningKey.ed25519(keyID: nil)
        let token = JWTFactory.token(JWTFactory.claims(issuer: "iss"), key: key)
        let dir = try TemporaryDirectory()
        let pem = try dir.write("key.pem", key.publicKeyPEM!)
        let out = try await ProcessRunner.warden(["jwt", "verify", "--issuer", "iss", "--jwks", pem, token])
        #expect(out.status == 0, "\(out.stdout) \(out.stderr)")
    }

    @Test func unusableInputExitsTwo() async throws {
        let dir = try TemporaryDirectory()
        let broken = try dir.write("broken.json", "{\"keys\": 3}")
        let cases: [[String]] = [
            ["jwt", "verify", "--issuer", "i", SeedToken.token],  // no keys
            ["jwt", "verify", "--jwks", broken, SeedToken.token],  // no issuer
            ["jwt", "verify", "--issuer", "i", "--jwks", dir.path + "/missing.json", SeedToken.token],
            ["jwt", "verify", "--issuer", "i", "--jwks", broken, SeedToken.token],
            ["jwt", "verify", "--issuer", "i", "--jwks", broken, "--at", "yesterday", SeedToken.token],
            ["jwt", "verify", "--issuer", "i", "--jwks-uri", "ftp://keys/jwks", SeedToken.token],
            ["jwt", "verify", "--issuer", SeedToken.issuer, "--jwks-uri", "http://127.0.0.1:1/jwks", SeedToken.token],
            ["jwt", "decode", "not-a-token"],
        ]
        for arguments in cases {
            let out = try await ProcessRunner.warden(arguments)
            #expect(out.status == 2, "\(arguments): \(out.stdout) \(out.stderr)")
            #expect(!out.stderr.isEmpty)
        }
        let invalidPolicy = try dir.write("ra.yaml", """
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: ra}
            spec:
              jwtRules:
              - audiences: [x]
            """)
        let out = try await ProcessRunner.warden(["jwt", "verify", "--policy", invalidPolicy, SeedToken.token])
        #expect(out.status == 2)
        #expect(out.stderr.contains("\(invalidPolicy):6:5: spec.jwtRules[0]: issuer or jwksUri must be non-empty string"))
    }

    @Test func decodeShowsWithoutVerifying() async throws {
        let out = try await ProcessRunner.warden(["jwt", "decode", "--format", "json", SeedToken.token])
        #expect(out.status == 0)
        #expect(out.stderr.contains("NOT verified"))
        let report = try Self.json(out.stdout)
        #expect(report["verified"] == false)
        #expect(report["header"]?["kid"] == .string(SeedToken.keyID))
        #expect(report["payload"]?["iss"] == .string(SeedToken.issuer))
        // An unsigned token decodes too: decoding judges nothing.
        let unsigned = try await ProcessRunner.warden(["jwt", "decode", JWTFactory.unsignedToken(["sub": "x"])])
        #expect(unsigned.status == 0)
        #expect(unsigned.stdout.contains("signature: 0 bytes, none, not verified"))
        let text = try await ProcessRunner.warden(["jwt", "decode", SeedToken.token])
        #expect(text.stdout.contains("exp: 2118-06-29T23:48:20Z"))
    }
}
