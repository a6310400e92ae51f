import PolicyCore

/// Where a piece of Rego came from: the file, the 1-based line and column, and the byte range in the source,
/// so a query expression can be echoed back as it was written (OPA's `text` in eval results).
public struct Location: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    /// Byte offsets of the first byte and one past the last byte.
    public var start: Int
    public var end: Int

    public init(file: String, line: Int, column: Int, start: Int, end: Int) {
        self.file = file
        self.line = line
        self.column = column
        self.start = start
        self.end = end
    }

    public var span: SourceSpan { SourceSpan(file: file, line: line, column: column) }

    /// `file:line`, the form OPA puts in front of error messages.
    public var description: String { "\(file):\(line)" }

    /// This location stretched to end where `other` ends.
    func through(_ other: Location) -> Location {
        var joined = self
        joined.end = Swift.max(end, other.end)
        return joined
    }
}
