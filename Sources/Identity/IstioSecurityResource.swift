import PolicyCore

/// A security.istio.io resource read from documents (PeerAuthentication, RequestAuthentication): what the shared
/// walk over a file's documents needs.
protocol IstioSecurityResource {
    static var kind: String { get }
    var id: RequestAuthentication.ID { get }
    var span: SourceSpan? { get }
    static func decode(_ node: DocumentNode, decoder: DocumentDecoder, defaultNamespace: String) -> Self?
}

extension IstioSecurityResource {
    /// The resources of this kind among parsed documents (a `kind: List` is opened); other kinds are skipped
    /// silently, so one file can hold several kinds. A name defined twice in one namespace is an error; any error
    /// leaves no resources.
    static func decodeEvery(_ documents: [DocumentNode], defaultNamespace: String) -> ([Self], [Diagnostic]) {
        let decoder = DocumentDecoder()
        var resources: [Self] = []
        var seen: [RequestAuthentication.ID: SourceSpan?] = [:]
        func visit(_ node: DocumentNode) {
            guard case .mapping = node.content else { return }
            switch node["kind"]?.value.stringValue {
            case kind?:
                guard let resource = decode(node, decoder: decoder, defaultNamespace: defaultNamespace) else { return }
                if let earlier = seen[resource.id] {
                    let place = earlier.map { " (first defined at \($0))" } ?? ""
                    decoder.report(
                        Diagnostic.Code.invalidValue, "duplicate \(kind) `\(resource.id)`\(place)",
                        span: node.span, path: FieldPath.root / "metadata" / "name")
                } else {
                    seen[resource.id] = resource.span
                    resources.append(resource)
                }
            case "List"?:
                if case .sequence(let items)? = node["items"]?.content { items.forEach(visit) }
            default:
                return
            }
        }
        documents.forEach(visit)
        return (decoder.hasErrors ? [] : resources, decoder.diagnostics)
    }
}

extension PeerAuthentication: IstioSecurityResource {}
extension RequestAuthentication: IstioSecurityResource {}
