import ExtAuthz
import Identity
import NIOCore
import NIOHTTP1
import PolicyCore
import SwiftProtobuf

/// What an exchange needs that stays fixed while it runs: the configuration snapshot in force when its head arrived.
public struct ExchangeSettings: Sendable {
    public var workload: Workload
    /// The proxy's own SPIFFE ID: `By=` in `x-forwarded-client-cert`, the destination principal of checks.
    public var ownIdentity: SPIFFEID?
    /// The workload's JWT rules; nil when no RequestAuthentication applies (tokens are then ignored).
    public var authenticator: RequestAuthenticator?
    /// The status of every failed check (`--failure-status`).
    public var failureStatus: Int
    /// A request body larger than this is refused (413), before or while it streams.
    public var maximumRequestBodyBytes: Int
    /// While the check runs, at most this much body is held; the proxy then stops reading until it forwards.
    public var maximumBufferedBodyBytes: Int
    /// The upstream's `host:port`, the `Host` of requests that have none (HTTP/1.0).
    public var upstreamAuthority: String
    /// Whether checks carry the request body, and how much of it (Istio's `includeRequestBodyInCheck`).
    public var checkBody: CheckBody?
    /// How request paths are normalized before the check and forwarding; nil leaves them as received.
    public var pathNormalizer: PathNormalizer?
    /// The upstream speaks HTTP/2 (`--upstream-http2`).
    public var upstreamHTTP2: Bool

    /// Envoy's `with_request_body`: the body is read before the check, up to `maximumBytes`. A longer body gets 413,
    /// or with `allowPartial` is checked on its first `maximumBytes` (the check's `x-envoy-auth-partial-body` says
    /// which). With `packAsBytes` it goes as `raw_body` bytes even when it is text. The whole body is forwarded once
    /// allowed.
    public struct CheckBody: Sendable, Hashable {
        public var maximumBytes: Int
        public var allowPartial: Bool
        public var packAsBytes: Bool

        public init(maximumBytes: Int, allowPartial: Bool = false, packAsBytes: Bool = false) {
            self.maximumBytes = maximumBytes
            self.allowPartial = allowPartial
            self.packAsBytes = packAsBytes
        }
    }

    public init(
        workload: Workload, ownIdentity: SPIFFEID? = nil, authenticator: RequestAuthenticator? = nil, failureStatus: Int = 403,
        maximumRequestBodyBytes: Int = 64 << 20, maximumBufferedBodyBytes: Int = 64 << 10, upstreamAuthority: String,
        checkBody: CheckBody? = nil, pathNormalizer: PathNormalizer? = PathNormalizer(), upstreamHTTP2: Bool = false
    ) {
        self.workload = workload
        self.ownIdentity = ownIdentity
        self.authenticator = authenticator
        self.failureStatus = failureStatus
        self.maximumRequestBodyBytes = maximumRequestBodyBytes
        self.maximumBufferedBodyBytes = maximumBufferedBodyBytes
        self.upstreamAuthority = upstreamAuthority
        self.checkBody = checkBody
        self.pathNormalizer = pathNormalizer
        self.upstreamHTTP2 = upstreamHTTP2
    }
}

/// What one exchange did, for its access-log line and metrics.
public struct ExchangeRecord: Sendable {
    /// How the request ended, as the `decision` of the access log.
    public enum Outcome: String, Sendable, Hashable, CaseIterable {
        /// Allowed by the check and forwarded.
        case allowed = "allow"
        /// Denied by the check.
        case denied = "deny"
        /// Refused by RequestAuthentication (an invalid token).
        case unauthenticated
        /// The check failed (timeout, unreachable server, error, malformed answer): failed closed.
        case checkFailed = "check_failed"
        /// Refused before any check: a malformed or hostile request.
        case rejected
    }

    public var startNanos: UInt64 = 0
    public var method = ""
    public var target = ""
    public var authority = ""
    public var requestID = ""
    public var peerPrincipal: String?
    public var requestPrincipal: String?
    public var outcome: Outcome = .rejected
    public var status = 0
    public var checkFailure: CheckFailure?
    public var decisionID: String?
    public var checkNanos: UInt64?
    public var upstreamNanos: UInt64?
    public var totalNanos: UInt64 = 0
    /// Why the upstream gave no response (`connect_failed`, `timeout`, `reset`), when it did not.
    public var upstreamFailure: String?
    /// The gRPC status of a local answer to a gRPC call (sent with HTTP status 200).
    public var grpcStatus: Int?
    public var requestBodyBytes = 0
    public var responseBodyBytes = 0

    public init() {}
}

/// One request's way through the proxy: head → admission → RequestAuthentication → check → forwarding → response,
/// as a state machine. Each event returns the one action the connection handler performs; the handler only moves
/// bytes and timers. The body that arrives while the check runs is held (up to a bound; the handler stops reading
/// beyond it) and forwarded once the request is allowed; a denied request's body is never forwarded.
public struct ExchangeStateMachine {
    public enum Action {
        case none
        /// Stop reading from the client until a `.send…` action says to resume.
        case pauseReading
        /// Authenticate (the key set must be fetched first), then call `authenticated`.
        case authenticate(RequestAuthenticator, AuthenticationRequest)
        /// Send the check (what the `CheckRequest` is made of), then call `checked`.
        case check(CheckRequestParts)
        /// Answer without the upstream; close the client connection after it when `close`. The exchange is over.
        case respond(LocalResponse, close: Bool)
        /// Send `100 Continue`: the client waits for it before its body, which is now wanted.
        case sendContinue
        /// Get an upstream connection (then `upstreamConnected`, or `upstreamConnectFailed`); first send
        /// `100 Continue` when `sendContinue` (the client waits for it before its body).
        case connectUpstream(sendContinue: Bool)
        /// Send the request head and the body held so far (and its end), then resume reading from the client.
        case sendRequest(HTTPRequestHead, body: [ByteBuffer], end: Bool)
        case sendRequestBody(ByteBuffer)
        case sendRequestEnd
        case sendResponseHead(HTTPResponseHead)
        case sendResponseBody(ByteBuffer)
        /// Write the response's end, with `trailers` when there are any the client can take (HTTP/2). The
        /// exchange is over; the upstream connection goes back to the pool when `releaseUpstream` (else it is
        /// closed), the client connection is closed when `closeDownstream`.
        case finish(releaseUpstream: Bool, closeDownstream: Bool, trailers: HTTPHeaders? = nil)
        /// The response broke after it started: close the client connection (and the upstream one).
        case abort
        /// The upstream switched protocols as the request asked: send its `101` head, then relay bytes both ways
        /// until either connection closes (`tunnelClosed`).
        case switchProtocols(HTTPResponseHead)
    }

    enum State {
        case idle
        case authenticating
        /// Reading the body the check carries (`ExchangeSettings.checkBody`).
        case awaitingBody
        case checking
        case connecting
        case forwarding
        /// Relaying the bytes of a protocol the request switched to.
        case tunnelling
        case done
    }

    public let settings: ExchangeSettings
    public let connection: ConnectionFacts
    private var state = State.idle
    private var request: ProxiedRequest?
    private var keepAlive = true
    /// The client's HTTP version, which local answers use.
    public private(set) var requestVersion = HTTPVersion.http1_1
    /// A gRPC call (HTTP/2 with a gRPC content type): local answers go to it in gRPC's form.
    public private(set) var requestIsGRPC = false
    private var declaredLength: Int?
    private var chunked = false
    /// The client waits for `100 Continue` before its body, and has not had it.
    private var continueExpected = false
    private var requestEnded = false
    private var held: [ByteBuffer] = []
    private var heldBytes = 0
    private var responseStarted = false
    private var checkStarted: UInt64 = 0
    private var upstreamStarted: UInt64 = 0
    public private(set) var record = ExchangeRecord()

    public init(settings: ExchangeSettings, connection: ConnectionFacts) {
        self.settings = settings
        self.connection = connection
        record.peerPrincipal = connection.peerIdentity?.principal
    }

    /// Whether the exchange is over (its record final).
    public var isDone: Bool { if case .done = state { true } else { false } }

    // MARK: - The client's request

    public mutating func receiveHead(_ head: HTTPRequestHead, now: UInt64) -> Action {
        guard case .idle = state else { return fail(.text(400, "malformed HTTP request", closeConnection: true), now: now) }
        record.startNanos = now
        record.method = head.method.rawValue
        record.target = head.uri
        record.authority = head.headers.first(name: "host") ?? ""
        // After a request asking to upgrade, HTTP/1 has no next request on the connection: it becomes the other
        // protocol's, or closes.
        keepAlive = head.isKeepAlive && !(head.version.major == 1 && RequestAdmission.asksToUpgrade(head.headers))
        requestVersion = head.version
        requestIsGRPC = head.version.major >= 2 && ForwardingStage.isGRPC(contentType: head.headers.first(name: "content-type"))
        let request: ProxiedRequest
        switch RequestAdmission.admit(
            head, connection: connection, identity: .init(ownSPIFFEID: settings.ownIdentity?.uri),
            pathNormalizer: settings.pathNormalizer)
        {
        case .failure(let refusal):
            return fail(refusal, now: now)
        case .success(let admitted):
            request = admitted
        }
        if request.target != head.uri {  // an absolute-form target, now a path and a host, or a normalized path
            record.target = request.target
            record.authority = request.authority
        }
        record.requestID = request.requestID
        if let text = head.headers.first(name: "content-length"), let length = Int(text) {
            declaredLength = length
            if length > settings.maximumRequestBodyBytes { return fail(Self.bodyTooLarge(settings), now: now) }
            if let checkBody = settings.checkBody, length > checkBody.maximumBytes, !checkBody.allowPartial {
                return fail(Self.bodyTooLargeToCheck(checkBody), now: now)
            }
        }
        chunked = head.headers.contains(name: "transfer-encoding")
        continueExpected = request.expectsContinue && bodyExpected
        self.request = request
        guard let authenticator = settings.authenticator else { return startCheck(now: now) }
        let authenticationRequest = RequestAuthenticationStage.authenticationRequest(request, connection: connection)
        guard let result = authenticator.authenticateIfReady(authenticationRequest) else {
            state = .authenticating
            return .authenticate(authenticator, authenticationRequest)
        }
        return authenticated(result, now: now)
    }

    public mutating func receiveBody(_ chunk: ByteBuffer, now: UInt64) -> Action {
        record.requestBodyBytes += chunk.readableBytes
        switch state {
        case .authenticating, .awaitingBody, .checking, .connecting:
            if record.requestBodyBytes > settings.maximumRequestBodyBytes { return fail(Self.bodyTooLarge(settings), now: now) }
            held.append(chunk)
            heldBytes += chunk.readableBytes
            if let checkBody = settings.checkBody, state == .authenticating || state == .awaitingBody {
                // The body the check will carry: past its bound it is refused, or checked in part; short of that,
                // reading goes on (the end starts the check).
                if !checkBody.allowPartial && heldBytes > checkBody.maximumBytes {
                    return fail(Self.bodyTooLargeToCheck(checkBody), now: now)
                }
                guard checkBody.allowPartial && heldBytes >= checkBody.maximumBytes else { return .none }
                return state == .awaitingBody ? startCheck(now: now) : .pauseReading
            }
            return heldBytes >= settings.maximumBufferedBodyBytes ? .pauseReading : .none
        case .forwarding:
            if record.requestBodyBytes > settings.maximumRequestBodyBytes {
                // Too late for a clean 413 once the response began; the upstream must not get the rest.
                return responseStarted ? abort(now: now) : fail(Self.bodyTooLarge(settings), now: now)
            }
            return .sendRequestBody(chunk)
        case .idle, .tunnelling, .done:
            return .none
        }
    }

    public mutating func receiveEnd(now: UInt64) -> Action {
        requestEnded = true
        switch state {
        case .forwarding: return .sendRequestEnd
        case .awaitingBody: return startCheck(now: now)
        default: return .none
        }
    }

    /// The client connection closed (or reset) before the exchange was over.
    public mutating func clientClosed(now: UInt64) -> Action {
        guard !isDone else { return .none }
        record.status = record.status == 0 ? 499 : record.status
        return abort(now: now)
    }

    // MARK: - RequestAuthentication and the check

    public mutating func authenticated(_ result: AuthenticationResult, now: UInt64) -> Action {
        guard var request, state == .idle || state == .authenticating else { return .none }
        if let refusal = RequestAuthenticationStage.apply(result, to: &request) {
            record.outcome = .unauthenticated
            return respond(refusal, now: now)
        }
        record.requestPrincipal = request.token?.principal
        self.request = request
        return startCheck(now: now)
    }

    private mutating func startCheck(now: UInt64) -> Action {
        guard let request else { return .none }
        var body: CheckRequestStage.Body?
        if let checkBody = settings.checkBody {
            let enough = checkBody.allowPartial && heldBytes >= checkBody.maximumBytes
            if !requestEnded && bodyExpected && !enough {
                state = .awaitingBody
                return takeContinue() ? .sendContinue : .none
            }
            body = CheckRequestStage.Body(
                held, maximumBytes: checkBody.maximumBytes, whole: requestEnded || !bodyExpected, asBytes: checkBody.packAsBytes)
        }
        state = .checking
        checkStarted = now
        return .check(CheckRequestStage.parts(
            request, connection: connection, workload: settings.workload, ownIdentity: settings.ownIdentity, body: body))
    }

    /// Whether `100 Continue` is owed (once).
    private mutating func takeContinue() -> Bool {
        defer { continueExpected = false }
        return continueExpected
    }

    /// Whether the request may still have body to come: HTTP/1 says so in its head; HTTP/2 only by ending.
    private var bodyExpected: Bool {
        if let declaredLength { return declaredLength > 0 }
        return chunked || requestVersion.major >= 2
    }

    public mutating func checked(_ result: Result<Envoy_Service_Auth_V3_CheckResponse, CheckFailure>, now: UInt64) -> Action {
        guard case .checking = state, var request else { return .none }
        record.checkNanos = now &- checkStarted
        if case .success(let response) = result { record.decisionID = Self.decisionID(response) }
        switch CheckResponseStage.verdict(result, failureStatus: settings.failureStatus) {
        case .deny(let denial):
            record.outcome = .denied
            return respond(denial, now: now)
        case .failed(let failure, let response):
            record.outcome = .checkFailed
            record.checkFailure = failure
            return respond(response, now: now)
        case .allow(let allowed):
            record.outcome = .allowed
            CheckResponseStage.apply(allowed, to: &request)
            self.request = request
            responseHeaders = allowed.responseHeaders
            state = .connecting
            upstreamStarted = now
            return .connectUpstream(sendContinue: takeContinue() && !requestEnded)
        }
    }

    private var responseHeaders: [HeaderMutation] = []

    /// The decision id a Warden server gives: `x-warden-decision-id` on a denial, `decision_id` in the dynamic
    /// metadata (as OPA-Envoy gives it) otherwise.
    static func decisionID(_ response: Envoy_Service_Auth_V3_CheckResponse) -> String? {
        if response.hasDynamicMetadata, case .stringValue(let id)? = response.dynamicMetadata.fields["decision_id"]?.kind {
            return id
        }
        return response.deniedResponse.headers.first { $0.header.key.lowercased() == ExtAuthzDecision.WardenHeader.decisionID }?
            .header.value
    }

    // MARK: - The upstream

    public mutating func upstreamConnected(now: UInt64) -> Action {
        guard case .connecting = state, let request else { return .none }
        state = .forwarding
        let framing = ForwardingStage.framing(declaredLength: declaredLength, received: heldBytes, ended: requestEnded)
        let head = ForwardingStage.upstreamHead(
            request, framing: framing, upstreamAuthority: settings.upstreamAuthority, upstreamHTTP2: settings.upstreamHTTP2)
        if settings.upstreamHTTP2, !ForwardingStage.fitsOneHTTP2Frame(
            head.headers, pseudo: [":method": head.method.rawValue, ":scheme": "https", ":path": head.uri])
        {
            record.upstreamFailure = "request_headers_too_large"
            return respond(.text(431, "request header fields too large for the upstream's HTTP/2 frames"), now: now)
        }
        let body = held
        held = []
        heldBytes = 0
        return .sendRequest(head, body: body, end: requestEnded)
    }

    public mutating func upstreamConnectFailed(_ error: UpstreamConnectError, now: UInt64) -> Action {
        guard case .connecting = state else { return .none }
        record.upstreamFailure = error.kind.rawValue
        let message = error.kind == .secureNaming
            ? "upstream connect error: the upstream's identity is not the one expected"
            : "upstream connect error: the upstream is not reachable"
        return respond(.text(503, message), now: now)
    }

    public mutating func upstreamResponseHead(_ head: HTTPResponseHead, now: UInt64) -> Action {
        guard case .forwarding = state, let request else { return .none }
        if head.status == .switchingProtocols { return switchProtocols(head, request: request, now: now) }
        // A 100 Continue is the upstream's business with the request body; the client's own expectation was
        // answered by the proxy.
        if head.status.code >= 100 && head.status.code < 200 { return .none }
        record.upstreamNanos = now &- upstreamStarted
        var downstream = ForwardingStage.downstreamHead(head, responseHeaders: responseHeaders, version: request.version)
        if request.version.major == 2, !ForwardingStage.fitsOneHTTP2Frame(downstream.headers, pseudo: [":status": "200"]) {
            record.upstreamFailure = "response_headers_too_large"
            return respond(.text(502, "the upstream's response header fields are too large for HTTP/2 frames"), now: now)
        }
        responseStarted = true
        record.status = Int(head.status.code)
        if request.version.major == 1 && !keepAlive {
            // The connection ends with this response (the client asked, or its request asked to upgrade): say so.
            downstream.headers.replaceOrAdd(name: "connection", value: "close")
        } else if request.version == .http1_0 {
            // HTTP/1.0 has no chunked coding: a body without a length ends with the connection. With a length (or
            // no body), the connection is kept, and an HTTP/1.0 client must be told so.
            let bodiless = request.method == .HEAD || head.status.code == 204 || head.status.code == 304
            if bodiless || downstream.headers.contains(name: "content-length") {
                downstream.headers.replaceOrAdd(name: "connection", value: "keep-alive")
            } else {
                keepAlive = false
            }
        }
        return .sendResponseHead(downstream)
    }

    /// A `101` from the upstream: the tunnel the request asked for, or, unasked, a broken exchange.
    private mutating func switchProtocols(_ head: HTTPResponseHead, request: ProxiedRequest, now: UInt64) -> Action {
        guard request.upgrade != nil, let agreed = head.headers.first(name: "upgrade") else {
            record.upstreamFailure = "protocol_error"
            return respond(.text(502, "the upstream switched protocols the request did not ask for"), now: now)
        }
        state = .tunnelling
        responseStarted = true
        record.status = 101
        record.upstreamNanos = now &- upstreamStarted
        var downstream = ForwardingStage.downstreamHead(head, responseHeaders: responseHeaders, version: request.version)
        downstream.headers.add(name: "connection", value: "upgrade")
        downstream.headers.add(name: "upgrade", value: agreed)
        return .switchProtocols(downstream)
    }

    /// The tunnel closed: `clientBytes` went from the client to the upstream, `upstreamBytes` back.
    public mutating func tunnelClosed(clientBytes: Int, upstreamBytes: Int, now: UInt64) {
        guard case .tunnelling = state else { return }
        state = .done
        record.requestBodyBytes += clientBytes
        record.responseBodyBytes += upstreamBytes
        finishRecord(now: now)
    }

    public mutating func upstreamResponseBody(_ chunk: ByteBuffer) -> Action {
        guard case .forwarding = state, responseStarted else { return .none }
        record.responseBodyBytes += chunk.readableBytes
        return .sendResponseBody(chunk)
    }

    /// The upstream's response ended; `upstreamKeepAlive` says whether its connection may carry another request.
    /// Its `trailers` (gRPC's status) go on to an HTTP/2 client; HTTP/1.1 clients do not get them, as Envoy's
    /// default.
    public mutating func upstreamResponseEnd(upstreamKeepAlive: Bool, trailers: HTTPHeaders? = nil, now: UInt64) -> Action {
        guard case .forwarding = state, responseStarted else { return .none }
        state = .done
        finishRecord(now: now)
        // A request still sending its body cannot share its connections any more; nor can one that asked the
        // upstream to switch protocols.
        let reusable = upstreamKeepAlive && requestEnded && request?.upgrade == nil
        let passed = requestVersion.major >= 2 ? trailers.flatMap(ForwardingStage.downstreamTrailers) : nil
        return .finish(releaseUpstream: reusable, closeDownstream: !keepAlive || !requestEnded, trailers: passed)
    }

    /// The upstream connection failed or closed before the response ended.
    public mutating func upstreamFailed(now: UInt64) -> Action {
        guard case .forwarding = state else { return .none }
        record.upstreamFailure = "reset"
        if responseStarted { return abort(now: now) }
        return respond(.text(503, "upstream connect error or disconnect/reset before headers"), now: now)
    }

    /// No response head within the upstream timeout.
    public mutating func upstreamTimedOut(now: UInt64) -> Action {
        switch state {
        case .connecting:
            record.upstreamFailure = "timeout"
            return respond(.text(504, "upstream request timeout"), now: now)
        case .forwarding where !responseStarted:
            record.upstreamFailure = "timeout"
            return respond(.text(504, "upstream request timeout"), now: now)
        default:
            return .none
        }
    }

    // MARK: - Ending

    /// A local answer: the exchange ends with it; the connection stays open only when the whole request was read
    /// and the client wants it kept.
    private mutating func respond(_ response: LocalResponse, now: UInt64) -> Action {
        var response = response
        if requestIsGRPC {
            record.grpcStatus = ForwardingStage.grpcStatus(forHTTPStatus: response.status)
            response = ForwardingStage.grpcLocalResponse(response)
        }
        let close = response.closeConnection || !keepAlive || !requestEnded
        state = .done
        record.status = response.status
        record.responseBodyBytes = response.body.utf8.count
        held = []
        heldBytes = 0
        finishRecord(now: now)
        return .respond(response, close: close)
    }

    private mutating func fail(_ response: LocalResponse, now: UInt64) -> Action {
        record.outcome = .rejected
        return respond(response, now: now)
    }

    private mutating func abort(now: UInt64) -> Action {
        state = .done
        finishRecord(now: now)
        return .abort
    }

    private mutating func finishRecord(now: UInt64) {
        record.totalNanos = now &- record.startNanos
    }

    /// Records a request refused before it could be read (a head that did not parse).
    public mutating func recordRejection(status: Int, now: UInt64) {
        record.startNanos = now
        record.status = status
        record.outcome = .rejected
        state = .done
    }

    static func bodyTooLarge(_ settings: ExchangeSettings) -> LocalResponse {
        .text(413, "request body exceeds the limit of \(settings.maximumRequestBodyBytes) bytes", closeConnection: true)
    }

    static func bodyTooLargeToCheck(_ checkBody: ExchangeSettings.CheckBody) -> LocalResponse {
        .text(413, "request body exceeds the \(checkBody.maximumBytes) bytes the check may carry", closeConnection: true)
    }
}
