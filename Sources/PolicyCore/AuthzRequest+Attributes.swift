/// The flat attribute form of a request: one object whose keys are Istio's attribute names
/// (`source.principal`, `request.headers`, ...). `warden decide` reads it, the decision log writes it, and
/// `warden replay` reads it back.
extension AuthzRequest {
    public enum AttributeKey {
        public static let sourcePrincipal = "source.principal"
        public static let sourceNamespace = "source.namespace"
        public static let sourceIP = "source.ip"
        public static let remoteIP = "remote.ip"
        public static let destinationIP = "destination.ip"
        public static let destinationPort = "destination.port"
        public static let destinationNamespace = "destination.namespace"
        public static let destinationLabels = "destination.workload_labels"
        public static let host = "request.host"
        public static let method = "request.method"
        public static let path = "request.path"
        public static let headers = "request.headers"
        public static let authPrincipal = "request.auth.principal"
        public static let authAudiences = "request.auth.audiences"
        public static let authPresenter = "request.auth.presenter"
        public static let authClaims = "request.auth.claims"
        public static let connectionSNI = "connection.sni"

        public static let all = [
            sourcePrincipal, sourceNamespace, sourceIP, remoteIP, destinationIP, destinationPort,
            destinationNamespace, destinationLabels, host, method, path, headers, authPrincipal, authAudiences,
            authPresenter, authClaims, connectionSNI,
        ]
    }

    /// A request attribute that could not be read.
    public struct AttributeError: Error, Sendable, Hashable, CustomStringConvertible {
        public var key: String?
        public var message: String

        public var description: String { key.map { "`\($0)`: \(message)" } ?? message }
    }

    /// Reads the flat attribute form. Unknown keys are errors (with a suggestion), so a typo never silently
    /// becomes an absent attribute.
    public init(attributes: Value) throws(AttributeError) {
        guard case .object(let members) = attributes else {
            throw AttributeError(key: nil, message: "a request must be an object of attributes, found \(attributes.typeName)")
        }
        self.init()
        typealias K = AttributeKey
        for (keyValue, value) in members {
            guard case .string(let key) = keyValue else {
                throw AttributeError(key: nil, message: "attribute names must be strings")
            }
            if value.isNull { continue }
            switch key {
            case K.sourcePrincipal:
                source.principal = SPIFFEID.principal(ofPeer: try Self.string(value, key))
            case K.sourceNamespace: source.explicitNamespace = try Self.string(value, key)
            case K.sourceIP: source.ip = try Self.ip(value, key)
            case K.remoteIP: remoteIP = try Self.ip(value, key)
            case K.destinationIP: destination.ip = try Self.ip(value, key)
            case K.destinationPort:
                guard let n = value.numberValue?.intValue, (0...65535).contains(n) else {
                    throw AttributeError(key: key, message: "expected a port number from 0 to 65535, found \(value)")
                }
                destination.port = n
            case K.destinationNamespace: destination.namespace = try Self.string(value, key)
            case K.destinationLabels: destination.labels = try Self.stringMap(value, key)
            case K.host: http.host = try Self.string(value, key)
            case K.method: http.method = try Self.string(value, key)
            case K.path: http.setTarget(try Self.string(value, key))
            case K.headers:
                var headers = Headers()
                for (name, v) in try Self.stringMap(value, key, allowLists: true) { headers.add(name, v) }
                http.headers = headers
            case K.authPrincipal: authOrEmpty.principal = try Self.string(value, key)
            case K.authAudiences:
                if case .string(let s) = value {
                    authOrEmpty.audiences = [s]
                } else {
                    guard case .array(let items) = value else {
                        throw AttributeError(key: key, message: "expected a list of strings, found \(value.typeName)")
                    }
                    authOrEmpty.audiences = try items.map { v throws(AttributeError) in try Self.string(v, key) }
                }
            case K.authPresenter: authOrEmpty.presenter = try Self.string(value, key)
            case K.authClaims:
                guard case .object = value else {
                    throw AttributeError(key: key, message: "expected an object of claims, found \(value.typeName)")
                }
                authOrEmpty.claims = value
            case K.connectionSNI: connectionSNI = try Self.string(value, key)
            default:
                var message = "unknown attribute"
                if let guess = closest(to: key, in: K.all) { message += "; did you mean `\(guess)`?" }
                throw AttributeError(key: key, message: message)
            }
        }
        // A token's principal is `iss/sub`; derive it when only the claims were given.
        if var a = auth, a.principal == nil, let iss = a.claims["iss"]?.stringValue, let sub = a.claims["sub"]?.stringValue {
            a.principal = iss + "/" + sub
            auth = a
        }
    }

    private var authOrEmpty: RequestAuth {
        get { auth ?? RequestAuth() }
        set { auth = newValue }
    }

    /// The flat attribute form; absent attributes are left out.
    public var attributes: Value {
        typealias K = AttributeKey
        var o: [String: Value] = [:]
        if let p = source.principal { o[K.sourcePrincipal] = .string(p) }
        if let ns = source.explicitNamespace { o[K.sourceNamespace] = .string(ns) }
        if let ip = source.ip { o[K.sourceIP] = .string(ip.description) }
        if let ip = remoteIP { o[K.remoteIP] = .string(ip.description) }
        if let ip = destination.ip { o[K.destinationIP] = .string(ip.description) }
        if let port = destination.port { o[K.destinationPort] = .int(port) }
        if let ns = destination.namespace { o[K.destinationNamespace] = .string(ns) }
        if !destination.labels.isEmpty { o[K.destinationLabels] = .object(destination.labels.mapValues(Value.string)) }
        if let h = http.host { o[K.host] = .string(h) }
        if let m = http.method { o[K.method] = .string(m) }
        if let p = http.path { o[K.path] = .string(http.query.map { p + "?" + $0 } ?? p) }
        if !http.headers.isEmpty {
            var h: [String: Value] = [:]
            for (name, value) in http.headers { h[name] = .string(value) }
            o[K.headers] = .object(h)
        }
        if let a = auth {
            if let p = a.principal { o[K.authPrincipal] = .string(p) }
            if !a.audiences.isEmpty { o[K.authAudiences] = .array(a.audiences.map(Value.string)) }
            if let p = a.presenter { o[K.authPresenter] = .string(p) }
            o[K.authClaims] = a.claims
        }
        if let sni = connectionSNI { o[K.connectionSNI] = .string(sni) }
        return .object(o)
    }

    private static func string(_ v: Value, _ key: String) throws(AttributeError) -> String {
        guard case .string(let s) = v else {
            throw AttributeError(key: key, message: "expected a string, found \(v.typeName) \(v)")
        }
        return s
    }

    private static func ip(_ v: Value, _ key: String) throws(AttributeError) -> IPAddress {
        let s = try string(v, key)
        guard let ip = IPAddress(s) else { throw AttributeError(key: key, message: "invalid IP address \"\(s)\"") }
        return ip
    }

    private static func stringMap(_ v: Value, _ key: String, allowLists: Bool = false) throws(AttributeError) -> [String: String] {
        guard case .object(let members) = v else {
            throw AttributeError(key: key, message: "expected an object of strings, found \(v.typeName)")
        }
        var out: [String: String] = [:]
        for (k, value) in members {
            guard case .string(let name) = k else { throw AttributeError(key: key, message: "names must be strings") }
            switch value {
            case .string(let s):
                out[name] = s
            case .array(let items) where allowLists:
                out[name] = try items.map { v throws(AttributeError) in try string(v, "\(key)[\(name)]") }.joined(separator: ",")
            default:
                throw AttributeError(key: "\(key)[\(name)]", message: "expected a string, found \(value.typeName)")
            }
        }
        return out
    }
}
