/// An Istio path template: `/api/{*}/items/{**}`, matched as Envoy's URI template matcher matches it.
/// `{*}` is one path segment of one or more characters; `{**}` is zero or more characters including `/`, and
/// only literal segments may follow it.
struct PathTemplate: Sendable, Hashable {
    enum Segment: Sendable, Hashable {
        /// A literal segment's bytes.
        case literal([UInt8])
        case one
        case any
    }

    let segments: [Segment]
    let text: String
    /// The bytes the path must end with after a `{**}`: `/` and each literal segment that follows it; nil when an
    /// operator follows it (which `parse` refuses), so that nothing matches.
    let tail: [UInt8]?

    init(segments: [Segment], text: String) {
        self.segments = segments
        self.text = text
        var tail: [UInt8]? = []
        if let any = segments.firstIndex(of: .any) {
            for segment in segments[(any + 1)...] {
                guard case .literal(let bytes) = segment else {
                    tail = nil
                    break
                }
                tail! += [UInt8(ascii: "/")] + bytes
            }
        }
        self.tail = tail
    }

    static let matchOne = "{*}"
    static let matchAny = "{**}"

    static func containsTemplate(_ path: String) -> Bool {
        path.contains(matchOne) || path.contains(matchAny)
    }

    /// Checks a `paths` value as Istio does: braces only as whole `{*}`/`{**}` segments, `{**}` last, and, in a
    /// template, literal segments of URI path characters. Plain paths without braces are always valid.
    static func validate(_ path: String) -> SpecError? {
        let isTemplate = containsTemplate(path)
        // Istio checks the segments between the outer slashes.
        var trimmed = Substring(path)
        while trimmed.first == "/" { trimmed = trimmed.dropFirst() }
        while trimmed.last == "/" { trimmed = trimmed.dropLast() }
        var sawAny = false
        for glob in trimmed.split(separator: "/", omittingEmptySubsequences: false) {
            if glob == matchOne || glob == matchAny {
                if sawAny { return SpecError("invalid path template \"\(path)\": `{**}` must be the last operator") }
                sawAny = glob == matchAny
                continue
            }
            if glob.contains("{") || glob.contains("}") {
                return SpecError("invalid path \"\(path)\": `{` and `}` are only allowed as `{*}` or `{**}` segments")
            }
            if isTemplate && (glob.isEmpty || !glob.utf8.allSatisfy(isLiteralByte)) {
                return SpecError("invalid path template \"\(path)\": segment \"\(glob)\" is not a valid literal")
            }
        }
        if isTemplate && !path.hasPrefix("/") {
            return SpecError("invalid path template \"\(path)\": must start with `/`")
        }
        return nil
    }

    /// Validates and compiles a template (a path holding `{*}` or `{**}`).
    static func parse(_ path: String) -> Result<PathTemplate, SpecError> {
        if let error = validate(path) { return .failure(error) }
        let body = path.dropFirst()
        var segments: [Segment] = []
        for part in body.split(separator: "/", omittingEmptySubsequences: false) {
            switch part {
            case Substring(matchOne): segments.append(.one)
            case Substring(matchAny): segments.append(.any)
            default: segments.append(.literal(Array(part.utf8)))
            }
        }
        return .success(PathTemplate(segments: segments, text: path))
    }

    /// RFC 3986 `pchar` (without `*`, and `=` as Istio allows it): the characters a template literal may use.
    static func isLiteralByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
            UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
            UInt8(ascii: ")"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: ":"),
            UInt8(ascii: "@"), UInt8(ascii: "="):
            true
        default:
            false
        }
    }

    /// The characters `{*}` and `{**}` consume (Envoy's literal class, which leaves out `=`).
    static func isOperatorByte(_ b: UInt8) -> Bool { b != UInt8(ascii: "=") && isLiteralByte(b) }

    /// Whether `path` (without query string) matches the whole template.
    func matches(_ path: String) -> Bool {
        withBytes(path) { bytes in matches(bytes) }
    }

    private func matches(_ p: UnsafeBufferPointer<UInt8>) -> Bool {
        guard p.first == UInt8(ascii: "/") else { return false }
        var i = 1
        for (n, segment) in segments.enumerated() {
            if n > 0 {
                guard i < p.count, p[i] == UInt8(ascii: "/") else { return false }
                i += 1
            }
            switch segment {
            case .literal(let literal):
                let matched = literal.withUnsafeBufferPointer { lit in
                    i + lit.count <= p.count && bytesEqual(UnsafeBufferPointer(rebasing: p[i..<(i + lit.count)]), lit)
                }
                guard matched else { return false }
                i += literal.count
            case .one:
                let start = i
                while i < p.count, p[i] != UInt8(ascii: "/"), Self.isOperatorByte(p[i]) { i += 1 }
                guard i > start else { return false }
            case .any:
                // Only literals follow `{**}` (parsing checks it): the rest of the path must end with them.
                guard let tail else { return false }
                let matched = tail.withUnsafeBufferPointer { tail in
                    p.count - i >= tail.count && hasSuffix(p, tail)
                }
                guard matched else { return false }
                return p[i..<(p.count - tail.count)].allSatisfy { $0 == UInt8(ascii: "/") || Self.isOperatorByte($0) }
            }
        }
        return i == p.count
    }
}
