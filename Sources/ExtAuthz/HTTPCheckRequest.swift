import PolicyCore

/// ext_authz's HTTP mode: the proxy forwards the original request's method, path (under a prefix) and headers
/// to the authorization server. This builds the `CheckRequest` Envoy's gRPC mode would have sent for it, so both
/// modes decide through one mapping.
public enum HTTPCheckRequest {
    /// - Parameters:
    ///   - target: the original request target (path and query), the prefix already removed.
    ///   - headers: the forwarded headers, in order; repeated names are joined with `,`.
    ///   - source: the calling proxy's address.
    public static func make(
        method: String,
        target: String,
        headers: [(name: String, value: String)],
        body: [UInt8] = [],
        source: CheckRequestParts.Peer = .init()
    ) -> Envoy_Service_Auth_V3_CheckRequest {
        func first(_ name: String) -> String? { headers.first { Headers.normalize($0.name) == name }?.value }
        return CheckRequestParts(
            source: source, requestID: first("x-request-id"), method: method, scheme: "",
            host: first("host") ?? first(":authority") ?? "", target: target, headers: headers, body: body
        ).checkRequest
    }
}
