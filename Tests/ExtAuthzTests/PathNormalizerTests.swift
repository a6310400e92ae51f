import ExtAuthz
import Testing

@Suite struct PathNormalizerTests {
    static let bypasses: [(String, String)] = [
        ("/admin", "/admin"),
        ("//admin", "/admin"),
        ("/a/../admin", "/admin"),
        ("/%61dmin", "/admin"),
        ("/%2e%2e/admin", "/admin"),
        ("/./admin", "/admin"),
        ("/a/./b/../../admin", "/admin"),
        ("/../../admin", "/admin"),
        ("///a//b", "/a/b"),
        ("/admin/", "/admin/"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("", "/"),
        ("admin", "/admin"),
        ("/%7euser", "/~user"),
    ]

    @Test(arguments: bypasses)
    func normalizesAsEnvoyDoes(input: String, expected: String) {
        #expect(PathNormalizer().normalize(input) == expected)
    }

    @Test func reservedEscapesStayEncodedWithUppercaseHex() {
        let normalizer = PathNormalizer()
        #expect(normalizer.normalize("/a%2fb") == "/a%2Fb")
        #expect(normalizer.normalize("/a%3fb") == "/a%3Fb")
        #expect(normalizer.normalize("/100%") == "/100%")
        #expect(normalizer.normalize("/%zz") == "/%zz")
    }

    @Test func mergingSlashesCanBeTurnedOff() {
        let normalizer = PathNormalizer(mergeSlashes: false)
        #expect(normalizer.normalize("//admin") == "//admin")
        #expect(normalizer.normalize("/a/../admin") == "/admin")
    }

    @Test func escapedSlashesDecodeOnlyWhenConfigured() {
        let decoding = PathNormalizer(mergeSlashes: true, decodeEscapedSlashes: true)
        #expect(decoding.normalize("/a%2F..%2Fadmin") == "/admin")
        #expect(decoding.normalize("/%5Cadmin") == "/admin")
        #expect(PathNormalizer().normalize("/a%2F..%2Fadmin") == "/a%2F..%2Fadmin")
    }
}
