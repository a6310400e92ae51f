@testable import AuthzPolicy
import Testing

@Suite struct StringMatchTests {
    @Test(arguments: [
        ("*", "anything", true), ("*", "", false),
        ("/api/*", "/api/v1", true), ("/api/*", "/ap", false), ("/api/*", "/api/", true),
        ("*.html", "/index.html", true), ("*.html", "/index.htm", false),
        ("/exact", "/exact", true), ("/exact", "/exact/", false),
        ("a*b", "a*b", true), ("a*b", "aXb", false),
    ])
    func patternSemantics(pattern: String, value: String, expected: Bool) {
        #expect(StringPattern(pattern).matches(value) == expected)
        #expect(StringMatchSet([pattern]).matches(value) == expected)
    }

    @Test func matchSetWithManyAffixesUsesTables() {
        let prefixes = (0..<50).map { "/p\($0)/*" }
        let suffixes = (0..<50).map { "*.s\($0)" }
        let set = StringMatchSet(prefixes + suffixes + ["/exact"])
        #expect(set.matches("/p7/x"))
        #expect(set.matches("/p49/"))
        #expect(!set.matches("/p50/x"))
        #expect(set.matches("/file.s42"))
        #expect(!set.matches("/file.s420"))
        #expect(set.matches("/exact"))
        #expect(!set.matches("/other"))
    }

    @Test func ignoreCaseLowersStoredValues() {
        let set = StringMatchSet(["Example.COM", "*.Corp.com"], ignoreCase: true)
        #expect(set.matches("example.com"))
        #expect(set.matches("a.corp.com"))
        #expect(!set.matches("example.org"))
    }

    @Test func bytewiseComparisonDoesNotNormalizeUnicode() {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed, "Swift's String equality normalises")
        #expect(!StringMatchSet([composed]).matches(decomposed), "Envoy compares bytes")
    }
}
