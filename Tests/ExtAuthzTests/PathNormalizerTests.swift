@testable import ExtAuthz
import PolicyCore
import Testing
import WardenTesting

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

    /// The shortcut for paths that are already normal must agree with the full normalization on every path.
    @Test(arguments: [(true, false), (false, false), (true, true), (false, true)])
    func shortcutAgreesWithFullNormalization(mergeSlashes: Bool, decodeEscapedSlashes: Bool) {
        let normalizer = PathNormalizer(mergeSlashes: mergeSlashes, decodeEscapedSlashes: decodeEscapedSlashes)
        let alphabet: [Character] = ["/", "/", ".", ".", "a", "%", "2", "f", "\\", "é"]
        var random = SeededGenerator(seed: 7)
        var normalSeen = 0
        for _ in 0..<20_000 {
            let path = String((0..<Int.random(in: 0...7, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            if normalizer.isNormal(path) { normalSeen += 1 }
            #expect(normalizer.normalize(path) == normalizer.normalizeBytes(path), "\(path)")
        }
        #expect(normalSeen > 1_000, "the shortcut is taken")
    }
}
