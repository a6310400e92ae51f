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

extension Diagnostic.Code {
    /// A `spec.selector` without labels, which Istio accepts with a warning: it selects every workload.
    public static let selectorWithoutLabels = "selector_without_labels"
}

extension IstioResource {
    /// The annotation that marks an AuthorizationPolicy as dry-run; Istio refuses it on every other kind.
    public static let dryRunAnnotation = "istio.io/dry-run"

    /// Annotations Istio's validation refuses on every resource: one that makes its webhook reject everything, and
    /// two that only Istio sets on configuration it generates (they would let a user's resource act for another's).
    static let refusedAnnotations = [
        "internal.istio.io/webhook-always-reject": "is always rejected",
        "internal.istio.io/parents": "is internal to Istio and may not be set",
        "internal.istio.io/parent-namespace": "is internal to Istio and may not be set",
    ]

    /// Istio's `validateWorkloadSelector` and the CRD's bounds on `matchLabels`.
    static let maximumLabelValueLength = 63
    static let maximumSelectorLabels = 4096
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
    ///
    /// Fields set to null are read as absent, at every depth, as the Kubernetes API server prunes them before Istio
    /// sees the resource (`provider: null` is no provider, not an empty one). `supportsDryRun` allows the
    /// `istio.io/dry-run` annotation, which Istio refuses on every kind but AuthorizationPolicy.
    public func istioResource(
        _ node: DocumentNode, kind: String, apiVersions: [String], specFields: [String], defaultNamespace: String,
        supportsDryRun: Bool = false
    ) -> IstioResource? {
        let node = node.withoutNullFields()
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
        for (key, value) in annotations.sorted(by: { $0.key < $1.key }) {
            if let reason = IstioResource.refusedAnnotations[key] {
                invalid("the annotation `\(key)` \(reason)", at: value)
            } else if key == IstioResource.dryRunAnnotation, !supportsDryRun {
                invalid("the annotation `\(key)` is only supported on AuthorizationPolicy; remove it", at: value)
            }
        }
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

    /// `spec.selector`: `matchLabels` without wildcards or empty keys, values of at most 63 characters, at most
    /// 4096 labels. An empty selector is a warning, as in Istio: it selects every workload of the namespace.
    public func workloadSelector(_ node: DocumentNode, at path: FieldPath) -> [String: String]? {
        guard let fields = fields(node, at: path, known: ["matchLabels"]) else { return nil }
        let labels = fields["matchLabels"].flatMap { stringMap($0, at: fields.path("matchLabels")) } ?? [:]
        if labels.isEmpty {
            warn(
                Diagnostic.Code.selectorWithoutLabels, "workload selector specified without labels: it selects every workload",
                at: node, path)
        }
        if labels.count > IstioResource.maximumSelectorLabels, let matchLabels = fields["matchLabels"] {
            invalid(
                "may not have more than \(IstioResource.maximumSelectorLabels) labels", at: matchLabels,
                fields.path("matchLabels"))
        }
        var out: [String: String] = [:]
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            if key.isEmpty {
                invalid("empty key is not supported in selector", at: value)
            } else if key.contains("*") || value.value.contains("*") {
                invalid("wildcard is not supported in selector: `\(key)=\(value.value)`", at: value)
            } else if value.value.utf8.count > IstioResource.maximumLabelValueLength {
                invalid("a label value cannot exceed \(IstioResource.maximumLabelValueLength) characters", at: value)
            }
            out[key] = value.value
        }
        return out
    }

    /// `targetRef`/`targetRefs` attach a policy to a gateway, service or waypoint. Istio accepts such a policy, and
    /// sidecars ignore it; so does Warden, which enforces for workloads picked by `selector`: the document is
    /// validated, reported with a warning, and left out of the set. Returns whether it is attached that way.
    public func targetRefsNotEnforced(_ spec: Fields) -> Bool {
        var attached = false
        for key in ["targetRef", "targetRefs"] where spec.has(key) {
            attached = true
            report(
                Diagnostic.Code.notEnforced,
                "`\(key)` attaches the policy to a gateway, service or waypoint, which sidecars do not enforce; "
                    + "Warden enforces for workloads picked by `selector`, so this policy is not applied",
                span: spec[key]!.span, path: spec.path(key), severity: .warning)
        }
        return attached
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

extension DocumentNode {
    /// The node without the mapping fields whose value is null, at every depth (null list items stay): what the
    /// Kubernetes API server keeps of a custom resource, whose fields are not nullable.
    public func withoutNullFields() -> DocumentNode {
        switch content {
        case .scalar:
            return self
        case .sequence(let items):
            return DocumentNode(.sequence(items.map { $0.withoutNullFields() }), span: span)
        case .mapping(let entries):
            let kept = entries.compactMap { entry -> MappingEntry? in
                if case .scalar(let s) = entry.value.content, s.kind == .null { return nil }
                return MappingEntry(key: entry.key, keySpan: entry.keySpan, value: entry.value.withoutNullFields())
            }
            return DocumentNode(.mapping(kept), span: span)
        }
    }
}
