/// The Kubernetes envelope every Istio security resource shares, decoded strictly as `istioctl validate` reads it:
/// `apiVersion`, `metadata` (a DNS-1123 name and namespace, string labels and annotations) and the `spec`
/// mapping, whose own fields the resource's decoder reads.
public struct IstioResource {
    /// Nil when `metadata.name` is missing or invalid (already reported).
    public var name: String?
    public var namespace: String
    public var annotations: [String: Located<String>]
    public var spec: DocumentDecoder.Fields
    /// The `spec` node (an empty mapping at the document's place when the document has none).
    public var specNode: DocumentNode
}

/// The fields Kubernetes puts in `metadata`; any other is a typo.
private let objectMetaFields = [
    "name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "generateName", "managedFields", "ownerReferences",
    "finalizers", "selfLink",
]

extension DocumentDecoder {
    /// Reads the envelope of a `kind` resource; `specFields` are the fields its `spec` may have. Nil when the
    /// document cannot be read as that resource at all (every problem is reported).
    public func istioResource(
        _ node: DocumentNode, kind: String, apiVersions: [String], specFields: [String], defaultNamespace: String
    ) -> IstioResource? {
        guard let top = fields(node, at: .root, known: ["apiVersion", "kind", "metadata", "spec", "status"]) else {
            return nil
        }
        if let apiVersion = top["apiVersion"].flatMap({ string($0, at: top.path("apiVersion")) }),
            !apiVersions.contains(apiVersion.value)
        {
            invalid(
                "unsupported apiVersion `\(apiVersion.value)` for \(kind); use "
                    + apiVersions.map { "`\($0)`" }.joined(separator: " or "), at: apiVersion)
        }
        guard let metadataNode = top["metadata"] else {
            report(Diagnostic.Code.missingField, "missing `metadata` (a policy needs a name)", span: node.span, path: .root)
            return nil
        }
        guard let metadata = fields(metadataNode, at: top.path("metadata"), known: objectMetaFields) else { return nil }
        let name = requiredName(metadata, metadataNode)
        var namespace = defaultNamespace
        if let ns = metadata["namespace"].flatMap({ string($0, at: metadata.path("namespace")) }) {
            if isDNSLabel(ns.value) {
                namespace = ns.value
            } else {
                invalid("invalid namespace `\(ns.value)`: must be a DNS-1123 label", at: ns)
            }
        }
        let annotations = metadata["annotations"].flatMap { stringMap($0, at: metadata.path("annotations")) } ?? [:]
        if let labels = metadata["labels"] { _ = stringMap(labels, at: metadata.path("labels")) }

        let specNode = top["spec"] ?? DocumentNode(.mapping([]), span: node.span)
        guard let spec = fields(specNode, at: FieldPath.root / "spec", known: specFields) else { return nil }
        return IstioResource(name: name, namespace: namespace, annotations: annotations, spec: spec, specNode: specNode)
    }

    private func requiredName(_ metadata: Fields, _ node: DocumentNode) -> String? {
        guard let nameNode = metadata["name"] else {
            report(Diagnostic.Code.missingField, "missing `metadata.name`", span: node.span, path: metadata.path)
            return nil
        }
        guard let name = string(nameNode, at: metadata.path("name")) else { return nil }
        guard isDNSSubdomain(name.value) else {
            invalid("invalid name `\(name.value)`: must be a lowercase DNS-1123 subdomain", at: name)
            return nil
        }
        return name.value
    }

    /// `spec.selector`: `matchLabels` without wildcards or empty keys (an empty selector is a warning: it selects
    /// every workload of the namespace).
    public func workloadSelector(_ node: DocumentNode, at path: FieldPath) -> [String: String]? {
        guard let fields = fields(node, at: path, known: ["matchLabels"]) else { return nil }
        let labels = fields["matchLabels"].flatMap { stringMap($0, at: fields.path("matchLabels")) } ?? [:]
        if labels.isEmpty {
            report(
                Diagnostic.Code.invalidValue, "workload selector specified without labels: it selects every workload",
                span: node.span, path: path, severity: .warning)
        }
        var out: [String: String] = [:]
        for (key, value) in labels {
            if key.isEmpty {
                invalid("empty key is not supported in selector", at: value)
            } else if key.contains("*") || value.value.contains("*") {
                invalid("wildcard is not supported in selector: `\(key)=\(value.value)`", at: value)
            }
            out[key] = value.value
        }
        return out
    }

    /// `targetRef`/`targetRefs` attach a policy to a gateway or service; Warden selects workloads only.
    public func refuseTargetRefs(_ spec: Fields) {
        for key in ["targetRef", "targetRefs"] where spec.has(key) {
            report(
                Diagnostic.Code.unsupported,
                "`\(key)` attaches a policy to a gateway or service (waypoint mode); Warden selects workloads with `selector`",
                span: spec[key]!.span, path: spec.path(key))
        }
    }
}

/// A DNS-1123 label: lowercase alphanumerics and `-`, starting and ending alphanumeric, at most 63 characters.
public func isDNSLabel(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    guard !bytes.isEmpty, bytes.count <= 63 else { return false }
    func alnum(_ b: UInt8) -> Bool { (b >= 97 && b <= 122) || (b >= 48 && b <= 57) }
    return alnum(bytes.first!) && alnum(bytes.last!) && bytes.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") }
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
public func isDNSSubdomain(_ text: String) -> Bool {
    text.utf8.count <= 253
        && text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNSLabel(String($0)) }
}
