import ExtAuthz
@testable import FrontProxy
import Identity
import JOSE
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import PolicyCore
import SwiftProtobuf
import Testing
import WardenTesting

@Suite("One exchange, from head to response")
struct ExchangeStateMachineTests {
    static let workload = Workload(namespace: "default", labels: ["app": "details"], port: 9080)
    static let seedAuthenticator = RequestAuthenticator(rules: [
        JWTRule(issuer: SeedToken.issuer, keys: .inline(try! JWKSet.parse(SeedToken.jwks)), outputClaimToHeaders: [
            .init(header: "x-jwt-foo", claim: "foo"),
        ]),
    ])

    static func machine(
        authenticator: RequestAuthenticator? = nil, maximumBody: Int = 1 << 20, buffered: Int = 16,
        checkBody: ExchangeSettings.CheckBody? = nil
    ) -> ExchangeStateMachine {
        ExchangeStateMachine(
            settings: ExchangeSettings(
                workload: workload, ownIdentity: RequestStageTests.own, authenticator: authenticator, failureStatus: 403,
                maximumRequestBodyBytes: maximumBody, maximumBufferedBodyBytes: buffered, upstreamAuthority: "127.0.0.1:9080",
                checkBody: checkBody),
            connection: RequestStageTests.mtls)
    }

    static func head(_ method: HTTPMethod = .GET, _ uri: String = "/details/1", _ headers: [(String, String)] = []) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders([("host", "details")] + headers))
    }

    static var allowed: Envoy_Service_Auth_V3_CheckResponse {
        var response = Envoy_Service_Auth_V3_CheckResponse()
        response.status.code = 0
        response.okResponse = .init()
        return response
    }

    /// A denial as a Warden server sends it.
    static func denied(_ status: Int, headers: [(String, String)] = [], body: String = "") -> Envoy_Service_Auth_V3_CheckResponse {
        var response = Envoy_Service_Auth_V3_CheckResponse()
        response.status.code = 7
        var denied = Envoy_Service_Auth_V3_DeniedHttpResponse()
        denied.status.code = Envoy_Type_V3_StatusCode(rawValue: status) ?? .forbidden
        denied.headers = headers.map { RequestStageTests.option($0.0, $0.1, .overwriteIfExistsOrAdd) }
        denied.body = body
        response.deniedResponse = denied
        return response
    }

    /// Drives the machine to `.check` and returns the check request it sends.
    static func check(_ machine: inout ExchangeStateMachine, _ head: HTTPRequestHead) -> Envoy_Service_Auth_V3_CheckRequest? {
        guard case .check(let parts) = machine.receiveHead(head, now: 1_000) else { return nil }
        return parts.checkRequest
    }

    @Test func anAllowedRequestIsForwardedWithTheBodyHeldDuringTheCheck() throws {
        var machine = Self.machine(buffered: 8)
        let request = try #require(Self.check(&machine, Self.head(.POST, "/upload", [("content-length", "10")])))
        #expect(request.attributes.source.principal == "spiffe://cluster.local/ns/default/sa/sleep")
        #expect(request.attributes.destination.principal == "spiffe://cluster.local/ns/default/sa/details")
        #expect(request.attributes.destination.address.socketAddress.portValue == 9080)
        #expect(request.attributes.contextExtensions["destination.namespace"] == "default")
        #expect(request.attributes.contextExtensions["destination.workload_labels"] == #"{"app":"details"}"#)
        #expect(request.attributes.tlsSession.sni == "details")
        let http = request.attributes.request.http
        #expect(http.method == "POST")
        #expect(http.path == "/upload")
        #expect(http.scheme == "https")
        #expect(http.headers[":authority"] == "details")
        #expect(http.headers["x-forwarded-client-cert"]?.contains("URI=spiffe://cluster.local/ns/default/sa/sleep") == true)
        #expect(http.id == http.headers["x-request-id"])

        // The body arrives while the check runs: held; beyond the bound, reading pauses.
        guard case .none = machine.receiveBody(ByteBuffer(string: "12345"), now: 1_100) else { Issue.record("not held"); return }
        guard case .pauseReading = machine.receiveBody(ByteBuffer(string: "67890"), now: 1_200) else {
            Issue.record("reading was not paused at the bound")
            return
        }
        _ = machine.receiveEnd(now: 1_300)
        guard case .connectUpstream = machine.checked(.success(Self.allowed), now: 2_000) else { Issue.record("no upstream"); return }
        guard case .sendRequest(let upstreamHead, let body, let end) = machine.upstreamConnected(now: 2_100) else {
            Issue.record("nothing sent")
            return
        }
        #expect(upstreamHead.headers["content-length"] == ["10"])
        #expect(body.map { String(buffer: $0) }.joined() == "1234567890")
        #expect(end)
        guard case .sendResponseHead(let response) = machine.upstreamResponseHead(
            HTTPResponseHead(version: .http1_1, status: .created, headers: ["content-length": "2"]), now: 3_000)
        else { Issue.record("no response head"); return }
        #expect(response.status == .created)
        guard case .sendResponseBody = machine.upstreamResponseBody(ByteBuffer(string: "ok")) else { Issue.record("no body"); return }
        guard case .finish(let release, let close, _) = machine.upstreamResponseEnd(upstreamKeepAlive: true, now: 4_000) else {
            Issue.record("not finished")
            return
        }
        #expect(release && !close)
        #expect(machine.isDone)
        let record = machine.record
        #expect(record.outcome == .allowed)
        #expect(record.status == 201)
        #expect(record.checkNanos == 1_000)
        #expect(record.upstreamNanos == 1_000)
        #expect(record.totalNanos == 3_000)
        #expect(record.peerPrincipal == "cluster.local/ns/default/sa/sleep")
        #expect(record.requestBodyBytes == 10)
    }

    @Test func aDeniedRequestNeverReachesTheUpstream() {
        var machine = Self.machine()
        _ = Self.check(&machine, Self.head(.POST, "/admin", [("content-length", "3")]))
        _ = machine.receiveBody(ByteBuffer(string: "abc"), now: 1_100)
        _ = machine.receiveEnd(now: 1_200)
        let denied = Self.denied(403, headers: [("x-warden-decision-id", "dec-9")], body: "access denied\n")
        guard case .respond(let response, let close) = machine.checked(.success(denied), now: 2_000) else {
            Issue.record("not answered")
            return
        }
        #expect(response.status == 403)
        #expect(response.body == "access denied\n")
        #expect(!close)  // the whole request was read: the connection stays usable
        #expect(machine.record.outcome == .denied)
        #expect(machine.record.decisionID == "dec-9")
        // Nothing that arrives later is forwarded.
        guard case .none = machine.upstreamConnected(now: 3_000) else { Issue.record("forwarded after a denial"); return }
    }

    @Test func aDenialBeforeTheBodyEndedClosesTheConnection() {
        var machine = Self.machine()
        _ = Self.check(&machine, Self.head(.POST, "/admin", [("content-length", "100")]))
        guard case .respond(_, let close) = machine.checked(.success(Self.denied(403)), now: 2_000) else {
            Issue.record("not answered")
            return
        }
        #expect(close)
    }

    @Test func everyCheckFailureAnswersTheFailureStatus() {
        for failure in CheckFailure.allCases {
            var machine = Self.machine()
            _ = Self.check(&machine, Self.head())
            _ = machine.receiveEnd(now: 1_000)
            guard case .respond(let response, _) = machine.checked(.failure(failure), now: 2_000) else {
                Issue.record("\(failure) was not answered")
                continue
            }
            #expect(response.status == 403)
            #expect(machine.record.outcome == .checkFailed)
            #expect(machine.record.checkFailure == failure)
        }
    }

    @Test func theSeedTokenIsVerifiedAndAnInvalidOneIsAnswered401() throws {
        // Valid: the check carries the payload under jwt_authn's metadata; the token itself is not forwarded.
        var machine = Self.machine(authenticator: Self.seedAuthenticator)
        let request = try #require(Self.check(&machine, Self.head(.GET, "/details/1", [("authorization", "Bearer " + SeedToken.token)])))
        let metadata = try #require(request.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"])
        guard case .structValue(let payload)? = metadata.fields[SeedToken.issuer]?.kind else {
            Issue.record("no payload for the issuer")
            return
        }
        #expect(payload.fields["sub"]?.stringValue == SeedToken.issuer)
        #expect(request.attributes.request.http.headers["authorization"] == nil)
        #expect(request.attributes.request.http.headers["x-jwt-foo"] == "bar")
        #expect(machine.record.requestPrincipal == SeedToken.principal)

        // Invalid: answered here, never checked.
        var bad = Self.machine(authenticator: Self.seedAuthenticator)
        guard case .respond(let refusal, _) = bad.receiveHead(Self.head(.GET, "/details/1", [("authorization", "Bearer badtoken")]), now: 1)
        else { Issue.record("a bad token was not refused"); return }
        #expect(refusal.status == 401)
        #expect(refusal.headers.first { $0.name == "www-authenticate" }?.value.hasPrefix("Bearer realm=\"https://details/details/1\"") == true)
        #expect(bad.record.outcome == .unauthenticated)

        // None: checked without a request principal.
        var none = Self.machine(authenticator: Self.seedAuthenticator)
        let anonymous = try #require(Self.check(&none, Self.head()))
        #expect(anonymous.attributes.metadataContext.filterMetadata.isEmpty)
        #expect(none.record.requestPrincipal == nil)
    }

    @Test func ofSeveralValidTokensTheFirstLocationDecides() throws {
        // Two issuers, each with its own header; both tokens are valid. Rules are ordered by issuer, and each rule's
        // locations in turn, so the token in `x-token-a` (issuer `a.example`) decides, whichever header comes first.
        let keyA = JWTFactory.SigningKey.p256(keyID: "a"), keyB = JWTFactory.SigningKey.p256(keyID: "b")
        let authenticator = RequestAuthenticator(rules: [
            JWTRule(issuer: "b.example", keys: .inline(try JWKSet.parse(JWTFactory.jwks([keyB]))), fromHeaders: [.init(name: "x-token-b")]),
            JWTRule(issuer: "a.example", keys: .inline(try JWKSet.parse(JWTFactory.jwks([keyA]))), fromHeaders: [.init(name: "x-token-a")]),
        ].sorted { $0.issuer < $1.issuer })
        let tokenA = JWTFactory.token(JWTFactory.claims(issuer: "a.example", subject: "alice"), key: keyA)
        let tokenB = JWTFactory.token(JWTFactory.claims(issuer: "b.example", subject: "bob"), key: keyB)
        for headers in [[("x-token-b", tokenB), ("x-token-a", tokenA)], [("x-token-a", tokenA), ("x-token-b", tokenB)]] {
            var machine = Self.machine(authenticator: authenticator)
            let request = try #require(Self.check(&machine, Self.head(.GET, "/", headers)))
            #expect(machine.record.requestPrincipal == "a.example/alice")
            let metadata = request.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"]
            #expect(metadata?.fields.keys.sorted() == ["a.example"])
        }
    }

    /// With `checkBody`, the check waits for the body (up to its bound) and carries it, as Envoy's
    /// `with_request_body` does; the whole body is forwarded once allowed.
    @Test func aCheckCarriesTheBodyWhenSetTo() throws {
        func body(_ request: Envoy_Service_Auth_V3_CheckRequest) -> (String, String?) {
            let http = request.attributes.request.http
            return (http.body.isEmpty ? String(decoding: http.rawBody, as: UTF8.self) : http.body,
                    http.headers[CheckRequestStage.partialBodyHeader])
        }
        // A whole body within the bound: the check starts at its end.
        var whole = Self.machine(checkBody: .init(maximumBytes: 8))
        guard case .none = whole.receiveHead(Self.head(.POST, "/", [("content-length", "6")]), now: 1) else {
            Issue.record("checked before the body"); return
        }
        guard case .none = whole.receiveBody(ByteBuffer(string: "abc"), now: 2) else { Issue.record("checked early"); return }
        _ = whole.receiveBody(ByteBuffer(string: "def"), now: 3)
        guard case .check(let parts) = whole.receiveEnd(now: 4) else { Issue.record("no check at the end"); return }
        #expect(body(parts.checkRequest) == ("abcdef", "false"))
        guard case .connectUpstream = whole.checked(.success(Self.allowed), now: 5),
              case .sendRequest(_, let forwarded, let end) = whole.upstreamConnected(now: 6)
        else { Issue.record("not forwarded"); return }
        #expect(forwarded.map { String(buffer: $0) }.joined() == "abcdef")
        #expect(end)

        // HTTP/2 without a length: only the stream's end says the body is whole.
        var h2 = Self.machine(checkBody: .init(maximumBytes: 8))
        var h2Head = Self.head(.POST, "/")
        h2Head.version = .http2
        guard case .none = h2.receiveHead(h2Head, now: 1), case .none = h2.receiveBody(ByteBuffer(string: "xy"), now: 2),
              case .check(let h2Parts) = h2.receiveEnd(now: 3)
        else { Issue.record("HTTP/2's body was not awaited"); return }
        #expect(body(h2Parts.checkRequest) == ("xy", "false"))

        // No body: checked at once, and says so.
        var none = Self.machine(checkBody: .init(maximumBytes: 8))
        guard case .check(let bodiless) = none.receiveHead(Self.head(), now: 1) else { Issue.record("GET waited"); return }
        #expect(body(bodiless.checkRequest) == ("", "false"))

        // Longer than the bound: refused before the check (declared) or once past it (streamed).
        var declared = Self.machine(checkBody: .init(maximumBytes: 8))
        guard case .respond(let refusal, _) = declared.receiveHead(Self.head(.POST, "/", [("content-length", "9")]), now: 1)
        else { Issue.record("a declared body over the bound was checked"); return }
        #expect(refusal.status == 413)
        var streamed = Self.machine(checkBody: .init(maximumBytes: 8))
        _ = streamed.receiveHead(Self.head(.POST, "/", [("transfer-encoding", "chunked")]), now: 1)
        guard case .none = streamed.receiveBody(ByteBuffer(string: "12345678"), now: 2) else {
            Issue.record("exactly the bound was not waited on"); return
        }
        guard case .respond(let late, _) = streamed.receiveBody(ByteBuffer(string: "9"), now: 3) else {
            Issue.record("a streamed body over the bound was checked"); return
        }
        #expect(late.status == 413)

        // Body that arrives while the token's keys are fetched counts against the same bound.
        let fetching = RequestAuthenticator(
            rules: [JWTRule(issuer: SeedToken.issuer, keys: .remote(.uri("http://127.0.0.1:1/jwks")))], keySource: KeysNotYetFetched())
        let bearer = [("transfer-encoding", "chunked"), ("authorization", "Bearer " + SeedToken.token)]
        var strict = Self.machine(authenticator: fetching, checkBody: .init(maximumBytes: 8))
        guard case .authenticate = strict.receiveHead(Self.head(.POST, "/", bearer), now: 1) else {
            Issue.record("no key fetch"); return
        }
        guard case .respond(let over, _) = strict.receiveBody(ByteBuffer(string: "123456789"), now: 2) else {
            Issue.record("a body over the bound was held while authenticating"); return
        }
        #expect(over.status == 413)
        var lenient = Self.machine(
            authenticator: fetching, buffered: 1 << 20, checkBody: .init(maximumBytes: 8, allowPartial: true))
        _ = lenient.receiveHead(Self.head(.POST, "/", bearer), now: 1)
        guard case .none = lenient.receiveBody(ByteBuffer(string: "1234"), now: 2),
              case .pauseReading = lenient.receiveBody(ByteBuffer(string: "56789"), now: 3)
        else { Issue.record("reading went on past what the check carries"); return }

        // With allowPartial, its first bytes are checked, marked partial; the rest is held and forwarded.
        var partial = Self.machine(buffered: 1 << 20, checkBody: .init(maximumBytes: 4, allowPartial: true))
        _ = partial.receiveHead(Self.head(.POST, "/", [("content-length", "10")]), now: 1)
        guard case .check(let first) = partial.receiveBody(ByteBuffer(string: "123456"), now: 2) else {
            Issue.record("the partial body was not checked"); return
        }
        #expect(body(first.checkRequest) == ("1234", "true"))
        _ = partial.receiveBody(ByteBuffer(string: "7890"), now: 3)
        _ = partial.receiveEnd(now: 4)
        guard case .connectUpstream = partial.checked(.success(Self.allowed), now: 5),
              case .sendRequest(_, let rest, _) = partial.upstreamConnected(now: 6)
        else { Issue.record("not forwarded"); return }
        #expect(rest.map { String(buffer: $0) }.joined() == "1234567890")
    }

    /// `Expect: 100-continue`: answered when the body is wanted (the request allowed, or the check waiting for the
    /// body), once, and never for a request without a body or whose body already came.
    @Test func continueIsSentOnceTheBodyIsWanted() {
        let expecting = Self.head(.POST, "/", [("content-length", "3"), ("expect", "100-continue")])
        var allowed = Self.machine()
        _ = allowed.receiveHead(expecting, now: 1)
        guard case .connectUpstream(let sendContinue) = allowed.checked(.success(Self.allowed), now: 2) else {
            Issue.record("not forwarded"); return
        }
        #expect(sendContinue)

        var denied = Self.machine()
        _ = denied.receiveHead(expecting, now: 1)
        guard case .respond(let denial, let close) = denied.checked(.success(Self.denied(403)), now: 2) else {
            Issue.record("not denied"); return
        }
        #expect(denial.status == 403 && close)

        var early = Self.machine()
        _ = early.receiveHead(expecting, now: 1)
        _ = early.receiveBody(ByteBuffer(string: "abc"), now: 2)
        _ = early.receiveEnd(now: 3)
        guard case .connectUpstream(let late) = early.checked(.success(Self.allowed), now: 4) else {
            Issue.record("not forwarded"); return
        }
        #expect(!late)

        var bodiless = Self.machine()
        _ = bodiless.receiveHead(Self.head(.GET, "/", [("expect", "100-continue")]), now: 1)
        guard case .connectUpstream(let none) = bodiless.checked(.success(Self.allowed), now: 2) else {
            Issue.record("not forwarded"); return
        }
        #expect(!none)

        var checksBody = Self.machine(checkBody: .init(maximumBytes: 8))
        guard case .sendContinue = checksBody.receiveHead(expecting, now: 1) else { Issue.record("no 100 Continue"); return }
        _ = checksBody.receiveBody(ByteBuffer(string: "abc"), now: 2)
        _ = checksBody.receiveEnd(now: 3)
        guard case .connectUpstream(let again) = checksBody.checked(.success(Self.allowed), now: 4) else {
            Issue.record("not forwarded"); return
        }
        #expect(!again)
    }

    /// An HTTP/1.0 client that asks to keep the connection is told so when the response has a length; a response
    /// without one (HTTP/1.0 has no chunked coding) ends with the connection instead of leaving the client waiting.
    @Test func anHTTP10KeepAliveClientLearnsWhereTheBodyEnds() throws {
        func exchange(_ response: HTTPResponseHead) -> (HTTPResponseHead, close: Bool)? {
            var machine = Self.machine()
            var head = Self.head(.GET, "/", [("connection", "keep-alive")])
            head.version = .http1_0
            _ = machine.receiveHead(head, now: 1)
            _ = machine.receiveEnd(now: 2)
            _ = machine.checked(.success(Self.allowed), now: 3)
            _ = machine.upstreamConnected(now: 4)
            guard case .sendResponseHead(let downstream) = machine.upstreamResponseHead(response, now: 5),
                  case .finish(_, let close, _) = machine.upstreamResponseEnd(upstreamKeepAlive: true, now: 6)
            else { return nil }
            return (downstream, close)
        }
        let framed = try #require(exchange(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": "2"])))
        #expect(framed.0.headers["connection"] == ["keep-alive"])
        #expect(!framed.close)
        let unframed = try #require(exchange(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["transfer-encoding": "chunked"])))
        #expect(unframed.0.headers["connection"].isEmpty)
        #expect(unframed.close)
        let (local, _) = ForwardingStage.localResponse(.text(403, "no"), version: .http1_0, keepAlive: true)
        #expect(local.headers["connection"] == ["keep-alive"])
    }

    @Test func oversizedBodiesAreRefused() {
        var declared = Self.machine(maximumBody: 8)
        guard case .respond(let response, let close) = declared.receiveHead(Self.head(.POST, "/", [("content-length", "9")]), now: 1)
        else { Issue.record("accepted"); return }
        #expect(response.status == 413)
        #expect(close)
        var streamed = Self.machine(maximumBody: 8, buffered: 1 << 20)
        _ = Self.check(&streamed, Self.head(.POST, "/", [("transfer-encoding", "chunked")]))
        _ = streamed.receiveBody(ByteBuffer(string: "12345"), now: 2)
        guard case .respond(let late, _) = streamed.receiveBody(ByteBuffer(string: "6789"), now: 3) else {
            Issue.record("a streamed body over the bound was accepted")
            return
        }
        #expect(late.status == 413)
    }

    @Test func upstreamFailuresAre503AndTimeoutsAre504() {
        var down = Self.machine()
        _ = Self.check(&down, Self.head())
        _ = down.receiveEnd(now: 1)
        _ = down.checked(.success(Self.allowed), now: 2)
        guard case .respond(let unavailable, _) = down.upstreamConnectFailed(.init(kind: .connect, message: "refused"), now: 3) else {
            Issue.record("no answer")
            return
        }
        #expect(unavailable.status == 503)
        #expect(down.record.upstreamFailure == "connect_failed")

        var slow = Self.machine()
        _ = Self.check(&slow, Self.head())
        _ = slow.receiveEnd(now: 1)
        _ = slow.checked(.success(Self.allowed), now: 2)
        _ = slow.upstreamConnected(now: 3)
        guard case .respond(let timeout, _) = slow.upstreamTimedOut(now: 4) else { Issue.record("no answer"); return }
        #expect(timeout.status == 504)

        var reset = Self.machine()
        _ = Self.check(&reset, Self.head())
        _ = reset.receiveEnd(now: 1)
        _ = reset.checked(.success(Self.allowed), now: 2)
        _ = reset.upstreamConnected(now: 3)
        _ = reset.upstreamResponseHead(HTTPResponseHead(version: .http1_1, status: .ok), now: 4)
        guard case .abort = reset.upstreamFailed(now: 5) else { Issue.record("a broken response was not aborted"); return }

        var naming = Self.machine()
        _ = Self.check(&naming, Self.head())
        _ = naming.receiveEnd(now: 1)
        _ = naming.checked(.success(Self.allowed), now: 2)
        _ = naming.upstreamConnectFailed(.init(kind: .secureNaming, message: "other"), now: 3)
        #expect(naming.record.status == 503)
        #expect(naming.record.upstreamFailure == "secure_naming")
    }

    @Test func aLateAnswerForAFinishedExchangeIsIgnored() {
        var machine = Self.machine()
        _ = Self.check(&machine, Self.head())
        _ = machine.receiveEnd(now: 1)
        _ = machine.clientClosed(now: 2)
        guard case .none = machine.checked(.success(Self.allowed), now: 3) else { Issue.record("acted after the end"); return }
        #expect(machine.record.status == 499)
    }
}

extension Google_Protobuf_Value {
    var stringValue: String? {
        if case .stringValue(let text)? = kind { return text }
        return nil
    }
}

/// A key source that has fetched nothing yet: authenticating a token waits for it (and here, fails).
struct KeysNotYetFetched: KeySource {
    func cachedKeys(for location: RemoteKeys) -> KeySnapshot? { nil }
    func keys(for location: RemoteKeys, timeout: Duration) async -> Result<KeySnapshot, JOSEError> {
        .failure(JOSEError(.keysUnavailable, "not fetched"))
    }
    func refresh(_ location: RemoteKeys, unknownKeyID: String, timeout: Duration) async -> Result<KeySnapshot, JOSEError> {
        .failure(JOSEError(.keysUnavailable, "not fetched"))
    }
}

@Suite("Upgrades: WebSocket tunnelled, others forwarded as plain requests")
struct ExchangeUpgradeTests {
    static let asksForWebSocket: [(String, String)] = [
        ("connection", "keep-alive, Upgrade"), ("upgrade", "websocket"), ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ]

    static func switching(_ upgrade: String?) -> HTTPResponseHead {
        var headers = HTTPHeaders([("connection", "Upgrade"), ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")])
        if let upgrade { headers.add(name: "upgrade", value: upgrade) }
        return HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers)
    }

    @Test func aWebSocketUpgradeIsCheckedForwardedAndSwitched() throws {
        var machine = ExchangeStateMachineTests.machine()
        let request = try #require(ExchangeStateMachineTests.check(&machine, ExchangeStateMachineTests.head(.GET, "/ws", Self.asksForWebSocket)))
        // The check sees what the client asks for, as Envoy's does.
        #expect(request.attributes.request.http.headers["upgrade"] == "websocket")
        #expect(request.attributes.request.http.headers["connection"] == "upgrade")
        _ = machine.receiveEnd(now: 1_050)
        guard case .connectUpstream = machine.checked(.success(ExchangeStateMachineTests.allowed), now: 1_100) else {
            Issue.record("not forwarded"); return
        }
        guard case .sendRequest(let head, _, let end) = machine.upstreamConnected(now: 1_200) else { Issue.record("no request"); return }
        #expect(end)
        #expect(head.headers["connection"] == ["upgrade"] && head.headers["upgrade"] == ["websocket"])
        #expect(head.headers["sec-websocket-key"] == ["dGhlIHNhbXBsZSBub25jZQ=="])
        guard case .switchProtocols(let response) = machine.upstreamResponseHead(Self.switching("websocket"), now: 1_300) else {
            Issue.record("not switched"); return
        }
        #expect(response.status == .switchingProtocols)
        #expect(response.headers["connection"] == ["upgrade"] && response.headers["upgrade"] == ["websocket"])
        #expect(response.headers["sec-websocket-accept"] == ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="])
        // The 101's end, which the decoder reports, changes nothing; the exchange ends with the tunnel.
        guard case .none = machine.upstreamResponseEnd(upstreamKeepAlive: true, now: 1_310) else { Issue.record("ended"); return }
        #expect(!machine.isDone)
        machine.tunnelClosed(clientBytes: 40, upstreamBytes: 60, now: 9_000)
        #expect(machine.isDone)
        #expect(machine.record.status == 101 && machine.record.outcome == .allowed)
        #expect(machine.record.requestBodyBytes == 40 && machine.record.responseBodyBytes == 60)
        #expect(machine.record.totalNanos == 8_000)
    }

    @Test func aWebSocketTheUpstreamDeclinesIsAnsweredAndClosesBothConnections() throws {
        var machine = ExchangeStateMachineTests.machine()
        _ = try #require(ExchangeStateMachineTests.check(&machine, ExchangeStateMachineTests.head(.GET, "/ws", Self.asksForWebSocket)))
        _ = machine.receiveEnd(now: 1_050)
        _ = machine.checked(.success(ExchangeStateMachineTests.allowed), now: 1_100)
        _ = machine.upstreamConnected(now: 1_200)
        let declined = HTTPResponseHead(version: .http1_1, status: .badRequest, headers: ["content-length": "0"])
        guard case .sendResponseHead = machine.upstreamResponseHead(declined, now: 1_300) else { Issue.record("no head"); return }
        guard case .finish(let release, let close, _) = machine.upstreamResponseEnd(upstreamKeepAlive: true, now: 1_400) else {
            Issue.record("not finished"); return
        }
        #expect(!release && close)
    }

    @Test func aSwitchNobodyAskedForIsABadGateway() throws {
        var machine = ExchangeStateMachineTests.machine()
        _ = try #require(ExchangeStateMachineTests.check(&machine, ExchangeStateMachineTests.head()))
        _ = machine.receiveEnd(now: 1_050)
        _ = machine.checked(.success(ExchangeStateMachineTests.allowed), now: 1_100)
        _ = machine.upstreamConnected(now: 1_200)
        guard case .respond(let response, _) = machine.upstreamResponseHead(Self.switching("websocket"), now: 1_300) else {
            Issue.record("not refused"); return
        }
        #expect(response.status == 502)
        #expect(machine.record.upstreamFailure == "protocol_error")
    }

    /// `h2c` (curl's `--http2` over plaintext) is not tunnelled: the request goes on as plain HTTP/1.1 without its
    /// upgrade fields, and its connection closes after the answer.
    @Test func anUpgradeToAnotherProtocolIsForwardedPlainAndClosesTheConnection() throws {
        var machine = ExchangeStateMachineTests.machine()
        let asksForH2C = [("connection", "Upgrade, HTTP2-Settings"), ("upgrade", "h2c"), ("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA")]
        let request = try #require(ExchangeStateMachineTests.check(&machine, ExchangeStateMachineTests.head(.GET, "/x", asksForH2C)))
        #expect(request.attributes.request.http.headers["upgrade"] == nil)
        _ = machine.receiveEnd(now: 1_050)
        _ = machine.checked(.success(ExchangeStateMachineTests.allowed), now: 1_100)
        guard case .sendRequest(let head, _, _) = machine.upstreamConnected(now: 1_200) else { Issue.record("no request"); return }
        #expect(!head.headers.contains(name: "upgrade") && !head.headers.contains(name: "http2-settings"))
        #expect(!head.headers.contains(name: "connection"))
        let ok = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": "0"])
        _ = machine.upstreamResponseHead(ok, now: 1_300)
        guard case .finish(_, let close, _) = machine.upstreamResponseEnd(upstreamKeepAlive: true, now: 1_400) else {
            Issue.record("not finished"); return
        }
        #expect(close)
    }
}

@Suite("An HTTP/2 upstream: te: trailers forwarded, trailers passed to HTTP/2 clients")
struct ExchangeTrailerTests {
    static func machine(upstreamHTTP2: Bool) -> ExchangeStateMachine {
        ExchangeStateMachine(
            settings: ExchangeSettings(
                workload: ExchangeStateMachineTests.workload, ownIdentity: RequestStageTests.own,
                upstreamAuthority: "127.0.0.1:9080", upstreamHTTP2: upstreamHTTP2),
            connection: RequestStageTests.mtls)
    }

    static let grpcTrailers = HTTPHeaders([("grpc-status", "0"), ("grpc-message", ""), ("connection", "close")])

    /// Drives a gRPC-shaped request to its response end and returns the head sent upstream and the end's action.
    static func run(version: HTTPVersion, upstreamHTTP2: Bool) -> (HTTPRequestHead?, ExchangeStateMachine.Action) {
        var machine = machine(upstreamHTTP2: upstreamHTTP2)
        let head = HTTPRequestHead(version: version, method: .POST, uri: "/pkg.Service/Call", headers: HTTPHeaders([
            ("host", "details"), ("content-type", "application/grpc"), ("te", "trailers"), ("content-length", "5"),
        ]))
        _ = machine.receiveHead(head, now: 1)
        _ = machine.receiveBody(ByteBuffer(bytes: [0, 0, 0, 0, 0]), now: 2)
        _ = machine.receiveEnd(now: 3)
        _ = machine.checked(.success(ExchangeStateMachineTests.allowed), now: 4)
        var sent: HTTPRequestHead?
        if case .sendRequest(let upstreamHead, _, _) = machine.upstreamConnected(now: 5) { sent = upstreamHead }
        _ = machine.upstreamResponseHead(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-type": "application/grpc"]), now: 6)
        return (sent, machine.upstreamResponseEnd(upstreamKeepAlive: true, trailers: grpcTrailers, now: 7))
    }

    @Test func anHTTP2ClientGetsTheTrailersAndAnHTTP2UpstreamTheTE() throws {
        let (sent, end) = Self.run(version: .http2, upstreamHTTP2: true)
        #expect(sent?.headers["te"] == ["trailers"])
        guard case .finish(_, _, let trailers) = end else { Issue.record("not finished"); return }
        #expect(trailers?["grpc-status"] == ["0"])
        #expect(trailers?.contains(name: "connection") == false, "hop-by-hop fields stay behind")
    }

    @Test func anHTTP1ClientGetsNoTrailersAndAnHTTP1UpstreamNoTE() throws {
        let (sent, end) = Self.run(version: .http1_1, upstreamHTTP2: false)
        #expect(sent?.headers.contains(name: "te") == false)
        guard case .finish(_, _, let trailers) = end else { Issue.record("not finished"); return }
        #expect(trailers == nil)
    }
}

@Suite("HTTP/2 header blocks go in one frame: heads that do not fit are answered, not left hanging")
struct HTTP2HeaderBlockTests {
    /// Printable, but spread over the alphabet, so Huffman coding barely shortens it.
    static func text(_ count: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~!")
        var state: UInt64 = 42
        return String((0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return alphabet[Int(state >> 33) % alphabet.count]
        })
    }

    /// Drives a request with a header of `size` bytes to the upstream; returns what the machine does then.
    static func forward(size: Int, version: HTTPVersion = .http2, upstreamHTTP2: Bool) -> (ExchangeStateMachine, ExchangeStateMachine.Action) {
        var machine = ExchangeTrailerTests.machine(upstreamHTTP2: upstreamHTTP2)
        let head = HTTPRequestHead(version: version, method: .GET, uri: "/", headers: HTTPHeaders([
            ("host", "details"), ("x-large", text(size)),
        ]))
        _ = machine.receiveHead(head, now: 1)
        _ = machine.receiveEnd(now: 2)
        _ = machine.checked(.success(ExchangeStateMachineTests.allowed), now: 3)
        let action = machine.upstreamConnected(now: 4)
        return (machine, action)
    }

    @Test func aRequestHeadTooLargeForAnHTTP2UpstreamIs431() throws {
        let (machine, action) = Self.forward(size: 20_000, upstreamHTTP2: true)
        guard case .respond(let response, _) = action else { Issue.record("\(action)"); return }
        #expect(response.status == 431)
        #expect(machine.record.upstreamFailure == "request_headers_too_large")
        // The same head goes to an HTTP/1.1 upstream, and a smaller one to an HTTP/2 upstream.
        guard case .sendRequest = Self.forward(size: 20_000, upstreamHTTP2: false).1 else { Issue.record("HTTP/1.1"); return }
        guard case .sendRequest = Self.forward(size: 10_000, upstreamHTTP2: true).1 else { Issue.record("10,000 bytes"); return }
    }

    @Test func aResponseHeadTooLargeForAnHTTP2ClientIs502() throws {
        for version in [HTTPVersion.http2, .http1_1] {
            var (machine, _) = Self.forward(size: 10, version: version, upstreamHTTP2: false)
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["set-cookie": Self.text(20_000)])
            let action = machine.upstreamResponseHead(head, now: 5)
            if version == .http2 {
                guard case .respond(let response, _) = action else { Issue.record("\(action)"); continue }
                #expect(response.status == 502)
                #expect(machine.record.upstreamFailure == "response_headers_too_large")
            } else {
                guard case .sendResponseHead = action else { Issue.record("\(action)"); continue }
            }
        }
    }

    /// The estimate against swift-nio-http2's own encoder around the limit: what is said to fit is written, what is
    /// not would fail.
    @Test func whatIsSaidToFitIsWhatNIOWrites() throws {
        var fitting = 0
        for size in stride(from: 18_000, through: 24_000, by: 250) {
            let headers = HTTPHeaders([("x-large", Self.text(size))])
            let fits = ForwardingStage.fitsOneHTTP2Frame(headers, pseudo: [":status": "200"])
            if fits { fitting += 1 }
            let channel = EmbeddedChannel(handler: NIOHTTP2Handler(mode: .server))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.writeInbound(ByteBuffer(bytes: Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]))
            try channel.writeInbound(ByteBuffer(bytes: [0, 0, 6, 1, 5, 0, 0, 0, 1, 0x82, 0x86, 0x84, 0x41, 0x01, 0x61]))
            let fields = HPACKHeaders([(":status", "200"), ("x-large", Self.text(size))])
            let written = channel.writeAndFlush(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: fields))))
            #expect(((try? written.wait()) != nil) == fits, "\(size) bytes")
            _ = try? channel.finish()
        }
        #expect(fitting > 3 && fitting < 25, "the sizes cover the limit from both sides")
    }
}

@Suite("A gRPC call's local answers are in gRPC's form, as Envoy sends them")
struct GRPCLocalAnswerTests {
    static func call(version: HTTPVersion, contentType: String = "application/grpc") -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: .POST, uri: "/pkg.Service/Call", headers: HTTPHeaders([
            ("host", "details"), ("content-type", contentType), ("te", "trailers"),
        ]))
    }

    @Test func aDenialIsHTTP200WithTheGRPCStatusAndReasonInTrailers() throws {
        var machine = ExchangeTrailerTests.machine(upstreamHTTP2: true)
        _ = machine.receiveHead(Self.call(version: .http2), now: 1)
        _ = machine.receiveEnd(now: 2)
        let action = machine.checked(.success(ExchangeStateMachineTests.denied(403, headers: [("x-why", "policy")], body: "access denied: 100%\n")), now: 3)
        guard case .respond(let response, _) = action else { Issue.record("\(action)"); return }
        #expect(response.status == 200)
        #expect(response.body.isEmpty)
        #expect(response.headers.contains(.init("content-type", "application/grpc")))
        #expect(response.headers.contains(.init("x-why", "policy")), "the denial's headers stay")
        #expect(response.trailers == [.init("grpc-status", "7"), .init("grpc-message", "access denied: 100%25")])
        #expect(machine.record.status == 200 && machine.record.grpcStatus == 7)
        let (head, body) = ForwardingStage.localResponse(response, version: .http2, keepAlive: true)
        #expect(head.headers["content-length"].isEmpty && body.isEmpty, "its end is the trailers")
    }

    @Test func onlyGRPCCallsOverHTTP2AreAnsweredSo() throws {
        for (head, grpc) in [
            (Self.call(version: .http1_1), false), (Self.call(version: .http2, contentType: "application/grpc-web"), false),
            (Self.call(version: .http2, contentType: "application/grpc+proto"), true),
        ] {
            var machine = ExchangeTrailerTests.machine(upstreamHTTP2: true)
            _ = machine.receiveHead(head, now: 1)
            _ = machine.receiveEnd(now: 2)
            guard case .respond(let response, _) = machine.checked(.success(ExchangeStateMachineTests.denied(403)), now: 3) else {
                Issue.record("no answer"); continue
            }
            #expect((response.status == 200) == grpc, "\(head.version) \(head.headers["content-type"])")
            #expect(response.trailers.isEmpty != grpc)
        }
    }

    @Test func httpStatusesMapAsGRPCSays() {
        let mapped = [400, 401, 403, 404, 429, 431, 500, 502, 503, 504].map { ForwardingStage.grpcStatus(forHTTPStatus: $0) }
        #expect(mapped == [13, 16, 7, 12, 14, 2, 2, 14, 14, 14])
        #expect(ForwardingStage.percentEncodedGRPCMessage("ü 50% ok") == "%C3%BC 50%25 ok")
    }
}
