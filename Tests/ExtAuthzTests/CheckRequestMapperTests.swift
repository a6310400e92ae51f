@testable import ExtAuthz
import Foundation
import PolicyCore
import SwiftProtobuf
import Testing
import WardenTesting

/// A CheckRequest as Envoy sends it from an Istio sidecar that names the workload only by its peer (the
/// destination principal and labels), not in context extensions.
func sampleCheck(
    path: String = "/api/items?id=7&tag=a&tag=b+c",
    headers: [String: String] = [:],
    principal: String = "spiffe://cluster.local/ns/frontend/sa/web"
) -> Envoy_Service_Auth_V3_CheckRequest {
    var parts = CheckFixtures.sidecar(
        path: path, headers: [":authority": "api.backend", "user-agent": "curl/8"].merging(headers) { $1 }, sourcePort: 51000,
        labels: [:])
    parts.namespace = nil
    parts.destination.identity = CheckFixtures.backend
    parts.serverName = "api.backend.svc.cluster.local"
    var check = parts.checkRequest
    check.attributes.source.principal = principal
    check.attributes.destination.labels = ["app": "api"]
    return check
}

@Suite struct CheckRequestMapperTests {
    @Test func mapsTheAttributesIstioMatches() {
        let request = CheckRequestMapper().map(sampleCheck())
        #expect(request.source.principal == "cluster.local/ns/frontend/sa/web")
        #expect(request.source.namespace == "frontend")
        #expect(request.source.ip == IPAddress("10.0.0.5"))
        #expect(request.destination.ip == IPAddress("10.0.0.9"))
        #expect(request.destination.port == 8080)
        #expect(request.destination.namespace == "backend")
        #expect(request.destination.labels == ["app": "api"])
        #expect(request.http.method == "GET")
        #expect(request.http.host == "api.backend")
        #expect(request.http.path == "/api/items")
        #expect(request.http.query == "id=7&tag=a&tag=b+c")
        #expect(request.http.headers["User-Agent"] == "curl/8")
        #expect(request.connectionSNI == "api.backend.svc.cluster.local")
        #expect(request.remoteIP == IPAddress("10.0.0.5"), "no X-Forwarded-For: the peer")
        #expect(request.auth == nil)
    }

    /// The source peer is parsed once per principal and kept: each check still gets its own principal, namespace
    /// and address, whatever the mapper saw before.
    @Test func keptPeersBelongToTheirOwnPrincipal() {
        let mapper = CheckRequestMapper()
        let peers: [(String, String, String?)] = [
            ("spiffe://cluster.local/ns/frontend/sa/web", "cluster.local/ns/frontend/sa/web", "frontend"),
            ("spiffe://td/ns/prod/sa/api", "td/ns/prod/sa/api", "prod"),
            ("web.example.com", "web.example.com", nil),
            ("spiffe://cluster.local/ns/frontend/sa/web", "cluster.local/ns/frontend/sa/web", "frontend"),
        ]
        for (index, (reported, principal, namespace)) in peers.enumerated() {
            var check = sampleCheck(principal: reported)
            check.attributes.source.address.socketAddress.address = "10.0.0.\(index + 1)"
            let request = mapper.map(check)
            #expect(request.source.principal == principal)
            #expect(request.source.namespace == namespace)
            #expect(request.source == AuthzRequest.Source(principal: principal, ip: IPAddress("10.0.0.\(index + 1)")))
        }
    }

    /// Envoy's header map is keyed by lowercase names; one with a capital (another client's) is still read case
    /// insensitively, its names joined as the proxy would.
    @Test func headerMapsWithCapitalsAreNormalized() {
        var check = sampleCheck()
        check.attributes.request.http.headers = ["X-Tenant": "acme", "x-tenant": "beta", "User-Agent": "curl/8"]
        let headers = CheckRequestMapper().map(check).http.headers
        #expect(["acme,beta", "beta,acme"].contains(headers["x-tenant"] ?? ""))
        #expect(headers["user-agent"] == "curl/8")
        #expect(headers.count == 2)
    }

    @Test func normalizesThePathBeforeMatching() {
        for bypass in ["//admin", "/a/../admin", "/%61dmin", "/admin?x=1"] {
            #expect(CheckRequestMapper().map(sampleCheck(path: bypass)).http.path == "/admin", "\(bypass)")
        }
    }

    @Test func remoteIPSkipsTrustedProxies() {
        let xff = ["x-forwarded-for": "203.0.113.7, 198.51.100.2, 10.1.1.1"]
        #expect(CheckRequestMapper().map(sampleCheck(headers: xff)).remoteIP == IPAddress("10.1.1.1"))
        let one = CheckRequestMapper(options: .init(trustedProxies: 1))
        #expect(one.map(sampleCheck(headers: xff)).remoteIP == IPAddress("198.51.100.2"))
        let two = CheckRequestMapper(options: .init(trustedProxies: 2))
        #expect(two.map(sampleCheck(headers: xff)).remoteIP == IPAddress("203.0.113.7"))
        let tooMany = CheckRequestMapper(options: .init(trustedProxies: 3))
        #expect(tooMany.map(sampleCheck(headers: xff)).remoteIP == IPAddress("10.0.0.5"), "falls back to the peer")
        #expect(CheckRequestMapper().map(sampleCheck(headers: ["x-forwarded-for": "junk"])).remoteIP == IPAddress("10.0.0.5"))
        // Empty entries are no hops; spaces and tabs around an entry are not part of it.
        let gappy = ["x-forwarded-for": "203.0.113.7,,\t198.51.100.2 ,"]
        #expect(CheckRequestMapper().map(sampleCheck(headers: gappy)).remoteIP == IPAddress("198.51.100.2"))
        #expect(one.map(sampleCheck(headers: gappy)).remoteIP == IPAddress("203.0.113.7"))
        #expect(two.map(sampleCheck(headers: gappy)).remoteIP == IPAddress("10.0.0.5"))
    }

    @Test(arguments: [
        ("app=ledger, version=v2", ["app": "ledger", "version": "v2"]),
        ("  app = ledger ,,", ["app": "ledger"]),
        ("k==v", ["k": "=v"]),
        ("", [:]),
        ("app", nil), ("=v", nil), ("k=", nil), ("a=b,c", nil),
        (#" {"app":"json"} "#, ["app": "json"]), (#"{"app":1}"#, nil), ("{", nil),
    ] as [(String, [String: String]?)])
    func workloadLabelsFromAContextExtension(text: String, labels: [String: String]?) {
        #expect(CheckRequestMapper.labels(text) == labels)
    }

    @Test func requestAuthComesFromJWTAuthnMetadata() throws {
        var check = sampleCheck()
        let payload = try Google_Protobuf_Struct(jsonString: #"{"iss":"https://issuer.example","sub":"alice","aud":["api","web"],"azp":"web-client","groups":["admins"]}"#)
        check.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"] = Google_Protobuf_Struct(
            fields: ["https://issuer.example": Google_Protobuf_Value(structValue: payload)])
        let auth = try #require(CheckRequestMapper().map(check).auth)
        #expect(auth.principal == "https://issuer.example/alice")
        #expect(auth.audiences == ["api", "web"])
        #expect(auth.presenter == "web-client")
        #expect(auth.claims["groups"] == ["admins"])
    }

    @Test func verifiedClaimsHeaderIsReadOnlyWhenTrusted() throws {
        let claims: Value = ["iss": "https://issuer.example", "sub": "bob", "aud": "api"]
        let header = [VerifiedClaimsHeader.name: VerifiedClaimsHeader.encode(claims)]
        #expect(CheckRequestMapper().map(sampleCheck(headers: header)).auth == nil, "untrusted by default")
        let trusting = CheckRequestMapper(options: .init(verifiedClaimsHeader: VerifiedClaimsHeader.name))
        #expect(trusting.map(sampleCheck(headers: header)).auth == nil, "configured, but the caller does not vouch for it")
        let auth = try #require(trusting.map(sampleCheck(headers: header), claimsHeaderTrusted: true).auth)
        #expect(auth.principal == "https://issuer.example/bob")
        #expect(auth.audiences == ["api"])
        #expect(trusting.map(sampleCheck(headers: [VerifiedClaimsHeader.name: "%%%"]), claimsHeaderTrusted: true).auth == nil)
    }

    @Test func verifiedClaimsHeaderRoundTrips() throws {
        let claims: Value = ["iss": "i", "sub": "s", "n": 1, "nested": ["a": [true, nil]]]
        #expect(try VerifiedClaimsHeader.decode(VerifiedClaimsHeader.encode(claims)) == claims)
        #expect(throws: VerifiedClaimsHeader.FormatError.self) { try VerifiedClaimsHeader.decode("WzFd") }  // [1]
    }

    @Test func destinationWorkloadPrecedence() {
        var check = sampleCheck()
        check.attributes.contextExtensions = [
            "destination.namespace": "payments", "destination.workload_labels": "app=ledger, version=v2",
        ]
        let fromExtensions = CheckRequestMapper().map(check)
        #expect(fromExtensions.destination.namespace == "payments")
        #expect(fromExtensions.destination.labels == ["app": "ledger", "version": "v2"])

        check.attributes.contextExtensions = ["destination.workload_labels": #"{"app":"json"}"#]
        #expect(CheckRequestMapper().map(check).destination.labels == ["app": "json"])

        var bare = Envoy_Service_Auth_V3_CheckRequest()
        bare.attributes.request.http.path = "/"
        let configured = CheckRequestMapper(options: .init(destinationNamespace: "shop", destinationLabels: ["app": "cart"]))
        #expect(configured.map(bare).destination.namespace == "shop")
        #expect(configured.map(bare).destination.labels == ["app": "cart"])
    }

    /// Every check of a workload hands over the same labels dictionary (the engine keeps what it resolved for a
    /// workload by it), whether the labels come from a context extension or from the destination peer; labels that
    /// differ never share one, however their text reads.
    @Test func checksOfOneWorkloadShareItsLabels() {
        func storage(_ labels: [String: String]) -> UInt { unsafeBitCast(labels, to: UInt.self) }
        let mapper = CheckRequestMapper()
        var check = sampleCheck()
        check.attributes.contextExtensions = ["destination.workload_labels": "app=ledger, version=v2"]
        #expect(storage(mapper.map(check).destination.labels) == storage(mapper.map(check).destination.labels))

        var peer = sampleCheck()
        peer.attributes.destination.labels = ["app": "api", "version": "v1"]
        let first = mapper.map(peer).destination.labels
        peer.attributes.destination.labels = ["version": "v1", "app": "api"]
        let second = mapper.map(peer).destination.labels
        #expect(first == ["app": "api", "version": "v1"])
        #expect(storage(first) == storage(second))

        peer.attributes.destination.labels = ["a": "1,b=2"]
        let joined = mapper.map(peer).destination.labels
        peer.attributes.destination.labels = ["a": "1", "b": "2"]
        let split = mapper.map(peer).destination.labels
        #expect(joined == ["a": "1,b=2"])
        #expect(split == ["a": "1", "b": "2"])
    }

    @Test func headerMapIsUsedWhenEnvoySendsRawHeaders() {
        var check = Envoy_Service_Auth_V3_CheckRequest()
        check.attributes.request.http.path = "/x"
        check.attributes.request.http.headerMap.headers = [
            .with { $0.key = "x-team"; $0.rawValue = Data("blue".utf8) },
            .with { $0.key = "x-team"; $0.value = "green" },
        ]
        #expect(CheckRequestMapper().map(check).http.headers["x-team"] == "blue,green")
    }
}

/// ext_authz's HTTP mode maps the request it receives directly; the attributes must be those of the `CheckRequest`
/// built from the same request, whatever its headers, path or source.
@Suite struct HTTPModeMappingTests {
    static let requests: [(method: String, target: String, headers: [(name: String, value: String)], source: String?)] = [
        ("GET", "/api/items?id=7", [("Host", "api.backend"), ("User-Agent", "curl/8")], "10.0.0.5"),
        ("POST", "/a//b/../c;p=1?x=%2F", [("host", "x"), ("X-Forwarded-For", "1.2.3.4, 10.0.0.1"), ("x-a", "1"), ("X-A", "2")], "10.1.1.1"),
        ("HEAD", "/%2e%2e/admin", [(":authority", "alt"), ("x-warden-claims", "e30")], nil),
        ("DELETE", "/admin%00/x", [], "::1"),
        ("GET", "/", [("host", "h"), ("host", "h2"), ("authorization", "Bearer abc")], "not an address"),
        // Found by the HTTP fuzz target: an empty first Host falls back to the joined fields.
        ("POST", "/admin/users", [("Host", ""), ("Host", "54"), (":authority", "b")], "10.0.0.1"),
        ("GET", "/x", [(":authority", ""), ("host", "h")], "10.0.0.1"),
    ]

    @Test(arguments: [false, true]) func theDirectMappingGivesTheCheckRequestsAttributes(trusted: Bool) {
        let mapper = CheckRequestMapper(options: .init(
            trustedProxies: 1, verifiedClaimsHeader: "x-warden-claims", destinationNamespace: "default",
            destinationLabels: ["app": "details"]))
        for request in Self.requests {
            let check = HTTPCheckRequest.make(
                method: request.method, target: request.target, headers: request.headers,
                source: .init(address: request.source, port: 40000))
            let viaProtobuf = mapper.map(check, claimsHeaderTrusted: trusted)
            let direct = mapper.map(
                method: request.method, target: request.target, headers: request.headers, sourceAddress: request.source,
                claimsHeaderTrusted: trusted)
            #expect(direct == viaProtobuf, "\(request.method) \(request.target)")
        }
    }
}

@Suite struct OPAEnvoyInputTests {
    @Test func hasOPAEnvoysShape() throws {
        var check = sampleCheck(path: "//api/../items/%61?id=7&tag=a&tag=b+c")
        check.attributes.request.http.headers["content-type"] = "application/json"
        check.attributes.request.http.body = #"{"name":"x","n":2}"#
        let request = CheckRequestMapper().map(check)
        let input = OPAEnvoyInput.document(for: check, normalizedPath: request.http.path)
        #expect(input["version"] == ["ext_authz": "v3", "encoding": "protojson"])
        #expect(input["parsed_path"] == ["items", "a"])
        #expect(input["parsed_query"] == ["id": ["7"], "tag": ["a", "b c"]])
        #expect(input["parsed_body"] == ["name": "x", "n": 2])
        #expect(input["truncated_body"] == false)
        let attributes = try #require(input["attributes"])
        #expect(attributes["source"]?["principal"] == "spiffe://cluster.local/ns/frontend/sa/web")
        #expect(attributes["source"]?["address"]?["socketAddress"]?["address"] == "10.0.0.5")
        #expect(attributes["source"]?["address"]?["socketAddress"]?["portValue"] == 51000)
        #expect(attributes["request"]?["http"]?["method"] == "GET")
        #expect(attributes["request"]?["http"]?["path"] == "/items/a?id=7&tag=a&tag=b+c", "the normalized path")
        #expect(attributes["request"]?["http"]?["headers"]?["user-agent"] == "curl/8")
        #expect(attributes["tlsSession"]?["sni"] == "api.backend.svc.cluster.local")
    }

    @Test func truncatedBodiesAreMarked() {
        var http = Envoy_Service_Auth_V3_AttributeContext.HttpRequest()
        http.headers = ["content-type": "application/json", "content-length": "100"]
        http.body = #"{"a":"#
        let (body, truncated) = OPAEnvoyInput.parsedBody(http)
        #expect(body == .null)
        #expect(truncated)
    }

    @Test func rootPathParsesToOneEmptySegment() {
        #expect(OPAEnvoyInput.parsedPath("/") == [""])
        #expect(OPAEnvoyInput.parsedQuery(nil) == [:])
    }
}

/// `CheckRequest(attributes:)` is the inverse of the mapping: requests given as attributes reach CUSTOM providers
/// as the `CheckRequest` Envoy would have sent.
@Suite struct AttributesCheckRequestTests {
    @Test func mappingTheBuiltRequestGivesTheAttributesBack() throws {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<500 {
            let request = Self.randomRequest(using: &rng)
            let mapped = CheckRequestMapper().map(Envoy_Service_Auth_V3_CheckRequest(attributes: request))
            #expect(mapped == request, "\(request.attributes)")
        }
    }

    @Test func attributeRequestsGetOPAEnvoysInput() throws {
        let request = try AuthzRequest(attributes: [
            "source.principal": "cluster.local/ns/frontend/sa/web", "source.ip": "10.0.0.5",
            "request.method": "POST", "request.path": "/api/items?tag=a", "request.headers": ["x-team": "blue"],
            "request.auth.claims": ["iss": "https://idp", "sub": "alice", "groups": ["admins"]],
            "destination.namespace": "backend", "destination.workload_labels": ["app": "api"],
        ])
        let input = OPAEnvoyInput.document(forAttributesOf: request)
        let attributes = try #require(input["attributes"])
        #expect(attributes["source"]?["principal"] == "spiffe://cluster.local/ns/frontend/sa/web")
        #expect(attributes["request"]?["http"]?["path"] == "/api/items?tag=a")
        #expect(attributes["request"]?["http"]?["headers"]?["x-team"] == "blue")
        #expect(attributes["contextExtensions"]?["destination.namespace"] == "backend")
        #expect(attributes["metadataContext"]?["filterMetadata"]?["envoy.filters.http.jwt_authn"]?["https://idp"]?["sub"] == "alice")
        #expect(input["parsed_path"] == ["api", "items"])
        #expect(input["parsed_query"] == ["tag": ["a"]])
    }

    static func randomRequest(using rng: inout some RandomNumberGenerator) -> AuthzRequest {
        var r = AuthzRequest()
        func maybe() -> Bool { Bool.random(using: &rng) }
        if maybe() {
            r.source.principal = ["cluster.local/ns/a/sa/b", "td/ns/prod/sa/api", "web.example.com"].randomElement(using: &rng)!
        }
        if maybe() { r.source.ip = IPAddress(["10.0.0.1", "192.168.1.9", "2001:db8::1"].randomElement(using: &rng)!) }
        if maybe() { r.remoteIP = IPAddress("203.0.113.7") } else { r.remoteIP = r.source.ip }
        if maybe() { r.destination.ip = IPAddress("10.1.0.2") }
        if maybe() { r.destination.port = Int.random(in: 1...65535, using: &rng) }
        r.destination.namespace = ["default", "prod", "backend"].randomElement(using: &rng)!
        if maybe() { r.destination.labels = ["app": "api", "version": "v\(Int.random(in: 1...3, using: &rng))"] }
        if maybe() { r.http.method = ["GET", "POST", "DELETE"].randomElement(using: &rng)! }
        if maybe() { r.http.host = ["api.backend:8080", "details"].randomElement(using: &rng)! }
        if maybe() {
            r.http.path = ["/", "/api/items", "/admin/x.y"].randomElement(using: &rng)!
            if maybe() { r.http.query = "id=\(Int.random(in: 0...9, using: &rng))&tag=a" }
        }
        var headers = Headers()
        if maybe() { headers.add("x-team", "blue") }
        if maybe() { headers.add("user-agent", "curl/8") }
        r.http.headers = headers
        if let remote = r.remoteIP, remote != r.source.ip { r.http.headers.add("x-forwarded-for", remote.description) }
        if maybe() { r.connectionSNI = "api.backend.svc.cluster.local" }
        if maybe() {
            var claims: [Value: Value] = ["iss": "https://idp.example", "sub": .string("user-\(Int.random(in: 0...9, using: &rng))")]
            if maybe() { claims["aud"] = "bookinfo" }
            if maybe() { claims["groups"] = ["admins", "dev"] }
            if maybe() { claims["azp"] = "mobile" }
            r.auth = VerifiedClaimsHeader.requestAuth(claims: .object(claims))
        }
        return r
    }
}

/// A connection's checks are serialized from kept bytes for the fields its requests share; each must decode as the
/// whole `CheckRequest` of its own parts, whatever the connection sent before.
@Suite struct CheckRequestEncoderTests {
    static func parts(port: Int = 51000, token: String? = "alice", labels: [String: String] = ["app": "details"],
                      path: String = "/a") -> CheckRequestParts {
        CheckRequestParts(
            source: .init(identity: try! SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/sleep"), address: "10.0.0.5",
                          port: port),
            destination: .init(identity: try! SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/details"),
                               address: "10.0.0.9", port: 9080),
            namespace: "default", labels: labels, requestID: "id-\(path)", method: "GET", scheme: "https",
            host: "details", target: path, headers: [(":path", path), ("x-tenant", "acme"), ("X-Tenant", "beta")],
            serverName: "details",
            verifiedTokens: token.map { [(issuer: "https://issuer.example", payload: ["sub": .string($0), "scope": "read"])] } ?? [])
    }

    @Test func everyCheckDecodesAsItsWholeRequest() throws {
        var encoder = CheckRequestEncoder()
        let sequence = [
            Self.parts(), Self.parts(path: "/b"), Self.parts(token: "bob"), Self.parts(token: nil), Self.parts(token: "bob"),
            Self.parts(port: 51001), Self.parts(labels: ["app": "details", "version": "v2"]), Self.parts(),
        ]
        for parts in sequence {
            let decoded = try Envoy_Service_Auth_V3_CheckRequest(serializedBytes: encoder.encode(parts))
            #expect(decoded == parts.checkRequest)
        }
    }

    /// The request's own fields are written by hand: they must decode as the message swift-protobuf serializes,
    /// for any request (empty fields, repeated names in any case, many fields, bodies of text and of bytes, text
    /// beyond ASCII, lengths past one varint byte).
    @Test func requestFieldsWrittenByHandDecodeAsTheMessage() throws {
        var random = SplitMix64(seed: 7)
        let names = ["x-a", "X-A", "accept", "Accept", "cookie", "x-long", ":path", "x-ünï", ""]
        let values = ["", "v", "a,b", "ünïcödé ✓", String(repeating: "x", count: 200), String(repeating: "y", count: 20_000)]
        for round in 0..<400 {
            var parts = CheckRequestParts()
            parts.requestID = random.next() % 3 == 0 ? nil : "id-\(round)"
            parts.method = ["GET", "POST", ""][Int(random.next() % 3)]
            parts.scheme = ["https", "http", ""][Int(random.next() % 3)]
            parts.host = ["details", "", "ünï.example:8080"][Int(random.next() % 3)]
            parts.target = ["/", "/a?b=c", "", "/" + String(repeating: "p", count: 300)][Int(random.next() % 4)]
            parts.httpProtocol = ["HTTP/1.1", "HTTP/2", ""][Int(random.next() % 3)]
            // Up to 40 fields: past 32 the repeated names are found through an index.
            parts.headers = (0..<Int(random.next() % 41)).map { _ in
                (names[Int(random.next() % UInt64(names.count))], values[Int(random.next() % UInt64(values.count))])
            }
            switch random.next() % 4 {
            case 0: parts.body = Array("a body ✓".utf8)
            case 1: parts.body = [0xff, 0x00, 0xc3]
            default: parts.body = []
            }
            parts.bodyAsBytes = random.next() % 2 == 0
            var written: [UInt8] = []
            parts.appendRequestFields(to: &written)
            var expected = Envoy_Service_Auth_V3_CheckRequest()
            parts.setRequestFields(&expected)
            #expect(try Envoy_Service_Auth_V3_CheckRequest(serializedBytes: written) == expected, "round \(round)")
            if parts.headers.count <= 1 {
                // With no map order to differ in, the bytes are swift-protobuf's own.
                #expect(written == (try expected.serializedBytes() as [UInt8]), "round \(round)")
            }
        }
    }

    /// Text goes as `body` unless the proxy packs it as bytes (Istio's `packAsBytes`); bytes that are not UTF-8
    /// always go as `raw_body`.
    @Test func aBodyGoesAsTextOrAsBytes() {
        var parts = CheckRequestParts()
        parts.body = Array(#"{"n":1}"#.utf8)
        #expect(parts.checkRequest.attributes.request.http.body == #"{"n":1}"#)
        #expect(parts.checkRequest.attributes.request.http.rawBody.isEmpty)
        parts.bodyAsBytes = true
        #expect(parts.checkRequest.attributes.request.http.body.isEmpty)
        #expect(Array(parts.checkRequest.attributes.request.http.rawBody) == Array(#"{"n":1}"#.utf8))
        #expect(parts.checkRequest.attributes.request.http.size == 7)
    }

    @Test func repeatedNamesAreJoinedInTheOrderReceived() {
        var parts = CheckRequestParts()
        parts.headers = [("X-A", "1"), ("b", "2"), ("x-a", "3"), ("X-a", "4")]
        #expect(parts.joinedHeaders().map { "\($0.name)=\($0.value)" } == ["x-a=1,3,4", "b=2"])
        parts.headers = (0..<40).map { ("H\($0 % 3)", "\($0)") }
        let joined = parts.joinedHeaders()
        #expect(joined.map(\.name) == ["h0", "h1", "h2"])
        #expect(joined[1].value == stride(from: 1, to: 40, by: 3).map(String.init).joined(separator: ","))
    }
}

