/// Rule matches in evaluation order, read like an array of `RuleMatch`.
///
/// A compiled policy set keeps one table of every match it can report and fills a decision's list with positions
/// in that table: up to four are held inline, so the list of a decision shares the table and owns no storage of
/// its own, and deciding allocates nothing for it. A list made from an array holds that array.
public struct RuleMatches: RandomAccessCollection, Sendable, Hashable, ExpressibleByArrayLiteral,
    CustomStringConvertible
{
    /// The matches the positions refer to; shared, never copied element by element.
    private let table: [RuleMatch]
    /// Nil: the whole table, in order. Otherwise the positions of the matches in `table`.
    private var selection: Selection?

    /// Positions in `table`: the first four inline, the rest in `overflow` (nil until needed, so a short selection
    /// holds no array).
    private struct Selection: Sendable {
        var count = 0
        var inline: (Int32, Int32, Int32, Int32) = (0, 0, 0, 0)
        var overflow: [Int32]?

        @inline(__always)
        subscript(_ i: Int) -> Int {
            switch i {
            case 0: Int(inline.0)
            case 1: Int(inline.1)
            case 2: Int(inline.2)
            case 3: Int(inline.3)
            default: Int(overflow![i - 4])
            }
        }

        mutating func append(_ position: Int32) {
            switch count {
            case 0: inline.0 = position
            case 1: inline.1 = position
            case 2: inline.2 = position
            case 3: inline.3 = position
            default:
                if overflow == nil { overflow = [position] } else { overflow!.append(position) }
            }
            count += 1
        }
    }

    /// No matches.
    public init() {
        table = []
        selection = nil
    }

    public init(_ matches: [RuleMatch]) {
        table = matches
        selection = nil
    }

    public init(arrayLiteral elements: RuleMatch...) {
        self.init(elements)
    }

    /// An empty list of matches drawn from `table`; add them with `append(position:)`.
    public init(table: [RuleMatch]) {
        self.table = table
        selection = Selection()
    }

    /// Adds `table[position]` (of the table given to `init(table:)`).
    public mutating func append(position: Int) {
        precondition(selection != nil && table.indices.contains(position), "a position in the list's table")
        selection!.append(Int32(position))
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { selection?.count ?? table.count }

    public subscript(_ i: Int) -> RuleMatch {
        guard let selection else { return table[i] }
        precondition(i >= 0 && i < selection.count, "index out of range")
        return table[selection[i]]
    }

    public static func == (a: RuleMatches, b: RuleMatches) -> Bool { a.elementsEqual(b) }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for match in self { hasher.combine(match) }
    }

    public var description: String { Array(self).description }
}
