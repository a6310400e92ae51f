import DecisionPoint
import ExtAuthz
import Foundation
import Networking
import PolicyCore
import PolicyLoading
import Rego

/// The routes of the two HTTP listeners, each a function from a request to a response, tested without sockets.
///
/// The data plane (`dataPlane`) answers the questions proxies and applications ask: ext_authz's HTTP mode,
/// OPA's data API queries (`GET`/`POST /v1/data`) and health. When the listener has an allow-list, only the clients
/// on it may ask. The management API (`admin`) is OPA's REST API for policies, status and metrics, and OPA's data
/// queries for operators; every request on it is first authenticated and authorized (`AdminAuthorizer`), and
/// policy writes are refused unless they are turned on.
public struct HTTPAPI: Sendable {
    public let handler: CheckHandler
    public let store: PolicyStore
    /// Where `/v1/policies` reads and writes; nil when policies come from files given one by one.
    public let documents: PolicyDocuments?
    public let metrics: ServerMetrics
    /// ext_authz HTTP mode: requests under this prefix are checks of the request that follows it
    /// (`/ext_authz/api/items?id=1` checks `/api/items?id=1`).
    public let extAuthzPrefix: String
    /// More members for `/v1/status` (the bundle and decision-log upload states).
    public let statusExtras: (@Sendable () -> [String: Value])?
    /// Whether the data plane answers only clients on its allow-list (`TLSPeer.authorized`).
    public let dataPlaneAllowList: Bool
    /// Who may use the management API.
    public let authorizer: AdminAuthorizer
    /// Whether `PUT`/`DELETE /v1/policies/{id}` may change the policies.
    public let policyWrites: Bool
    /// Where the management API listens (`host:port`), for the data plane's pointers to it; nil when it is off.
    public let adminAddress: String?

    public init(
        handler: CheckHandler, store: PolicyStore, documents: PolicyDocuments?, metrics: ServerMetrics,
        extAuthzPrefix: String = "/ext_authz", statusExtras: (@Sendable () -> [String: Value])? = nil,
        dataPlaneAllowList: Bool = false, authorizer: AdminAuthorizer = AdminAuthorizer(), policyWrites: Bool = false,
        adminAddress: String? = nil
    ) {
        self.statusExtras = statusExtras
        self.handler = handler
        self.store = store
        self.documents = documents
        self.metrics = metrics
        self.extAuthzPrefix = extAuthzPrefix
        self.dataPlaneAllowList = dataPlaneAllowList
        self.authorizer = authorizer
        self.policyWrites = policyWrites
        self.adminAddress = adminAddress
    }

    // MARK: - The data plane

    public func dataPlane(_ request: HTTPRequest, connection: HTTPServer.Connection) -> HTTPResponse {
        let path = request.path
        let asksForDecision = isExtAuthz(path) || path == "/v1/data" || path.hasPrefix("/v1/data/")
        if asksForDecision, dataPlaneAllowList, connection.peer?.authorized != true {
            metrics.recordClientRefused(listener: "http")
            let who = connection.peer.map { "client `\($0.identity)` is not on this listener's allow-list" }
                ?? "this listener answers only clients with a certificate on its allow-list"
            if isExtAuthz(path) { return .text(403, "access denied: \(who)\n") }
            return .error(401, code: "unauthorized", message: who)
        }
        if isExtAuthz(path) { return extAuthz(request, connection: connection) }
        switch (request.method, path) {
        case ("GET", "/health"), ("HEAD", "/health"):
            return health()
        case ("GET", "/v1/data"), ("POST", "/v1/data"):
            return data(request)
        default:
            break
        }
        if path.hasPrefix("/v1/data/") {
            switch request.method {
            case "GET", "POST": return data(request)
            default: return methodNotAllowed(request)
            }
        }
        if path == "/v1/status" || path == "/metrics" || path == "/v1/policies" || path.hasPrefix("/v1/policies/") {
            let where_ = adminAddress.map { "the admin listener (`\($0)`)" } ?? "the admin listener, which is off"
            return .error(404, code: "resource_not_found", message: "`\(path)` is served on \(where_), not on the data plane")
        }
        return .error(404, code: "resource_not_found", message: "no route for \(request.method) `\(path)`")
    }

    func isExtAuthz(_ path: Substring) -> Bool {
        // Compared as bytes: the prefix, then nothing or `/`.
        guard path.utf8.starts(with: extAuthzPrefix.utf8) else { return false }
        let rest = path.utf8.dropFirst(extAuthzPrefix.utf8.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "/")
    }

    // MARK: - The management API

    public func admin(_ request: HTTPRequest, connection: HTTPServer.Connection) async -> HTTPResponse {
        let refusal = authorizer.authorize(request, peer: connection.peer)
        metrics.recordAdminRequest(allowed: refusal == nil)
        if let refusal { return refusal }
        let path = request.path
        switch (request.method, path) {
        case ("GET", "/health"), ("HEAD", "/health"):
            return health()
        case ("GET", "/v1/status"):
            return status()
        case ("GET", "/metrics"):
            return HTTPResponse(
                status: 200, headers: [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                body: metrics.exposition())
        case ("GET", "/v1/policies"):
            return listPolicies()
        default:
            break
        }
        if path.hasPrefix("/v1/policies/") {
            let id = String(path.dropFirst("/v1/policies/".count)).removingPercentEncoding ?? ""
            switch request.method {
            case "GET": return getPolicy(id)
            case "PUT": return policyWrites ? await putPolicy(id, request) : writesOff(request)
            case "DELETE": return policyWrites ? await deletePolicy(id) : writesOff(request)
            default: return methodNotAllowed(request)
            }
        }
        if path == "/v1/data" || path.hasPrefix("/v1/data/") {
            switch request.method {
            case "GET", "POST": return data(request)
            default: return methodNotAllowed(request)
            }
        }
        if isExtAuthz(path) {
            return .error(404, code: "resource_not_found", message: "ext_authz is served on the data plane, not on the admin listener")
        }
        return .error(404, code: "resource_not_found", message: "no route for \(request.method) `\(path)`")
    }

    func writesOff(_ request: HTTPRequest) -> HTTPResponse {
        .error(
            403, code: "invalid_operation",
            message: "policy writes are off: \(request.method) `\(request.path)` was refused; start `warden serve` with "
                + "--allow-policy-writes (or `admin.policy_writes: true`) to change policies through the API")
    }

    // MARK: - ext_authz HTTP mode

    /// The verified-claims header is read only from a client on the listener's allow-list.
    func extAuthz(_ request: HTTPRequest, connection: HTTPServer.Connection) -> HTTPResponse {
        var target = String(request.target.dropFirst(extAuthzPrefix.count))
        if target.isEmpty || target.first == "?" { target = "/" + target }
        // The peer is the calling proxy (its address is `source.ip`); the original destination is not known in
        // this mode, so the workload comes from configuration.
        let result = handler.check(
            method: request.method, target: target, headers: request.headers, body: request.body,
            source: .init(address: connection.remoteIP, port: connection.remotePort), client: connection.peer)
        return Self.httpResponse(result.decision, decisionID: result.decisionID)
    }

    /// 200 allows (its headers go upstream, and Envoy's `x-envoy-auth-headers-to-remove` lists headers to drop);
    /// anything else is the response the client gets.
    static func httpResponse(_ decision: ExtAuthzDecision, decisionID: String) -> HTTPResponse {
        switch decision.outcome {
        case .allowed(let allowed):
            var headers = allowed.headers.map { (name: $0.name, value: $0.value) }
            headers += allowed.responseHeadersToAdd.map { (name: $0.name, value: $0.value) }
            if !allowed.headersToRemove.isEmpty {
                headers.append(("x-envoy-auth-headers-to-remove", allowed.headersToRemove.joined(separator: ",")))
            }
            headers.append((ExtAuthzDecision.WardenHeader.decisionID, decisionID))
            return HTTPResponse(status: 200, headers: headers)
        case .denied(let denied):
            var headers = denied.headers.map { (name: $0.name, value: $0.value) }
            headers.append((ExtAuthzDecision.WardenHeader.decisionID, decisionID))
            if !headers.contains(where: { $0.name.lowercased() == "content-type" }) {
                headers.append(("content-type", "text/plain; charset=utf-8"))
            }
            return HTTPResponse(status: denied.httpStatus, headers: headers, body: Array(denied.body.utf8))
        }
    }

    // MARK: - Health and status

    func health() -> HTTPResponse {
        let status = store.status
        if status.ready { return .json(200, [:]) }
        return .json(503, ["error": .string(status.lastError.isEmpty ? "policies not loaded yet" : "policies failed to load")])
    }

    func status() -> HTTPResponse {
        let status = store.status
        var result: [String: Value] = [
            "ready": .bool(status.ready),
            "revision": status.revision.map(Value.int) ?? .null,
            "loaded_at": status.loadedAt.map { .string(LineLog.timestamp($0)) } ?? .null,
            "policies": .int(status.policies),
            "rego_modules": .int(status.modules),
            "files": .array(status.files.map(Value.string)),
            "reloads": .int(status.reloads),
            "reload_failures": .int(status.failures),
            "warnings": .array(status.warnings.map(\.apiJSON)),
            "last_error": status.lastError.isEmpty ? .null : .array(status.lastError.map(\.apiJSON)),
            "last_error_at": status.lastErrorAt.map { .string(LineLog.timestamp($0)) } ?? .null,
        ]
        if let first = status.lastError.first { result["last_error_message"] = .string(first.description) }
        if let bundleRevision = status.bundleRevision { result["bundle_revision"] = .string(bundleRevision) }
        if let persisted = store.persisted {
            // The last good set kept across restarts: which one, and whether it is what serves now.
            result["persisted"] = .object([
                "file": .string(persisted.file),
                "from_persisted": .bool(status.fromPersisted),
                "revision": status.persistedRevision.map(Value.string) ?? .null,
                "persisted_at": status.persistedAt.map { .string(LineLog.timestamp($0)) } ?? .null,
                "error": status.persistError.map(\.apiJSON) ?? .null,
            ])
            result["from_persisted"] = .bool(status.fromPersisted)
        }
        if let statusExtras { result.merge(statusExtras()) { $1 } }
        return .json(200, ["result": .object(result)])
    }

    // MARK: - Policies (OPA's /v1/policies)

    func listPolicies() -> HTTPResponse {
        guard let documents else { return noDirectory() }
        return .json(200, ["result": .array(documents.all().map { ["id": .string($0.id), "raw": .string($0.text)] })])
    }

    func getPolicy(_ id: String) -> HTTPResponse {
        guard let documents else { return noDirectory() }
        guard let document = documents.document(id: id) else {
            return .error(404, code: "resource_not_found", message: "storage_not_found_error: policy id `\(id)`")
        }
        return .json(200, ["result": ["id": .string(document.id), "raw": .string(document.text)]])
    }

    /// A Rego module (`text/plain`, as OPA takes it, or an id ending in `.rego`) or an AuthorizationPolicy document
    /// (`application/yaml` or `application/json`) is validated with the whole set, written into the policies
    /// directory, and loaded.
    func putPolicy(_ id: String, _ request: HTTPRequest) async -> HTTPResponse {
        guard let documents else { return noDirectory() }
        let contentType = request.header("content-type")?.lowercased() ?? ""
        let ext = (id as NSString).pathExtension
        let isJSON = contentType.contains("json") || ext == "json"
        let isDocument = isJSON || contentType.contains("yaml") || ["yaml", "yml"].contains(ext)
        let defaultExtension = isDocument ? (isJSON ? "json" : "yaml") : PolicyLoader.regoExtension
        guard let file = documents.file(for: id, defaultExtension: defaultExtension) else {
            return .error(400, code: "invalid_parameter", message: "invalid policy id `\(id)`")
        }
        guard let text = String(validating: request.body, as: UTF8.self) else {
            return .error(400, code: "invalid_parameter", message: "the policy is not UTF-8 text")
        }
        if let response = await update(file: file, text: text) { return response }
        return .json(200, [:])
    }

    // MARK: - Data (OPA's /v1/data)

    /// Evaluates the document at the path below `data` with the request's input: `{"result": ...}`, or `{}` when
    /// it is undefined. POST takes `{"input": ...}` as its body; GET takes `?input=<json>`.
    func data(_ request: HTTPRequest) -> HTTPResponse {
        let rest = request.path.dropFirst("/v1/data".count)
        let parts = rest.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        var input: Value?
        let body = request.method == "POST" ? request.body : Array((request.queryParameter("input") ?? "").utf8)
        if !body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            let parsed: Value
            do {
                parsed = try JSONReader.parse(body)
            } catch {
                return .error(400, code: "invalid_parameter", message: "body contains malformed input document: \(error)")
            }
            if request.method == "POST" {
                guard case .object = parsed else {
                    return .error(400, code: "invalid_parameter", message: "the body must be an object: {\"input\": ...}")
                }
                input = parsed["input"]
            } else {
                input = parsed
            }
        }
        guard let snapshot = handler.decisionPoint.snapshot else {
            return .error(503, code: "unavailable", message: "policies are not loaded yet")
        }
        let policies: RegoPolicySet
        if let rego = snapshot.rego {
            policies = rego
        } else {
            do {
                policies = try RegoPolicySet.compile(modules: [])
            } catch {
                return .error(500, code: "internal_error", message: error.description)
            }
        }
        let query: RegoQuery
        do {
            query = try policies.prepare(path: parts)
        } catch {
            return .error(400, code: "invalid_parameter", message: "invalid data path `\(rest)`", errors: error.diagnostics)
        }
        switch query.evaluateValue(input: input) {
        case .undefined:
            return .json(200, [:])
        case .value(let value):
            return .json(200, ["result": value])
        case .error(let problem):
            return .error(500, code: "internal_error", message: problem.description, errors: [problem])
        }
    }

    func deletePolicy(_ id: String) async -> HTTPResponse {
        guard let documents else { return noDirectory() }
        guard let file = documents.existingFile(for: id) else {
            return .error(404, code: "resource_not_found", message: "storage_not_found_error: policy id `\(id)`")
        }
        if let response = await update(file: file, text: nil) { return response }
        return .json(200, [:])
    }

    /// Writes or removes one policy file and reloads, off the event loops (it compiles the whole set); nil when
    /// it worked, else the error response.
    func update(file: String, text: String?) async -> HTTPResponse? {
        let store = self.store
        do {
            _ = try await EventLoops.blocking { try store.update(file: file, text: text) }
            return nil
        } catch let error as PolicyStore.UpdateError {
            return updateError(error)
        } catch {
            return .error(503, code: "unavailable", message: "the server is shutting down")
        }
    }

    func updateError(_ error: PolicyStore.UpdateError) -> HTTPResponse {
        switch error {
        case .invalid(let diagnostics):
            return .error(400, code: "invalid_parameter", message: "error(s) occurred while loading policies", errors: diagnostics)
        case .notFound(let file):
            return .error(404, code: "resource_not_found", message: "no policy file `\(file)`")
        case .io(let diagnostic):
            return .error(500, code: "internal_error", message: diagnostic.message)
        }
    }

    func noDirectory() -> HTTPResponse {
        .error(
            404, code: "resource_not_found",
            message: "the server was started with policy files, not a policies directory, so it has no policy API")
    }

    func methodNotAllowed(_ request: HTTPRequest) -> HTTPResponse {
        .error(405, code: "method_not_allowed", message: "method \(request.method) is not allowed on `\(request.path)`")
    }
}
