import Foundation
import PolicyCore

extension PeerAuthentication {
    public static let kind = "PeerAuthentication"
    public static let apiVersions = ["security.istio.io/v1", "security.istio.io/v1beta1"]

    /// Decodes one PeerAuthentication document strictly (unknown fields and wrong types are errors) and validates it
    /// as `istioctl validate` and the CRD's own rules do, reporting every problem to `decoder` with its field path and
    /// place. Returns nil when the document has errors.
    ///
    /// `defaultNamespace` stands in for a missing `metadata.namespace`, as `kubectl apply` uses the current one.
    public static func decode(
        _ node: DocumentNode, decoder: DocumentDecoder, defaultNamespace: String = "default"
    ) -> PeerAuthentication? {
        let errorsBefore = decoder.diagnostics.filter(\.isError).count
        let policy = PeerAuthenticationReader(decoder: decoder).policy(node, defaultNamespace: defaultNamespace)
        return decoder.diagnostics.filter(\.isError).count == errorsBefore ? policy : nil
    }

    /// The PeerAuthentications among parsed documents (a `kind: List` is opened); other kinds are skipped silently.
    /// A name defined twice in one namespace is an error.
    public static func decodeAll(
        _ documents: [DocumentNode], defaultNamespace: String = "default"
    ) -> (policies: [PeerAuthentication], diagnostics: [Diagnostic]) {
        decodeEvery(documents, defaultNamespace: defaultNamespace)
    }

    /// `2024-05-01T10:00:00Z` (RFC 3339, as Kubernetes writes `creationTimestamp`) in seconds since the epoch.
    static func parseTimestamp(_ text: String) -> Int64? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970.rounded(.down)) }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text).map { Int64($0.timeIntervalSince1970.rounded(.down)) }
    }
}

private struct PeerAuthenticationReader {
    let decoder: DocumentDecoder

    func policy(_ node: DocumentNode, defaultNamespace: String) -> PeerAuthentication? {
        guard
            let resource = decoder.istioResource(
                node, kind: PeerAuthentication.kind, apiVersions: PeerAuthentication.apiVersions,
                specFields: ["selector", "mtls", "portLevelMtls"], defaultNamespace: defaultNamespace)
        else { return nil }
        let spec = resource.spec
        let selector = spec["selector"].flatMap { decoder.workloadSelector($0, at: spec.path("selector")) }
        var mode = PeerAuthentication.Mode.unset
        if let mtls = spec["mtls"] { mode = self.mode(mtls, at: spec.path("mtls")) ?? .unset }

        var ports: [Int: PeerAuthentication.Mode] = [:]
        if let portsNode = spec["portLevelMtls"] {
            let path = spec.path("portLevelMtls")
            ports = portLevel(portsNode, at: path)
            if case .mapping(let entries) = portsNode.content, entries.isEmpty {
                decoder.invalid("port level mTLS, if defined, must have at least one element", at: portsNode, path)
            }
            if !(selector?.isEmpty == false), case .mapping(let entries) = portsNode.content, !entries.isEmpty {
                decoder.invalid(
                    "mesh/namespace peer authentication cannot have port level mTLS: portLevelMtls requires a selector",
                    at: portsNode, path)
            }
        }

        var created: Int64?
        let metadataPath = FieldPath.root / "metadata" / "creationTimestamp"
        if let stamp = node["metadata"]?["creationTimestamp"], let text = decoder.string(stamp, at: metadataPath) {
            created = PeerAuthentication.parseTimestamp(text.value)
            if created == nil {
                decoder.invalid("invalid creationTimestamp `\(text.value)`: expected RFC 3339, as `2024-05-01T10:00:00Z`", at: text)
            }
        }
        guard let name = resource.name else { return nil }
        return PeerAuthentication(
            id: PeerAuthentication.ID(namespace: resource.namespace, name: name), selector: selector, mode: mode,
            portLevelModes: ports, creationTimestamp: created, span: node.span)
    }

    /// `{mode: STRICT}`; nil after reporting a bad one.
    func mode(_ node: DocumentNode, at path: FieldPath) -> PeerAuthentication.Mode? {
        guard let fields = decoder.fields(node, at: path, known: ["mode"]), let modeNode = fields["mode"] else { return nil }
        guard let text = decoder.string(modeNode, at: fields.path("mode")) else { return nil }
        guard let mode = PeerAuthentication.Mode(rawValue: text.value) else {
            let allowed = PeerAuthentication.Mode.allCases.map { "`\($0.rawValue)`" }.joined(separator: ", ")
            decoder.invalid("unsupported mode `\(text.value)`: must be one of \(allowed)", at: text)
            return nil
        }
        return mode
    }

    /// `portLevelMtls`: port numbers (1 to 65535) to `{mode: ...}`.
    func portLevel(_ node: DocumentNode, at path: FieldPath) -> [Int: PeerAuthentication.Mode] {
        guard case .mapping(let entries) = node.content else {
            if case .scalar(let s) = node.content, s.kind == .null { return [:] }
            decoder.mismatch(node, path, expected: "an object")
            return [:]
        }
        var out: [Int: PeerAuthentication.Mode] = [:]
        for entry in entries {
            guard let port = Int(entry.key), (1...65535).contains(port), entry.key.first != "+" else {
                decoder.report(
                    Diagnostic.Code.invalidValue, "port `\(entry.key)` must be in range 1..65535", span: entry.keySpan,
                    path: path / entry.key)
                continue
            }
            if out[port] != nil {
                decoder.report(
                    Diagnostic.Code.invalidValue, "port \(port) is given more than once", span: entry.keySpan, path: path / entry.key)
            }
            out[port] = mode(entry.value, at: path / entry.key) ?? .unset
        }
        return out
    }
}
