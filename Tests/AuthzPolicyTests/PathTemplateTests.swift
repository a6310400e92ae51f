@testable import AuthzPolicy
import PolicyCore
import Testing

@Suite struct PathTemplateTests {
    @Test(arguments: [
        ("/v1/{*}/items", "/v1/abc/items", true),
        ("/v1/{*}/items", "/v1/a/b/items", false),
        ("/v1/{*}/items", "/v1//items", false),
        ("/v1/{*}", "/v1/x=1", false),  // `=` is not in Envoy's operator class
        ("/v1/{**}", "/v1/", true),
        ("/v1/{**}", "/v1/a/b/c", true),
        ("/v1/{**}", "/v1", false),
        ("/{**}/meta", "/a/b/meta", true),
        ("/{**}/meta", "//meta", true),
        ("/{**}/meta", "/a/b/meta/x", false),
        ("/{*}/", "/a/", true),
        ("/{*}/", "/a", false),
        ("/a/{*}/b", "/a/%20/b", true),
    ])
    func matching(template: String, path: String, expected: Bool) throws {
        let t = try PathTemplate.parse(template).get()
        #expect(t.matches(path) == expected)
    }

    @Test(arguments: ["/a/{**}/{*}", "/a/{**}/{**}", "/a/{x}", "/a/b{*}", "/a/{*}/c d", "/a//{*}", "a/{*}"])
    func invalidTemplates(template: String) {
        #expect(PathTemplate.validate(template) != nil)
    }

    @Test(arguments: ["/a/*", "/a/b", "*", "/{*}", "/a/{**}", "/{*}/x/{**}"])
    func validPaths(path: String) {
        #expect(PathTemplate.validate(path) == nil)
    }
}

@Suite struct IPSetTests {
    @Test func mergesAndSearchesRanges() {
        let set = IPSet(["10.0.0.0/8", "10.1.0.0/16", "192.168.0.1", "192.168.0.2", "::1", "fd00::/8"].compactMap(CIDR.init))
        for ip in ["10.0.0.0", "10.255.255.255", "192.168.0.1", "192.168.0.2", "::1", "fdff::1"] {
            #expect(set.contains(IPAddress(ip)!), "\(ip)")
        }
        for ip in ["9.255.255.255", "11.0.0.0", "192.168.0.3", "::2", "fe00::1", "::ffff:10.0.0.1"] {
            #expect(!set.contains(IPAddress(ip)!), "\(ip)")
        }
    }

    @Test func wholeSpace() {
        let set = IPSet([CIDR("0.0.0.0/0")!, CIDR("::/0")!])
        #expect(set.contains(IPAddress("1.2.3.4")!))
        #expect(set.contains(IPAddress("2001::1")!))
    }
}

@Suite struct RequestPrincipalPatternTests {
    @Test(arguments: [
        ("*", "any", "any"),
        ("iss/sub", "iss", "sub"),
        ("https://a.b/c/sub", "https://a.b/c", "sub"),
        ("iss/*", "iss", "any"),
        ("iss/pre*", "iss", "pre*"),
        ("*/sub", "any", "sub"),
        ("*suf/sub", "*suf", "sub"),
        ("*suffix", "any", "*suffix"),
        ("prefix*", "prefix*", "any"),
    ])
    func splitting(value: String, issuer: String, subject: String) {
        let (i, s) = Predicate.requestPrincipalPattern(value)
        #expect(describe(i) == issuer)
        #expect(describe(s) == subject)
    }

    private func describe(_ p: StringPattern) -> String {
        switch p {
        case .presence: "any"
        case .exact(let v): v
        case .prefix(let v): v + "*"
        case .suffix(let v): "*" + v
        }
    }
}
