import Foundation
import PolicyCore
import SwiftProtobuf

/// ext_authz's HTTP mode: the proxy forwards the original request's method, path (under a prefix) and headers
/// to the authorization server. This builds the `CheckRequest` Envoy's gRPC mode would have sent for it, so both
/// modes decide through one mapping.
public enum HTTPCheckRequest {
    public struct Endpoint: Sendable, Hashable {
        public var ip: String
        public var port: Int

        public init(ip: String, port: Int) {
            self.ip = ip
            self.port = port
        }
    }

    /// - Parameters:
    ///   - target: the original request target (path and query), the prefix already removed.
    ///   - headers: the forwarded headers, in order; repeated names are joined with `,`.
    public static func make(
        method: String,
        target: String,
        headers: [(name: String, value: String)],
        body: [UInt8] = [],
        source: Endpoint? = nil,
        destination: Endpoint? = nil
    ) -> Envoy_Service_Auth_V3_CheckRequest {
        var http = Envoy_Service_Auth_V3_AttributeContext.HttpRequest()
        http.method = method
        http.path = target
        var joined: [String: String] = [:]
        for (name, value) in headers {
            let key = name.lowercased()
            joined[key] = joined[key].map { $0 + "," + value } ?? value
        }
        http.headers = joined
        http.host = joined["host"] ?? joined[":authority"] ?? ""
        http.id = joined["x-request-id"] ?? ""
        http.protocol = "HTTP/1.1"
        if !body.isEmpty {
            if let text = String(validating: body, as: UTF8.self) { http.body = text } else { http.rawBody = Data(body) }
            http.size = Int64(body.count)
        }
        var check = Envoy_Service_Auth_V3_CheckRequest()
        check.attributes.request.http = http
        if let source { check.attributes.source.address = address(source) }
        if let destination { check.attributes.destination.address = address(destination) }
        return check
    }

    static func address(_ endpoint: Endpoint) -> Envoy_Config_Core_V3_Address {
        var socket = Envoy_Config_Core_V3_SocketAddress()
        socket.address = endpoint.ip
        socket.portValue = UInt32(clamping: endpoint.port)
        var address = Envoy_Config_Core_V3_Address()
        address.socketAddress = socket
        return address
    }
}
