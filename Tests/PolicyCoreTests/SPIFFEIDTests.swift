import PolicyCore
import Testing

struct SPIFFEIDTests {
    @Test(arguments: [
        ("cluster.local/ns/default/sa/sleep", "cluster.local", "default", "sleep"),
        ("td/ns/foo/x/sa/bar/extra", "td", "foo", "bar"),
        ("td/ns/foo", "td", nil, nil),
        ("td/sa/x", "td", nil, nil),
        ("td/ns/ns/sa/sa", "td", "ns", "sa"),
        ("td/x/ns/a/ns/b/sa/c", "td", "a", "c"),
        ("td/ns/a/sa", "td", "a", nil),
        ("td", "td", nil, nil),
        ("example.org_1-x/ns/A.b-c_d/sa/Z9", "example.org_1-x", "A.b-c_d", "Z9"),
    ] as [(String, String, String?, String?)])
    func readsIstioParts(principal: String, trustDomain: String, namespace: String?, serviceAccount: String?) throws {
        let id = try SPIFFEID(principal: principal)
        #expect(id.trustDomain == trustDomain)
        #expect(id.namespace == namespace)
        #expect(id.serviceAccount == serviceAccount)
        #expect(id.principal == principal)
        #expect(id.uri == "spiffe://" + principal)
        #expect(try SPIFFEID(parsing: id.uri) == id)
    }

    @Test(arguments: [
        ("", "the trust domain is empty"),
        ("/ns/a/sa/b", "the trust domain is empty"),
        ("Cluster.local/ns/a", "the trust domain may hold only lowercase letters, digits, `.`, `-` and `_`"),
        ("td:8080/ns/a", "the trust domain may hold only lowercase letters, digits, `.`, `-` and `_`"),
        ("td/", "the path ends with `/`"),
        ("td/ns/a/", "the path ends with `/`"),
        ("td//ns/a", "the path has an empty segment"),
        ("td/ns/../sa/b", "the path has a `.` or `..` segment"),
        ("td/./x", "the path has a `.` or `..` segment"),
        ("td/ns/a%2Fb", "path segments may hold only letters, digits, `.`, `-` and `_`"),
        ("td/ns/a?x=1", "path segments may hold only letters, digits, `.`, `-` and `_`"),
    ])
    func refusesWhatTheStandardForbids(principal: String, why: String) {
        #expect(throws: SPIFFEID.ParseError(message: "`\(principal)` is not a SPIFFE ID: \(why)")) {
            try SPIFFEID(principal: principal)
        }
    }

    @Test func theSchemeIsRequiredWhenParsingAURI() {
        #expect(throws: SPIFFEID.ParseError.self) { try SPIFFEID(parsing: "cluster.local/ns/a/sa/b") }
        #expect(throws: SPIFFEID.ParseError.self) { try SPIFFEID(parsing: "SPIFFE://cluster.local/ns/a/sa/b") }
        #expect(throws: SPIFFEID.ParseError.self) { try SPIFFEID(parsing: "https://cluster.local/ns/a/sa/b") }
    }

    @Test func eitherSpellingParses() throws {
        #expect(try SPIFFEID(principalOrURI: "spiffe://td/a") == SPIFFEID(principalOrURI: "td/a"))
    }

    @Test func lengthIsBounded() throws {
        let longest = "td/" + String(repeating: "a", count: SPIFFEID.maximumLength - "spiffe://td/".count)
        #expect(try SPIFFEID(principal: longest).uri.utf8.count == SPIFFEID.maximumLength)
        #expect(throws: SPIFFEID.ParseError.self) { try SPIFFEID(principal: longest + "a") }
    }

    @Test func kubernetesForm() throws {
        let id = try SPIFFEID(trustDomain: "cluster.local", namespace: "default", serviceAccount: "sleep")
        #expect(id.uri == "spiffe://cluster.local/ns/default/sa/sleep")
        #expect(id.isMember(of: "cluster.local"))
        #expect(!id.isMember(of: "example.org"))
        #expect(throws: SPIFFEID.ParseError.self) {
            try SPIFFEID(trustDomain: "cluster.local", namespace: "a/b", serviceAccount: "")
        }
    }

    @Test func peerIdentitiesBecomePrincipals() {
        #expect(SPIFFEID.principal(ofPeer: "spiffe://cluster.local/ns/a/sa/b") == "cluster.local/ns/a/sa/b")
        #expect(SPIFFEID.principal(ofPeer: "cluster.local/ns/a/sa/b") == "cluster.local/ns/a/sa/b")
        #expect(SPIFFEID.principal(ofPeer: "web.example.com") == "web.example.com")
    }

    @Test func aRequestPeerCarriesItsIdentity() throws {
        let peer = AuthzRequest.Source(peer: try SPIFFEID(parsing: "spiffe://cluster.local/ns/prod/sa/api"))
        #expect(peer.principal == "cluster.local/ns/prod/sa/api")
        #expect(peer.namespace == "prod")
        #expect(peer.identity?.serviceAccount == "api")
        #expect(AuthzRequest.Source(principal: "td//bad").identity == nil)
    }
}
