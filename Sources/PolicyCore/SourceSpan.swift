/// Where a piece of input came from: a file and a 1-based line and column (columns count Unicode scalars).
public struct SourceSpan: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:col`, the form editors and terminals link to.
    public var description: String { "\(file):\(line):\(column)" }

    public static func < (a: SourceSpan, b: SourceSpan) -> Bool {
        (a.file, a.line, a.column) < (b.file, b.line, b.column)
    }
}

/// A path to a field inside a document, printed as `spec.rules[0].from[0].source.ipBlocks[1]`.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    public enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    public var components: [Component]

    public init(_ components: [Component] = []) { self.components = components }

    public static let root = FieldPath()

    public func appending(_ key: String) -> FieldPath { FieldPath(components + [.key(key)]) }
    public func appending(_ index: Int) -> FieldPath { FieldPath(components + [.index(index)]) }

    public static func / (path: FieldPath, key: String) -> FieldPath { path.appending(key) }
    public static func / (path: FieldPath, index: Int) -> FieldPath { path.appending(index) }

    public var isEmpty: Bool { components.isEmpty }

    public var description: String {
        var out = ""
        for c in components {
            switch c {
            case .key(let k):
                if !out.isEmpty { out += "." }
                out += k
            case .index(let i):
                out += "[\(i)]"
            }
        }
        return out
    }
}
