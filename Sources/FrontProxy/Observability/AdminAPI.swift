import Networking

/// The admin listener (`--admin`): `/metrics` (Prometheus text) and `/ready` (200 while the proxy takes requests,
/// 503 once it drains).
public enum AdminAPI {
    public static func handle(_ request: HTTPRequest, metrics: ProxyMetrics, isReady: Bool) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse(status: 405, headers: [("allow", "GET, HEAD")])
        }
        switch request.path {
        case "/metrics":
            return HTTPResponse(
                status: 200, headers: [("content-type", "text/plain; version=0.0.4; charset=utf-8")], body: metrics.exposition())
        case "/ready":
            return isReady
                ? HTTPResponse(status: 200, headers: [("content-type", "text/plain")], body: Array("ready\n".utf8))
                : HTTPResponse(status: 503, headers: [("content-type", "text/plain")], body: Array("draining\n".utf8))
        default:
            return HTTPResponse(status: 404, headers: [("content-type", "text/plain")], body: Array("not found\n".utf8))
        }
    }
}
