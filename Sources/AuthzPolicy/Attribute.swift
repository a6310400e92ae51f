import PolicyCore

/// A reason a policy value is invalid, as the message to show.
public struct SpecError: Error, Sendable, Hashable {
    public var message: String

    public init(_ message: String) { self.message = message }
}

/// An attribute a rule can test, as named by a `when` key or implied by a `from`/`to` field.
public enum Attribute: Sendable, Hashable, CustomStringConvertible {
    case sourcePrincipal
    case sourceNamespace
    case sourceServiceAccount
    case sourceTrustDomain
    case sourceIP
    case remoteIP
    case requestPrincipal
    case requestAudiences
    case requestPresenter
    /// A claim path: `request.auth.claims[groups]`, `request.auth.claims[a][b]`.
    case requestClaim([String])
    /// A header, its name lowercased.
    case requestHeader(String)
    case host
    case method
    case path
    case destinationIP
    case destinationPort
    case connectionSNI
    /// `experimental.envoy.filters.*[...]`: Envoy dynamic metadata, which never reaches Warden.
    case envoyMetadata(String)

    /// The `when` keys Istio documents (map keys written with a placeholder).
    public static let documentedKeys = [
        "request.headers[]", "source.ip", "remote.ip", "source.namespace", "source.serviceAccount",
        "source.trustDomain", "source.principal", "request.auth.principal", "request.auth.audiences",
        "request.auth.presenter", "request.auth.claims[]", "destination.ip", "destination.port", "connection.sni",
    ]

    /// Parses a `when` key the way Istio does; the error explains what is wrong.
    public static func parse(whenKey key: String) -> Result<Attribute, SpecError> {
        switch key {
        case "source.ip": return .success(.sourceIP)
        case "remote.ip": return .success(.remoteIP)
        case "source.namespace": return .success(.sourceNamespace)
        case "source.serviceAccount": return .success(.sourceServiceAccount)
        case "source.trustDomain": return .success(.sourceTrustDomain)
        case "source.principal": return .success(.sourcePrincipal)
        case "request.auth.principal": return .success(.requestPrincipal)
        case "request.auth.audiences": return .success(.requestAudiences)
        case "request.auth.presenter": return .success(.requestPresenter)
        case "destination.ip": return .success(.destinationIP)
        case "destination.port": return .success(.destinationPort)
        case "connection.sni": return .success(.connectionSNI)
        case "destination.namespace":
            return .failure(SpecError("attribute `destination.namespace` is replaced by the policy's `metadata.namespace`"))
        case "destination.name", "destination.user":
            return .failure(SpecError("deprecated attribute `\(key)`: only supported in v1alpha1"))
        default: break
        }
        if key.hasPrefix("request.headers") {
            guard let name = bracketed(key, prefix: "request.headers") else { return .failure(SpecError(badMapKey(key))) }
            return .success(.requestHeader(name.lowercased()))
        }
        if key.hasPrefix("request.auth.claims") {
            guard let path = nestedBracketed(key, prefix: "request.auth.claims") else { return .failure(SpecError(badMapKey(key))) }
            return .success(.requestClaim(path))
        }
        if key.hasPrefix("experimental.envoy.filters.") {
            guard bracketed(key, prefix: key.prefix { $0 != "[" }.description) != nil else { return .failure(SpecError(badMapKey(key))) }
            return .success(.envoyMetadata(key))
        }
        if key.hasPrefix("destination.labels") {
            return .failure(SpecError("attribute `\(key)` is replaced by the workload selector"))
        }
        var message = "unknown attribute `\(key)`"
        let names = documentedKeys.map { $0.replacing("[]", with: "") }
        let base = key.prefix { $0 != "[" }
        if let guess = PolicyCore.closest(to: String(base), in: names) {
            message += "; did you mean `\(guess)\(key.dropFirst(base.count))`?"
        }
        return .failure(SpecError(message))
    }

    private static func badMapKey(_ key: String) -> String { "bad key `\(key)`: should have the form `a[b]`" }

    /// The text between the brackets of `prefix[name]`.
    private static func bracketed(_ key: String, prefix: String) -> String? {
        let rest = key.dropFirst(prefix.count)
        guard rest.hasPrefix("["), rest.hasSuffix("]"), rest.count > 2 else { return nil }
        return String(rest.dropFirst().dropLast())
    }

    /// `prefix[a][b]` → `["a", "b"]`; a single `prefix[a.b]` keeps its dots.
    private static func nestedBracketed(_ key: String, prefix: String) -> [String]? {
        var rest = Substring(key.dropFirst(prefix.count))
        guard rest.hasPrefix("["), rest.hasSuffix("]"), rest.count > 2 else { return nil }
        var parts: [String] = []
        while !rest.isEmpty {
            guard rest.first == "[", let close = rest.firstIndex(of: "]") else { return nil }
            let name = rest[rest.index(after: rest.startIndex)..<close]
            guard !name.isEmpty, !name.contains("[") else { return nil }
            parts.append(String(name))
            rest = rest[rest.index(after: close)...]
        }
        return parts
    }

    public var description: String {
        switch self {
        case .sourcePrincipal: "source.principal"
        case .sourceNamespace: "source.namespace"
        case .sourceServiceAccount: "source.serviceAccount"
        case .sourceTrustDomain: "source.trustDomain"
        case .sourceIP: "source.ip"
        case .remoteIP: "remote.ip"
        case .requestPrincipal: "request.auth.principal"
        case .requestAudiences: "request.auth.audiences"
        case .requestPresenter: "request.auth.presenter"
        case .requestClaim(let path): "request.auth.claims" + path.map { "[\($0)]" }.joined()
        case .requestHeader(let name): "request.headers[\(name)]"
        case .host: "request.host"
        case .method: "request.method"
        case .path: "request.path"
        case .destinationIP: "destination.ip"
        case .destinationPort: "destination.port"
        case .connectionSNI: "connection.sni"
        case .envoyMetadata(let key): key
        }
    }

    /// Attributes that only an authenticated peer (mTLS) has.
    var needsPeerIdentity: Bool {
        switch self {
        case .sourcePrincipal, .sourceNamespace, .sourceServiceAccount, .sourceTrustDomain: true
        default: false
        }
    }
}
