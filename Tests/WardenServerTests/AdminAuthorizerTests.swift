import Foundation
import Identity
import Networking
import PolicyCore
import Rego
import Testing
@testable import WardenServer
import WardenTesting
import X509

/// OPA's `--authentication` and `system.authz` for the management API, without sockets.
@Suite struct AdminAuthorizerTests {
    /// A policy that allows what its input echoes back into a decision, so each test sees the input it produced.
    func authorizer(_ rego: String, authentication: AdminAuthorizer.Authentication = .token) throws -> AdminAuthorizer {
        AdminAuthorizer(
            authentication: authentication,
            policy: try RegoPolicySet.compile(modules: [RegoModuleSource(path: "authz.rego", text: rego)]))
    }

    func request(_ method: String, _ target: String, headers: [(name: String, value: String)] = [], body: String = "") -> HTTPRequest {
        HTTPRequest(method: method, target: target, headers: headers, body: Array(body.utf8))
    }

    @Test func theInputHasOPAsShape() throws {
        let admin = try authorizer("package system.authz\n")
        let input = try admin.input(
            request("post", "/v1/data/team%2Fa/b?explain=full&metrics&x=a+b", headers: [
                ("authorization", "Bearer  s3cret"), ("x-custom-header", "1"), ("X-CUSTOM-HEADER", "2"), ("bad header", "v"),
            ], body: #"{"input": {"user": "ann"}}"#),
            peer: nil)
        #expect(input["method"] == "POST")
        #expect(input["path"] == ["v1", "data", "team/a", "b"])
        #expect(input["params"] == ["explain": ["full"], "metrics": [""], "x": ["a b"]])
        #expect(input["headers"] == ["Authorization": ["Bearer  s3cret"], "X-Custom-Header": ["1", "2"], "bad header": ["v"]])
        #expect(input["identity"] == "s3cret")
        #expect(input["body"] == ["input": ["user": "ann"]])
        #expect(input["client_certificates"] == nil)
        #expect(try admin.input(request("GET", "/"), peer: nil)["path"] == [""])
        #expect(throws: Diagnostic.self) { try admin.input(request("POST", "/v1/data", body: "{"), peer: nil) }
    }

    @Test func onlyAWellFormedBearerTokenIsAnIdentity() {
        #expect(AdminAuthorizer.bearerToken("Bearer abc") == "abc")
        #expect(AdminAuthorizer.bearerToken("Bearer \tabc") == "abc")
        for header in [nil, "", "Bearer", "Bearer ", "bearer abc", "Basic abc", "Bearer a b", "Bearerabc",
                       "Bearer " + String(repeating: "a", count: 9000)] {
            #expect(AdminAuthorizer.bearerToken(header) == nil, "\(String(describing: header?.prefix(20)))")
        }
    }

    @Test func decisionsBecomeOPAsResponses() throws {
        let admin = try authorizer("""
            package system.authz

            import rego.v1

            default allow := false

            allow if input.identity == "root"

            allow := {"allowed": true} if input.identity == "object"

            allow := {"allowed": false, "reason": sprintf("%s may only read", [input.identity])} if {
            	input.identity == "reader"
            	input.method != "GET"
            }

            allow := {"decision": "maybe"} if input.identity == "malformed"
            """)
        func status(_ token: String?, _ method: String = "PUT") -> (Int, Value?) {
            let headers = token.map { [(name: "authorization", value: "Bearer \($0)")] } ?? []
            guard let refusal = admin.authorize(request(method, "/v1/policies/x", headers: headers), peer: nil) else {
                return (200, nil)
            }
            return (refusal.status, try? JSONReader.parse(refusal.body))
        }
        #expect(status("root").0 == 200)
        #expect(status("object").0 == 200)
        #expect(status(nil) == (401, ["code": "unauthorized", "message": "request rejected by administrative policy"]))
        #expect(status("reader") == (401, ["code": "unauthorized", "message": "reader may only read"]))
        #expect(status("malformed").0 == 500)

        let undefined = try authorizer("package system.authz\n\nallow if input.nothing\n")
        let response = try #require(undefined.authorize(request("GET", "/v1/status"), peer: nil))
        #expect(response.status == 500)
        #expect(try JSONReader.parse(response.body)["message"] == "authorization policy missing or undefined")
        #expect(AdminAuthorizer().authorize(request("DELETE", "/v1/policies/x"), peer: nil) == nil, "no policy: no check")
    }

    @Test func aTLSClientIsItsSPIFFEIDOrItsSubjectWithItsCertificate() throws {
        let factory = try CertificateFactory()
        let admin = try authorizer("package system.authz\n", authentication: .tls)
        for (variant, identity) in [
            (CertificateFactory.Variant.valid, "spiffe://cluster.local/ns/ops/sa/deployer"), (.noURI, "CN=no names"),
        ] {
            let credential = try factory.leaf("spiffe://cluster.local/ns/ops/sa/deployer", variant: variant)
            let certificate = try ClientCertificate(derEncoded: PEMCertificates.der(credential.certificate))
            #expect(certificate.identity == identity)
            let peer = TLSPeer(certificate: certificate.der, identity: certificate.identity, authorized: true)
            let input = try admin.input(request("GET", "/v1/status", headers: [("authorization", "Bearer ignored")]), peer: peer)
            #expect(input["identity"] == .string(identity), "the certificate, not a token, is the identity")
            let document = try #require(input["client_certificates"]?.arrayValue?.first)
            #expect(document["IsCA"] == false)
            #expect(document["Raw"] == .string(Data(certificate.der).base64EncodedString()))
            #expect(document["Issuer"]?["Organization"] == ["cluster.local"])
            #expect(document["NotAfter"] == .string(CertificateText.time(credential.certificate.notValidAfter)))
            if variant == .valid {
                #expect(document["URIs"]?.arrayValue?.first?["Scheme"] == "spiffe")
                #expect(document["URIs"]?.arrayValue?.first?["Host"] == "cluster.local")
                #expect(document["URIs"]?.arrayValue?.first?["Path"] == "/ns/ops/sa/deployer")
            } else {
                #expect(document["URIs"] == .null)
                #expect(document["Subject"]?["CommonName"] == "no names")
            }
        }
    }

    @Test func anAuthorizationPolicyMustCompileAndDefineSystemAuthz() throws {
        let directory = try TemporaryDirectory()
        let broken = try directory.write("broken.rego", "package system.authz\n\nallow if {\n")
        #expect {
            _ = try AdminAuthorizer.load(file: broken)
        } throws: { error in
            (error as? StartupError)?.diagnostics.first?.description.hasPrefix(broken + ":") == true
        }
        let elsewhere = try directory.write("other.rego", "package team\n\nallow := true\n")
        #expect {
            _ = try AdminAuthorizer.load(file: elsewhere)
        } throws: { error in
            (error as? StartupError)?.description.contains("package system.authz") == true
        }
        let good = try directory.write("authz.rego", "package system.authz\n\ndefault allow := false\n")
        #expect(try AdminAuthorizer.load(file: good).packages == [["system", "authz"]])
        #expect {
            _ = try AdminAuthorizer.load(file: good, limits: InputLimits(maxFileBytes: 16))
        } throws: { error in
            (error as? StartupError)?.diagnostics.first?.code == Diagnostic.Code.limitExceeded
        }
        let deep = try directory.write(
            "deep.rego", "package system.authz\n\nallow := " + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "\n")
        #expect {
            _ = try AdminAuthorizer.load(file: deep, limits: InputLimits(maxNestingDepth: 16))
        } throws: { error in
            (error as? StartupError)?.diagnostics.first?.description.hasPrefix(deep + ":3:") == true
        }
    }
}
