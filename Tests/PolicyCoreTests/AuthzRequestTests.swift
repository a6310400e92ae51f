@testable import PolicyCore
import Testing

@Suite struct AuthzRequestTests {
    @Test func readsEveryFlatAttribute() throws {
        let request = try AuthzRequest(attributes: [
            "source.principal": "spiffe://cluster.local/ns/default/sa/sleep",
            "source.ip": "10.0.0.5",
            "remote.ip": "203.0.113.9",
            "destination.ip": "10.0.0.9",
            "destination.port": 9080,
            "destination.namespace": "default",
            "destination.workload_labels": ["app": "details"],
            "request.host": "details:9080",
            "request.method": "GET",
            "request.path": "/details/1?x=1",
            "request.headers": ["User-Agent": "curl", "X-Multi": ["a", "b"]],
            "request.auth.claims": ["iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io", "aud": ["a"]],
            "request.auth.audiences": ["a"],
            "connection.sni": "details.default.svc",
        ])
        #expect(request.source.principal == "cluster.local/ns/default/sa/sleep")
        #expect(request.source.namespace == "default")
        #expect(request.source.identity?.serviceAccount == "sleep")
        #expect(request.destination.port == 9080)
        #expect(request.destination.labels == ["app": "details"])
        #expect(request.http.path == "/details/1")
        #expect(request.http.query == "x=1")
        #expect(request.http.headers["user-agent"] == "curl")
        #expect(request.http.headers["x-multi"] == "a,b")
        #expect(request.auth?.principal == "testing@secure.istio.io/testing@secure.istio.io", "derived from iss and sub")
        #expect(request.connectionSNI == "details.default.svc")
    }

    @Test func flatFormRoundTrips() throws {
        let request = try AuthzRequest(attributes: [
            "source.principal": "cluster.local/ns/a/sa/b", "request.path": "/x?y=1", "destination.port": 80,
            "request.headers": ["x-a": "1"], "request.auth.principal": "iss/sub",
        ])
        #expect(try AuthzRequest(attributes: request.attributes) == request)
    }

    @Test func unknownAttributeSuggestsTheRightName() {
        #expect {
            try AuthzRequest(attributes: ["request.header": ["a": "b"]])
        } throws: { error in
            (error as? AuthzRequest.AttributeError)?.description == "`request.header`: unknown attribute; did you mean `request.headers`?"
        }
    }

    @Test func rejectsBadValues() {
        #expect(throws: AuthzRequest.AttributeError.self) { try AuthzRequest(attributes: ["source.ip": "10.0.0.256"]) }
        #expect(throws: AuthzRequest.AttributeError.self) { try AuthzRequest(attributes: ["destination.port": 70000]) }
        #expect(throws: AuthzRequest.AttributeError.self) { try AuthzRequest(attributes: ["request.method": 1]) }
    }

    @Test func headerMapsAreReadCaseInsensitively() throws {
        let taken = Headers(["x-tenant": "acme", ":path": "/a"])
        #expect(taken["X-Tenant"] == "acme")
        #expect(taken[":path"] == "/a")
        #expect(taken.count == 2)
        // A capital: names are added one by one, and those differing only in case are joined.
        let mixed = Headers(["X-Tenant": "acme", "x-tenant": "beta", "Accept": "*/*"])
        #expect(["acme,beta", "beta,acme"].contains(mixed["x-tenant"] ?? ""))
        #expect(mixed["accept"] == "*/*")
        #expect(mixed.count == 2)
    }

    /// A capital anywhere in a name, short (stored inline) or long, sends it through normalization; the bytes
    /// around `A`–`Z` (`@`, `[`, lowercase, non-ASCII) do not.
    @Test func capitalsAreFoundAnywhereInAName() {
        for name in ["x-tenant", "a-header-name-longer-than-fifteen-bytes"] {
            #expect(!Headers.hasCapital(name))
            for i in 0..<name.utf8.count {
                for capital in ["A", "Z"] {
                    var bytes = Array(name.utf8)
                    bytes[i] = UInt8(ascii: capital == "A" ? "A" : "Z")
                    #expect(Headers.hasCapital(String(decoding: bytes, as: UTF8.self)), "\(i)")
                }
            }
        }
        #expect(!Headers.hasCapital("@[`{-é"))
        #expect(!Headers.hasCapital(""))
    }

    @Test func targetsSplitIntoPathAndQuery() {
        let cases: [(String, String, String?)] = [
            ("/a/b", "/a/b", nil), ("/a/b?x=1", "/a/b", "x=1"), ("/a?x=1?y=2", "/a", "x=1?y=2"), ("/a?", "/a", ""),
            ("/a#frag", "/a", nil), ("/a?x=1#frag?y", "/a", "x=1"), ("/a#f?x=1", "/a", nil), ("?x", "", "x"),
            ("/a-path-longer-than-fifteen-bytes/é?q=ü", "/a-path-longer-than-fifteen-bytes/é", "q=ü"), ("", "", nil),
        ]
        for (target, path, query) in cases {
            let split = AuthzRequest.HTTPAttributes.split(target: target)
            #expect(split.path == path && split.query == query, "\(target)")
        }
    }

    @Test func headersAreCaseInsensitive() {
        var headers = Headers()
        headers.add("Content-Type", "a")
        #expect(headers["content-type"] == "a")
        #expect(headers["CONTENT-TYPE"] == "a")
    }
}
