import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The HTTP client for control-plane traffic (key sets, bundles, log uploads): async-http-client's pooled
/// HTTP/1.1 and HTTP/2 connections, with a deadline per request, a bound on every response body, and redirects
/// followed here so that an https location never sends Warden to plain http.
public final class ControlPlaneClient: Sendable {
    public struct Options: Sendable {
        /// How https servers are verified (system roots by default).
        public var tls: TLSConfiguration
        public var userAgent: String
        public var maximumRedirects: Int
        public var connectTimeout: Duration

        public init(
            tls: TLSConfiguration = .makeClientConfiguration(), userAgent: String = "warden",
            maximumRedirects: Int = 3, connectTimeout: Duration = .seconds(5)
        ) {
            self.tls = tls
            self.userAgent = userAgent
            self.maximumRedirects = maximumRedirects
            self.connectTimeout = connectTimeout
        }
    }

    /// A response, its body read whole (within the caller's bound).
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        /// The first value of a header, by case-insensitive name.
        public func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
    }

    /// Why a request failed: the host and what went wrong, never a response body.
    public struct RequestError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }

        public init(message: String) {
            self.message = message
        }
    }

    public let options: Options
    private let client: HTTPClient

    public init(options: Options = Options()) {
        self.options = options
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: options.tls, redirectConfiguration: .disallow,
            timeout: .init(connect: TimeAmount(options.connectTimeout)))
        configuration.decompression = .disabled
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit {
        // The client keeps itself alive until its connections are closed.
        client.shutdown { _ in }
    }

    /// GETs `url`, following redirects (never from https to http), within `timeout` overall.
    public func get(
        _ url: String, headers: [(String, String)] = [], timeout: Duration, maximumBodyBytes: Int
    ) async throws(RequestError) -> Response {
        try await send(method: .GET, url, headers: headers, timeout: timeout, maximumBodyBytes: maximumBodyBytes)
    }

    /// Sends a request with a body; redirects are followed only for GET and HEAD.
    public func send(
        method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: Duration,
        maximumBodyBytes: Int
    ) async throws(RequestError) -> Response {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        var current = url
        for _ in 0...options.maximumRedirects {
            let response = try await once(method: method, current, headers: headers, body: body, deadline: deadline,
                                          maximumBodyBytes: maximumBodyBytes)
            guard [301, 302, 303, 307, 308].contains(response.status), method == .GET || method == .HEAD,
                  let location = response.header("location")
            else { return response }
            guard let next = URL(string: location, relativeTo: URL(string: current))?.absoluteURL else {
                throw RequestError(message: "\(Self.host(current)) redirected to an unusable location")
            }
            guard let scheme = next.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
                throw RequestError(message: "\(Self.host(current)) redirected to an unusable location")
            }
            if current.lowercased().hasPrefix("https:") && scheme == "http" {
                throw RequestError(message: "\(Self.host(current)) redirected from https to http")
            }
            current = next.absoluteString
        }
        throw RequestError(message: "\(Self.host(url)) redirected more than \(options.maximumRedirects) times")
    }

    private func once(
        method: HTTPMethod, _ url: String, headers: [(String, String)], body: [UInt8]?, deadline: NIODeadline,
        maximumBodyBytes: Int
    ) async throws(RequestError) -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "user-agent", value: options.userAgent)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await client.execute(request, deadline: deadline)
            if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maximumBodyBytes {
                throw RequestError(message: "the response from \(Self.host(url)) is larger than \(maximumBodyBytes) bytes")
            }
            let bytes: ByteBuffer
            do {
                bytes = try await response.body.collect(upTo: maximumBodyBytes)
            } catch is NIOTooManyBytesError {
                throw RequestError(message: "the response from \(Self.host(url)) is larger than \(maximumBodyBytes) bytes")
            }
            return Response(
                status: Int(response.status.code), headers: response.headers.map { (name: $0.name, value: $0.value) },
                body: Array(bytes.readableBytesView))
        } catch let error as RequestError {
            throw error
        } catch {
            throw RequestError(message: Self.describe(error, url: url))
        }
    }

    static func host(_ url: String) -> String {
        URL(string: url)?.host ?? url
    }

    static func describe(_ error: any Error, url: String) -> String {
        let host = host(url)
        if let error = error as? HTTPClientError {
            if [.deadlineExceeded, .readTimeout, .connectTimeout].contains(error) { return "timed out fetching from \(host)" }
            if [.invalidURL, .emptyHost, .emptyScheme].contains(error) { return "`\(url)` is not a usable http or https URL" }
        }
        if error is NIOConnectionError || error is IOError { return "cannot connect to \(host)" }
        if error is NIOSSLError || error is BoringSSLError { return "TLS error talking to \(host): \(error)" }
        return "fetching from \(host) failed: \(error)"
    }
}
