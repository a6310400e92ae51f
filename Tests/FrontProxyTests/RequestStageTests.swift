import ExtAuthz
import FrontProxy
import Identity
import NIOCore
import NIOHTTP1
import PolicyCore
import SwiftProtobuf
import Testing

@Suite("Request stages: admission, forwarding and the check's answer")
struct RequestStageTests {
    static let peer = try! SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/sleep")
    static let own = try! SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/details")
    static let mtls = ConnectionFacts(
        sourceAddress: "10.0.0.7", sourcePort: 40000, localAddress: "10.0.0.9", localPort: 15006, isTLS: true,
        peerIdentity: peer, peerCertificateHash: String(repeating: "ab", count: 32), serverName: "details")
    static let plaintext = ConnectionFacts(sourceAddress: "10.0.0.7", sourcePort: 40000)

    static func head(_ method: HTTPMethod = .GET, _ uri: String = "/details/1", _ headers: [(String, String)] = [("host", "details")],
                     version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    static func admit(_ head: HTTPRequestHead, _ connection: ConnectionFacts = mtls) -> Result<ProxiedRequest, LocalResponse> {
        RequestAdmission.admit(head, connection: connection, identity: .init(ownSPIFFEID: own.uri), makeRequestID: { "generated-id" })
    }

    @Test func headsThatCouldBeReadTwoWaysAreRefusedAndCloseTheConnection() throws {
        let refused: [HTTPRequestHead] = [
            Self.head(.POST, "/", [("host", "d"), ("content-length", "5"), ("transfer-encoding", "chunked")]),
            Self.head(.POST, "/", [("host", "d"), ("content-length", "5"), ("content-length", "6")]),
            Self.head(.POST, "/", [("host", "d"), ("content-length", "5, 5")]),
            Self.head(.POST, "/", [("host", "d"), ("content-length", "-1")]),
            Self.head(.POST, "/", [("host", "d"), ("transfer-encoding", "chunked, gzip")]),
            Self.head(.POST, "/", [("host", "d"), ("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")]),
            Self.head(.GET, "/", []),
            Self.head(.GET, "/", [("host", "a"), ("host", "b")]),
            Self.head(.CONNECT, "details:443", [("host", "details")]),
            Self.head(.GET, "http://user@details/x", [("host", "details")]),
            Self.head(.GET, "http:///x", [("host", "details")]),
            Self.head(.GET, "ftp://details/x", [("host", "details")]),
            Self.head(.GET, "http://details/x", [("host", "details")], version: .http2),
        ]
        for head in refused {
            guard case .failure(let response) = Self.admit(head) else {
                Issue.record("accepted \(head)")
                continue
            }
            #expect(response.status == 400)
            #expect(response.closeConnection)
        }
        // HTTP/1.0 may omit Host.
        #expect((try? Self.admit(Self.head(.GET, "/", [], version: .http1_0)).get()) != nil)
    }

    /// RFC 9112 §3.2.2: a target in absolute form, as a client sends it to its configured HTTP proxy, is taken; its
    /// authority replaces the `Host` sent.
    @Test func anAbsoluteFormTargetBecomesAPathAndAHost() throws {
        for (target, path, host) in [
            ("http://Details.default:9080/x?y=1", "/x?y=1", "Details.default:9080"),
            ("HTTPS://details?q", "/?q", "details"), ("http://[::1]:8080", "/", "[::1]:8080"),
        ] {
            let request = try Self.admit(Self.head(.GET, target, [("host", "other"), ("host", "more")])).get()
            #expect(request.target == path)
            #expect(request.headers["host"] == [host])
        }
        let origin = try Self.admit(Self.head(.GET, "/http://details/x")).get()
        #expect(origin.target == "/http://details/x")
        #expect(origin.headers["host"] == ["details"])
    }

    /// With a normalizer, the path is normalized before the check and forwarding, as Envoy does (the query kept);
    /// a path the normalizer refuses gets 400. Without one, the target is left as received.
    @Test func thePathIsNormalizedAsTheServerNormalizesIt() throws {
        let normalizer = PathNormalizer()
        func admitted(_ target: String, _ normalizer: PathNormalizer? = normalizer) -> Result<ProxiedRequest, LocalResponse> {
            RequestAdmission.admit(Self.head(.GET, target), connection: Self.mtls, identity: .init(), pathNormalizer: normalizer)
        }
        for (target, expected) in [
            ("/x/../admin?q=1", "/admin?q=1"), ("//a//b", "/a/b"), ("/%61dmin", "/admin"), ("/a;x=1/b", "/a/b"),
            ("/a%2Fb", "/a%2Fb"), ("/details/1", "/details/1"),
        ] {
            #expect(try admitted(target).get().target == expected, "\(target)")
        }
        guard case .failure(let refusal) = admitted("/a%00b") else { Issue.record("%00 forwarded"); return }
        #expect(refusal.status == 400)
        #expect(try admitted("/x/../admin", nil).get().target == "/x/../admin")
        let star = RequestAdmission.admit(
            Self.head(.OPTIONS, "*"), connection: Self.mtls, identity: .init(), pathNormalizer: normalizer)
        #expect(try star.get().target == "*")
    }

    /// HTTP/2's cookie crumbs become the one `cookie` field HTTP/1.1 has; an HTTP/1.1 request's fields are left as sent.
    @Test func cookieCrumbsAreJoined() throws {
        let crumbs: [(String, String)] = [("host", "d"), ("cookie", "a=1"), ("x", "y"), ("cookie", "b=2")]
        let h2 = try Self.admit(Self.head(.GET, "/", crumbs, version: .http2)).get()
        #expect(h2.headers["cookie"] == ["a=1; b=2"])
        let h1 = try Self.admit(Self.head(.GET, "/", crumbs)).get()
        #expect(h1.headers["cookie"] == ["a=1", "b=2"])
    }

    /// The proxy answers `Expect: 100-continue` itself: the field is not forwarded; another expectation is.
    @Test func aContinueExpectationIsTheProxys() throws {
        let expecting = try Self.admit(Self.head(.PUT, "/", [("host", "d"), ("expect", "100-Continue")])).get()
        #expect(expecting.expectsContinue)
        #expect(expecting.headers["expect"].isEmpty)
        let old = try Self.admit(Self.head(.PUT, "/", [("expect", "100-continue")], version: .http1_0)).get()
        #expect(!old.expectsContinue)
        #expect(old.headers["expect"] == ["100-continue"])
        let other = try Self.admit(Self.head(.PUT, "/", [("host", "d"), ("expect", "something-else")])).get()
        #expect(!other.expectsContinue)
        #expect(other.headers["expect"] == ["something-else"])
    }

    @Test func theProxyOwnsTheForwardingHeaders() throws {
        let request = try Self.admit(Self.head(.GET, "/x", [
            ("host", "details"), ("x-forwarded-client-cert", "By=spiffe://evil;URI=spiffe://cluster.local/ns/x/sa/admin"),
            ("x-forwarded-for", "203.0.113.1"), ("x-forwarded-proto", "http"), ("connection", "keep-alive, x-private"),
            ("x-private", "hop"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("upgrade", "h2c"),
            ("X-Warden-Verified-Claims", "e30"), ("x-request-id", "abc-123"), ("accept", "*/*"),
        ])).get()
        let headers = request.headers
        #expect(headers["x-forwarded-client-cert"] == [
            "By=spiffe://cluster.local/ns/default/sa/details;Hash=\(String(repeating: "ab", count: 32));URI=spiffe://cluster.local/ns/default/sa/sleep",
        ])
        #expect(headers["x-forwarded-for"] == ["203.0.113.1, 10.0.0.7"])
        #expect(headers["x-forwarded-proto"] == ["https"])
        #expect(request.requestID == "abc-123")
        for gone in ["connection", "x-private", "keep-alive", "te", "upgrade", "x-warden-verified-claims"] {
            #expect(!headers.contains(name: gone), "\(gone) was forwarded")
        }
        #expect(headers["accept"] == ["*/*"])

        // Plaintext: a client's XFCC is removed and none is set; a missing request id is made.
        let plain = try Self.admit(Self.head(.GET, "/", [("host", "d"), ("x-forwarded-client-cert", "URI=spiffe://forged")]), Self.plaintext).get()
        #expect(!plain.headers.contains(name: "x-forwarded-client-cert"))
        #expect(plain.headers["x-forwarded-proto"] == ["http"])
        #expect(plain.requestID == "generated-id")
        #expect(plain.headers["x-request-id"] == ["generated-id"])
        // A request id with spaces or too long is replaced.
        let odd = try Self.admit(Self.head(.GET, "/", [("host", "d"), ("x-request-id", "a b")])).get()
        #expect(odd.requestID == "generated-id")
    }

    @Test func madeRequestIDsAreDistinctVersion4UUIDsAcrossRefills() throws {
        let source = RequestIDSource()
        // Three pools' worth (256 IDs each), so IDs made after a refill are checked too.
        let ids = (0..<800).map { _ in source.next() }
        #expect(Set(ids).count == ids.count)
        let shape = #/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/#
        for id in ids { #expect(id.wholeMatch(of: shape) != nil, "\(id)") }
        // Each hexadecimal digit outside the fixed version and variant positions takes every value somewhere.
        for position in [0, 7, 9, 15, 20, 24, 35] {
            let digits = Set(ids.map { $0.utf8[$0.utf8.index($0.utf8.startIndex, offsetBy: position)] })
            #expect(digits.count == 16, "position \(position): \(digits.count) digits")
        }
        // Without a client's ID, admission makes one of this shape.
        let admitted = try RequestAdmission.admit(Self.head(), connection: Self.plaintext, identity: .init()).get()
        #expect(admitted.requestID.wholeMatch(of: shape) != nil)
        #expect(admitted.headers["x-request-id"] == [admitted.requestID])
    }

    @Test func forwardedRequestsAreFramedAnew() throws {
        let request = try Self.admit(Self.head(.POST, "/upload", [("host", "details"), ("content-type", "text/plain")])).get()
        #expect(ForwardingStage.framing(declaredLength: nil, received: 0, ended: true) == .none)
        #expect(ForwardingStage.framing(declaredLength: nil, received: 12, ended: true) == .length(12))
        #expect(ForwardingStage.framing(declaredLength: nil, received: 12, ended: false) == .chunked)
        #expect(ForwardingStage.framing(declaredLength: 40, received: 12, ended: false) == .length(40))
        let chunked = ForwardingStage.upstreamHead(request, framing: .chunked, upstreamAuthority: "127.0.0.1:8080")
        #expect(chunked.headers["transfer-encoding"] == ["chunked"])
        #expect(!chunked.headers.contains(name: "content-length"))
        #expect(chunked.version == .http1_1)
        let empty = ForwardingStage.upstreamHead(request, framing: .none, upstreamAuthority: "127.0.0.1:8080")
        #expect(empty.headers["content-length"] == ["0"])
        #expect(empty.headers["host"] == ["details"])
        let old = try Self.admit(Self.head(.GET, "/", [], version: .http1_0)).get()
        #expect(ForwardingStage.upstreamHead(old, framing: .none, upstreamAuthority: "127.0.0.1:8080").headers["host"] == ["127.0.0.1:8080"])
    }

    @Test func responsesLoseHopByHopFieldsAndGainTheChecksHeaders() {
        let upstream = HTTPResponseHead(version: .http1_1, status: .ok, headers: [
            "connection": "close, x-upstream-private", "x-upstream-private": "1", "transfer-encoding": "chunked",
            "Keep-Alive": "timeout=5", "content-type": "application/json", "set-cookie": "a=1",
        ])
        let head = ForwardingStage.downstreamHead(
            upstream, responseHeaders: [HeaderMutation("x-trace", "t1", .append), HeaderMutation("set-cookie", "b=2", .append)],
            version: .http1_1)
        #expect(head.status == .ok)
        for gone in ["connection", "x-upstream-private", "transfer-encoding", "keep-alive"] { #expect(!head.headers.contains(name: gone)) }
        #expect(head.headers["set-cookie"] == ["a=1", "b=2"])
        #expect(head.headers["x-trace"] == ["t1"])
    }

    static func option(
        _ name: String, _ value: String, _ action: Envoy_Config_Core_V3_HeaderValueOption.HeaderAppendAction, append: Bool? = nil
    ) -> Envoy_Config_Core_V3_HeaderValueOption {
        var option = Envoy_Config_Core_V3_HeaderValueOption()
        option.header.key = name
        option.header.value = value
        option.appendAction = action
        if let append { option.append = .init(append) }
        return option
    }

    @Test func anAllowedAnswerChangesTheRequest() throws {
        var response = Envoy_Service_Auth_V3_CheckResponse()
        response.status.code = 0
        var ok = Envoy_Service_Auth_V3_OkHttpResponse()
        ok.headers = [
            Self.option("x-user", "alice", .overwriteIfExistsOrAdd), Self.option("x-tag", "b", .appendIfExistsOrAdd, append: true),
            Self.option("x-default", "d", .appendIfExistsOrAdd),
            Self.option("x-absent", "set", .addIfAbsent), Self.option("x-only-if", "no", .overwriteIfExists),
        ]
        ok.headersToRemove = ["x-remove-me", "host"]
        ok.responseHeadersToAdd = [Self.option("x-served-by", "warden", .appendIfExistsOrAdd)]
        ok.queryParametersToRemove = ["debug"]
        ok.queryParametersToSet = [.with { $0.key = "tenant"; $0.value = "acme" }]
        response.okResponse = ok
        let verdict = CheckResponseStage.verdict(.success(response), failureStatus: 403)
        guard case .allow(let allowed) = verdict else { Issue.record("expected allow, got \(verdict)"); return }
        var request = try Self.admit(Self.head(.GET, "/x?debug=1&keep=2", [
            ("host", "details"), ("x-user", "mallory"), ("x-tag", "a"), ("x-remove-me", "1"), ("x-default", "c"),
        ])).get()
        CheckResponseStage.apply(allowed, to: &request)
        #expect(request.headers["x-user"] == ["alice"])
        #expect(request.headers["x-tag"] == ["a", "b"])
        // Neither `append` nor an action other than the default: set, as ext_authz documents for request headers.
        #expect(request.headers["x-default"] == ["d"])
        #expect(request.headers["x-absent"] == ["set"])
        #expect(!request.headers.contains(name: "x-only-if"))
        #expect(!request.headers.contains(name: "x-remove-me"))
        #expect(request.headers["host"] == ["details"])
        #expect(request.target == "/x?keep=2&tenant=acme")
        #expect(allowed.responseHeaders == [HeaderMutation("x-served-by", "warden", .append)])
    }

    @Test func aDenialIsTheServersResponse() {
        let decision = ExchangeStateMachineTests.denied(418, headers: [("x-warden-decision-id", "d-1"), ("x-why", "teapot")], body: "no tea\n")
        let verdict = CheckResponseStage.verdict(.success(decision), failureStatus: 403)
        #expect(verdict == .deny(LocalResponse(
            status: 418, headers: [.init("x-warden-decision-id", "d-1"), .init("x-why", "teapot")], body: "no tea\n")))
        // A denial without a status is a 403.
        var bare = Envoy_Service_Auth_V3_CheckResponse()
        bare.status.code = 7
        guard case .deny(let response) = CheckResponseStage.verdict(.success(bare), failureStatus: 403) else {
            Issue.record("expected a denial")
            return
        }
        #expect(response.status == 403)
    }

    @Test func everyFailureFailsClosedTheSameWay() {
        for failure in CheckFailure.allCases {
            let verdict = CheckResponseStage.verdict(.failure(failure), failureStatus: 503)
            guard case .failed(let kind, let response) = verdict else { Issue.record("\(failure) did not fail"); continue }
            #expect(kind == failure)
            #expect(response.status == 503)
        }
        // An answer asking for a header that would split the request is malformed.
        var response = Envoy_Service_Auth_V3_CheckResponse()
        response.status.code = 0
        response.okResponse.headers = [Self.option("x-evil", "a\r\nx-injected: 1", .overwriteIfExistsOrAdd)]
        guard case .failed(.malformed, let answer) = CheckResponseStage.verdict(.success(response), failureStatus: 403) else {
            Issue.record("a header with CRLF was accepted")
            return
        }
        #expect(answer.status == 403)
        response.okResponse.headers = [Self.option("bad name", "v", .overwriteIfExistsOrAdd)]
        #expect(CheckResponseStage.verdict(.success(response), failureStatus: 403).isAllowed == false)
    }

    @Test func parserRefusalsCloseWith431Or400() {
        #expect(HostileInput.response(for: HTTPParserError.headerOverflow).status == 431)
        #expect(HostileInput.response(for: HTTPParserError.unexpectedContentLength).status == 400)
        #expect(HostileInput.response(for: HTTPParserError.invalidHeaderToken).closeConnection)
    }
}
