import JOSE
import Identity
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A response to a GET.
struct HTTPResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }
}

/// Why a fetch failed. Messages name the URL's host and what went wrong, never a response body.
struct FetchError: Error, Sendable, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A minimal HTTP/1.1 client for GET requests over TCP or TLS, with a deadline and a response size limit. One
/// connection per request (`Connection: close`): key sets are fetched every few minutes, not per request.
struct HTTPFetcher: Sendable {
    let group: any EventLoopGroup
    let tlsContext: NIOSSLContext
    let maximumBodySize: Int
    let userAgent: String

    init(group: any EventLoopGroup, tls: TLSConfiguration, maximumBodySize: Int, userAgent: String) throws {
        self.group = group
        self.tlsContext = try NIOSSLContext(configuration: tls)
        self.maximumBodySize = maximumBodySize
        self.userAgent = userAgent
    }

    /// GETs `url`, following up to `redirects` redirects (never from https to http), within `timeout` overall.
    func get(_ url: HTTPURL, timeout: Duration, redirects: Int = 3) async throws(FetchError) -> HTTPResponse {
        let deadline = ContinuousClock.now + timeout
        var current = url
        for _ in 0...redirects {
            let response = try await getOnce(current, deadline: deadline)
            guard [301, 302, 303, 307, 308].contains(response.status), let location = response.header("location") else {
                return response
            }
            let next: HTTPURL
            if location.hasPrefix("/") {
                next = HTTPURL(isSecure: current.isSecure, host: current.host, port: current.port, target: location)
            } else {
                guard case .success(let parsed) = HTTPURL.parse(location) else {
                    throw FetchError(message: "\(current.host) redirected to an unusable location")
                }
                next = parsed
            }
            if current.isSecure && !next.isSecure {
                throw FetchError(message: "\(current.host) redirected from https to http")
            }
            current = next
        }
        throw FetchError(message: "\(url.host) redirected more than \(redirects) times")
    }

    private func getOnce(_ url: HTTPURL, deadline: ContinuousClock.Instant) async throws(FetchError) -> HTTPResponse {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { throw FetchError(message: "timed out fetching from \(url.host)") }
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: HTTPResponse.self)
        let tls = url.isSecure ? tlsContext : nil
        let serverName = Self.isIPAddress(url.host) ? nil : url.host
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target)
        head.headers.add(name: "Host", value: url.authority)
        head.headers.add(name: "Accept", value: "application/json")
        head.headers.add(name: "User-Agent", value: userAgent)
        head.headers.add(name: "Connection", value: "close")
        let request = head
        let limit = maximumBodySize
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(remaining))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        ResponseCollector(request: request, promise: promise, limit: limit, host: url.host))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: url.host, port: url.port).get()
        } catch {
            promise.fail(error)
            throw FetchError(message: "cannot connect to \(url.host):\(url.port): \(Self.describe(error))")
        }
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(deadline - ContinuousClock.now)) {
            promise.fail(FetchError(message: "timed out fetching from \(url.host)"))
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            return try await promise.futureResult.get()
        } catch let error as FetchError {
            throw error
        } catch {
            throw FetchError(message: "fetching from \(url.host) failed: \(Self.describe(error))")
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || host.allSatisfy { $0 == "." || $0.isNumber }
    }

    /// A short, lowercase description of a connection error.
    static func describe(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return describe(first.error) }
            if error.dnsAError != nil || error.dnsAAAAError != nil { return "the host name could not be resolved" }
            return "no address to connect to"
        }
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        if case ChannelError.connectTimeout = error { return "connecting timed out" }
        if let error = error as? NIOSSLError { return "TLS error \(error)" }
        if let error = error as? BoringSSLError { return "TLS error \(error)" }
        return "\(error)"
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }
}

/// Sends one request when the connection opens and gathers the response.
private final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let promise: EventLoopPromise<HTTPResponse>
    private let limit: Int
    private let host: String
    private var response: HTTPResponse?
    private var finished = false

    init(request: HTTPRequestHead, promise: EventLoopPromise<HTTPResponse>, limit: Int, host: String) {
        self.request = request
        self.promise = promise
        self.limit = limit
        self.host = host
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            response = HTTPResponse(status: Int(head.status.code), headers: head.headers.map { ($0.name, $0.value) }, body: [])
        case .body(var buffer):
            guard var current = response else { return }
            guard current.body.count + buffer.readableBytes <= limit else {
                finish(context, .failure(FetchError(message: "the response from \(host) is larger than \(limit) bytes")))
                return
            }
            current.body += buffer.readBytes(length: buffer.readableBytes) ?? []
            response = current
        case .end:
            if let response {
                finish(context, .success(response))
            } else {
                finish(context, .failure(FetchError(message: "\(host) sent no response")))
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(context, .failure(FetchError(message: "fetching from \(host) failed: \(HTTPFetcher.describe(error))")))
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context, .failure(FetchError(message: "\(host) closed the connection before the response ended")))
        context.fireChannelInactive()
    }

    private func finish(_ context: ChannelHandlerContext, _ result: Result<HTTPResponse, FetchError>) {
        guard !finished else { return }
        finished = true
        promise.completeWith(result.mapError { $0 as any Error })
        context.close(promise: nil)
    }
}
