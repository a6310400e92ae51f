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
        // Backslashes are separators (Istio's BASE), and `;` parameters are dropped from segments (Envoy).
        ("\\admin\\x", "/admin/x"),
        ("/admin\\x", "/admin/x"),
        ("/public/..\\admin/x", "/admin/x"),
        ("/public/..;/admin/x", "/admin/x"),
        ("/public/..;a=b/admin/x", "/admin/x"),
        ("/admin;jsessionid=1/x", "/admin/x"),
        ("/public/.;x/admin", "/public/admin"),
        // Dot segments are removed before slashes are merged, as Envoy orders normalize_path and merge_slashes.
        ("/a//../b", "/a/b"),
    ]

    @Test(arguments: bypasses)
    func normalizesAsEnvoyDoes(input: String, expected: String) {
        #expect(PathNormalizer().normalize(input) == .path(expected))
    }

    @Test func reservedEscapesStayEncodedWithUppercaseHex() {
        let normalizer = PathNormalizer()
        #expect(normalizer.normalize("/a%2fb") == .path("/a%2Fb"))
        #expect(normalizer.normalize("/a%3fb") == .path("/a%3Fb"))
        #expect(normalizer.normalize("/a%3bb") == .path("/a%3Bb"))
        #expect(normalizer.normalize("/%252F") == .path("/%252F"))
        #expect(normalizer.normalize("/100%") == .path("/100%"))
        #expect(normalizer.normalize("/%zz") == .path("/%zz"))
    }

    @Test func nulAndControlCharactersAreRefusedWhateverTheOptions() {
        for normalizer in [PathNormalizer(), PathNormalizer(normalizePath: false, mergeSlashes: false)] {
            #expect(normalizer.normalize("/admin%00/x").path == nil)
            #expect(normalizer.normalize("/admin%00").path == nil)
            #expect(normalizer.normalize("/a\u{0}b").path == nil)
            #expect(normalizer.normalize("/a\tb").path == nil)
        }
        #expect(PathNormalizer().normalize("/admin%000").path == nil)
        #expect(PathNormalizer().normalize("/a%0").path == "/a%0")
    }

    @Test func mergingSlashesCanBeTurnedOff() {
        let normalizer = PathNormalizer(mergeSlashes: false)
        #expect(normalizer.normalize("//admin") == .path("//admin"))
        #expect(normalizer.normalize("/a/../admin") == .path("/admin"))
    }

    @Test func withoutNormalizePathOnlySlashesAreMerged() {
        let normalizer = PathNormalizer(normalizePath: false)
        #expect(normalizer.normalize("/a/../admin") == .path("/a/../admin"))
        #expect(normalizer.normalize("//%61dmin\\x") == .path("/%61dmin\\x"))
        #expect(normalizer.normalize("/public/..;/admin") == .path("/public/..;/admin"))
    }

    @Test func pathParametersOfOrdinarySegmentsCanBeKept() {
        let normalizer = PathNormalizer(stripPathParameters: false)
        #expect(normalizer.normalize("/admin;x=1/y") == .path("/admin;x=1/y"))
        #expect(normalizer.normalize("/public/..;x=1/admin") == .path("/admin"))
    }

    @Test func escapedSlashesFollowTheConfiguredAction() {
        let decoding = PathNormalizer(escapedSlashes: .unescapeAndForward)
        #expect(decoding.normalize("/a%2F..%2Fadmin") == .path("/admin"))
        #expect(decoding.normalize("/%5Cadmin") == .path("/admin"))
        #expect(decoding.normalize("/%5cadmin%2fx") == .path("/admin/x"))
        #expect(PathNormalizer().normalize("/a%2F..%2Fadmin") == .path("/a%2F..%2Fadmin"))
        let rejecting = PathNormalizer(escapedSlashes: .rejectRequest)
        #expect(rejecting.normalize("/a%2fb").path == nil)
        #expect(rejecting.normalize("/a%5Cb").path == nil)
        #expect(rejecting.normalize("/a%2Eb") == .path("/a.b"))
    }

    /// The shortcut for paths that are already normal must agree with the full normalization on every path.
    @Test(arguments: [(true, false), (false, false), (true, true), (false, true)])
    func shortcutAgreesWithFullNormalization(mergeSlashes: Bool, normalizePath: Bool) {
        let normalizer = PathNormalizer(normalizePath: normalizePath, mergeSlashes: mergeSlashes)
        let alphabet: [Character] = ["/", "/", ".", ".", "a", "%", "2", "f", "\\", "é", ";"]
        var random = SeededGenerator(seed: 7)
        var normalSeen = 0
        for _ in 0..<20_000 {
            let path = String((0..<Int.random(in: 0...7, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            if normalizer.isNormal(path) { normalSeen += 1 }
            #expect(normalizer.normalize(path) == normalizer.normalizeBytes(Array(path.utf8)), "\(path)")
        }
        #expect(normalSeen > 1_000, "the shortcut is taken")
    }
}
