import PolicyCore

/// The authentication documents of a mesh: PeerAuthentications and RequestAuthentications read from the same files
/// (other kinds are skipped), with every problem found in them. What `warden proxy --policies` loads and `warden
/// check` validates.
public struct AuthenticationPolicies: Sendable {
    public var peer: [PeerAuthentication]
    public var request: [RequestAuthentication]
    /// Errors and warnings of both kinds, in document order.
    public var diagnostics: [Diagnostic]

    public init(peer: [PeerAuthentication] = [], request: [RequestAuthentication] = [], diagnostics: [Diagnostic] = []) {
        self.peer = peer
        self.request = request
        self.diagnostics = diagnostics
    }

    /// Both kinds among parsed documents.
    public static func decode(_ documents: [DocumentNode], defaultNamespace: String = "default") -> AuthenticationPolicies {
        let peer = PeerAuthentication.decodeAll(documents, defaultNamespace: defaultNamespace)
        let request = RequestAuthentication.decodeAll(documents, defaultNamespace: defaultNamespace)
        return AuthenticationPolicies(
            peer: peer.policies, request: request.policies, diagnostics: peer.diagnostics + request.diagnostics)
    }

    /// Adds another file's documents.
    public mutating func append(_ other: AuthenticationPolicies) {
        peer += other.peer
        request += other.request
        diagnostics += other.diagnostics
    }

    /// Names defined in two files are errors too (within one file `decode` reports them).
    public var duplicateDiagnostics: [Diagnostic] {
        var out: [Diagnostic] = []
        var seenPeer: [PeerAuthentication.ID: SourceSpan?] = [:]
        for policy in peer {
            if let earlier = seenPeer[policy.id] {
                out.append(Self.duplicate("PeerAuthentication", policy.id, policy.span, earlier))
            } else {
                seenPeer[policy.id] = policy.span
            }
        }
        var seenRequest: [RequestAuthentication.ID: SourceSpan?] = [:]
        for policy in request {
            if let earlier = seenRequest[policy.id] {
                out.append(Self.duplicate("RequestAuthentication", policy.id, policy.span, earlier))
            } else {
                seenRequest[policy.id] = policy.span
            }
        }
        return out
    }

    private static func duplicate(_ kind: String, _ id: PeerAuthentication.ID, _ span: SourceSpan?, _ earlier: SourceSpan?) -> Diagnostic {
        let place = earlier.map { " (first defined at \($0))" } ?? ""
        return Diagnostic(
            code: Diagnostic.Code.invalidValue, message: "duplicate \(kind) `\(id)`\(place)", span: span,
            path: FieldPath.root / "metadata" / "name")
    }

    public var hasErrors: Bool { diagnostics.hasErrors || !duplicateDiagnostics.isEmpty }
}
