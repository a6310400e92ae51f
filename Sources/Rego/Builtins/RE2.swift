import PolicyCore

/// A compiled RE2 expression with Go's `regexp` semantics: leftmost-first matches (as Perl), code points as the
/// unit, linear-time matching (a Pike VM, so no pattern can make matching explode).
final class RE2: Sendable {
    enum Instruction: Sendable {
        case scalar(UInt32)
        case set(RE2CharClass)
        case orbit([UInt32])
        case anyChar
        case anyCharNotNewline
        /// Try the first target, then the second.
        case split(Int, Int)
        case jump(Int)
        case save(Int)
        case assert(RE2Node)
        case match
    }

    let program: [Instruction]
    /// The number of capture groups, not counting the whole match.
    let captureCount: Int
    /// Capture group names by group number.
    let names: [Int: String]

    /// Programs beyond this many instructions are refused as Go refuses overly large expressions.
    static let maximumProgramSize = 2_000_000

    init(_ pattern: String) throws(RE2Error) {
        var parser = RE2Parser(pattern)
        let node = try parser.parse()
        var compiler = Compiler()
        compiler.emit(.save(0))
        try compiler.compile(node)
        compiler.emit(.save(1))
        compiler.emit(.match)
        guard compiler.program.count <= Self.maximumProgramSize else {
            throw RE2Error(code: RE2Error.tooLarge, expression: pattern)
        }
        program = compiler.program
        captureCount = parser.captureCount
        names = parser.names
    }

    struct Compiler {
        var program: [Instruction] = []

        mutating func emit(_ instruction: Instruction) {
            program.append(instruction)
        }

        mutating func compile(_ node: RE2Node) throws(RE2Error) {
            guard program.count <= RE2.maximumProgramSize else {
                throw RE2Error(code: RE2Error.tooLarge, expression: "")
            }
            switch node {
            case .empty:
                break
            case .literal(let c, let fold):
                let members = fold ? RE2CaseFold.orbit(c) : [c]
                emit(members.count == 1 ? .scalar(c) : .orbit(members))
            case .charClass(let cls):
                emit(.set(cls))
            case .anyChar:
                emit(.anyChar)
            case .anyCharNotNewline:
                emit(.anyCharNotNewline)
            case .beginLine, .endLine, .beginText, .endText, .wordBoundary, .noWordBoundary:
                emit(.assert(node))
            case .capture(let n, let sub):
                emit(.save(2 * n))
                try compile(sub)
                emit(.save(2 * n + 1))
            case .concat(let subs):
                for sub in subs { try compile(sub) }
            case .alternate(let subs):
                var jumps: [Int] = []
                for (k, sub) in subs.enumerated() {
                    if k < subs.count - 1 {
                        let split = program.count
                        emit(.split(split + 1, -1))
                        try compile(sub)
                        jumps.append(program.count)
                        emit(.jump(-1))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try compile(sub)
                    }
                }
                for j in jumps { program[j] = .jump(program.count) }
            case .repeat(let sub, let min, let max, let greedy, _):
                if max == -1 {
                    // x* and x{0,} loop; x+ and x{n,} are n-1 copies followed by x+.
                    if min == 0 {
                        try star(sub, greedy)
                    } else {
                        for _ in 0..<(min - 1) { try compile(sub) }
                        try plus(sub, greedy)
                    }
                    return
                }
                for _ in 0..<min { try compile(sub) }
                if max > min {
                    // x{n,m}: n copies, then m-n nested optional copies: (x(x)?)?.
                    var splits: [Int] = []
                    for _ in min..<max {
                        splits.append(program.count)
                        emit(.split(-1, -1))
                        let body = program.count
                        try compile(sub)
                        program[splits.last!] = .split(body, -1)
                    }
                    let end = program.count
                    for s in splits {
                        guard case .split(let body, _) = program[s] else { continue }
                        program[s] = greedy ? .split(body, end) : .split(end, body)
                    }
                }
            }
        }

        /// A star over a body that can match empty is compiled as `(x+)?`, as Go does, so that an empty
        /// iteration ends the loop before the body's other choices are tried.
        mutating func star(_ sub: RE2Node, _ greedy: Bool) throws(RE2Error) {
            if Self.nullable(sub) {
                let split = program.count
                emit(.split(-1, -1))
                let body = program.count
                try plus(sub, greedy)
                let end = program.count
                program[split] = greedy ? .split(body, end) : .split(end, body)
                return
            }
            let loop = program.count
            emit(.split(-1, -1))
            let body = program.count
            try compile(sub)
            emit(.jump(loop))
            let end = program.count
            program[loop] = greedy ? .split(body, end) : .split(end, body)
        }

        /// `x+`: the body, then a choice to go round again.
        mutating func plus(_ sub: RE2Node, _ greedy: Bool) throws(RE2Error) {
            let body = program.count
            try compile(sub)
            let split = program.count
            emit(greedy ? .split(body, split + 1) : .split(split + 1, body))
        }

        /// Whether the node can match the empty string.
        static func nullable(_ node: RE2Node) -> Bool {
            switch node {
            case .literal, .charClass, .anyChar, .anyCharNotNewline: return false
            case .empty, .beginLine, .endLine, .beginText, .endText, .wordBoundary, .noWordBoundary: return true
            case .capture(_, let sub): return nullable(sub)
            case .concat(let subs): return subs.allSatisfy(nullable)
            case .alternate(let subs): return subs.contains(where: nullable)
            case .repeat(let sub, let min, _, _, _): return min == 0 || nullable(sub)
            }
        }
    }

    // MARK: Matching

    /// The capture positions (code point offsets, -1 when unset) of the leftmost-first match at or after
    /// `start`, or nil. `input` is the whole text, so anchors and word boundaries see what precedes `start`.
    func match(_ input: [UInt32], from start: Int) -> [Int]? {
        let slots = 2 * (captureCount + 1)
        var current = ThreadList(size: program.count)
        var next = ThreadList(size: program.count)
        var matched: [Int]?
        var position = start
        while position <= input.count {
            if matched == nil {
                // A new thread starting here, behind every thread already running (leftmost wins).
                var fresh = [Int](repeating: -1, count: slots)
                addThread(&current, 0, &fresh, position, input)
            }
            if current.isEmpty {
                // Nothing running: done once something matched, otherwise try from the next position.
                if matched != nil { break }
                current.clear()
                position += 1
                continue
            }
            let c: UInt32? = position < input.count ? input[position] : nil
            for k in 0..<current.count {
                let (pc, caps) = current.threads[k]
                switch program[pc] {
                case .match:
                    matched = caps
                    // Lower-priority threads cannot win any more.
                    current.threads.removeSubrange((k + 1)...)
                    current.count = k + 1
                case .scalar(let x):
                    if c == x { var copy = caps; addThread(&next, pc + 1, &copy, position + 1, input) }
                case .orbit(let members):
                    if let c, members.contains(c) { var copy = caps; addThread(&next, pc + 1, &copy, position + 1, input) }
                case .set(let cls):
                    if let c, cls.contains(c) { var copy = caps; addThread(&next, pc + 1, &copy, position + 1, input) }
                case .anyChar:
                    if c != nil { var copy = caps; addThread(&next, pc + 1, &copy, position + 1, input) }
                case .anyCharNotNewline:
                    if let c, c != 0x0A { var copy = caps; addThread(&next, pc + 1, &copy, position + 1, input) }
                default:
                    break
                }
                if k + 1 >= current.count { break }
            }
            swap(&current, &next)
            next.clear()
            position += 1
        }
        return matched
    }

    /// Follows jumps, splits, saves and assertions from `pc`, adding the threads that wait for input.
    private func addThread(_ list: inout ThreadList, _ pc: Int, _ caps: inout [Int], _ position: Int, _ input: [UInt32]) {
        if list.visited(pc) { return }
        switch program[pc] {
        case .jump(let target):
            addThread(&list, target, &caps, position, input)
        case .split(let first, let second):
            var copy = caps
            addThread(&list, first, &caps, position, input)
            addThread(&list, second, &copy, position, input)
        case .save(let slot):
            let old = caps[slot]
            caps[slot] = position
            addThread(&list, pc + 1, &caps, position, input)
            caps[slot] = old
        case .assert(let kind):
            if Self.holds(kind, position, input) { addThread(&list, pc + 1, &caps, position, input) }
        default:
            list.add(pc, caps)
        }
    }

    static func holds(_ kind: RE2Node, _ position: Int, _ input: [UInt32]) -> Bool {
        let before: UInt32? = position > 0 ? input[position - 1] : nil
        let after: UInt32? = position < input.count ? input[position] : nil
        switch kind {
        case .beginText: return position == 0
        case .endText: return position == input.count
        case .beginLine: return before == nil || before == 0x0A
        case .endLine: return after == nil || after == 0x0A
        case .wordBoundary: return isWord(before) != isWord(after)
        case .noWordBoundary: return isWord(before) == isWord(after)
        default: return false
        }
    }

    /// ASCII word characters, as RE2's `\b` sees them.
    static func isWord(_ c: UInt32?) -> Bool {
        guard let c else { return false }
        return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
    }

    /// Threads in priority order, with a sparse set of the instructions already added at this step.
    struct ThreadList {
        var threads: [(Int, [Int])] = []
        var count = 0
        var dense: [Int]
        var sparse: [Int]
        var members = 0

        init(size: Int) {
            dense = [Int](repeating: 0, count: size)
            sparse = [Int](repeating: 0, count: size)
        }

        var isEmpty: Bool { count == 0 }

        /// Marks `pc` as visited, answering whether it already was.
        mutating func visited(_ pc: Int) -> Bool {
            let s = sparse[pc]
            if s < members && dense[s] == pc { return true }
            sparse[pc] = members
            dense[members] = pc
            members += 1
            return false
        }

        mutating func add(_ pc: Int, _ caps: [Int]) {
            threads.append((pc, caps))
            count += 1
        }

        mutating func clear() {
            threads.removeAll(keepingCapacity: true)
            count = 0
            members = 0
        }
    }

    // MARK: Go's iteration over matches

    /// Every match (capture positions), as Go's `FindAll` finds them: the search resumes at the end of each
    /// match, and an empty match right where the previous match ended is skipped. At most `limit` when it is
    /// not negative.
    func allMatches(_ input: [UInt32], limit: Int) -> [[Int]] {
        var out: [[Int]] = []
        var position = 0
        var previousEnd = -1
        while (limit < 0 || out.count < limit), position <= input.count {
            guard let m = match(input, from: position) else { break }
            var accept = true
            if m[1] == position {
                // An empty match: step over one code point either way.
                if m[0] == previousEnd { accept = false }
                position += 1
            } else {
                position = m[1]
            }
            previousEnd = m[1]
            if accept { out.append(m) }
        }
        return out
    }

    /// Go's `ReplaceAllString` with `$1`, `${name}` and `$$` in the replacement.
    func replaceAll(_ input: [UInt32], with template: String) -> [UInt32] {
        var out: [UInt32] = []
        var lastMatchEnd = 0
        var searchPosition = 0
        let templateScalars = Array(template.unicodeScalars)
        while searchPosition <= input.count {
            guard let m = match(input, from: searchPosition) else { break }
            out.append(contentsOf: input[lastMatchEnd..<m[0]])
            // No replacement for an empty match right after the previous one.
            if m[1] > lastMatchEnd || m[0] == 0 { expand(templateScalars, m, input, into: &out) }
            lastMatchEnd = m[1]
            if searchPosition + 1 > m[1] {
                searchPosition += 1
            } else {
                searchPosition = m[1]
            }
        }
        out.append(contentsOf: input[lastMatchEnd...])
        return out
    }

    private func expand(_ template: [Unicode.Scalar], _ m: [Int], _ input: [UInt32], into out: inout [UInt32]) {
        var i = 0
        while i < template.count {
            let c = template[i]
            guard c == "$" else {
                out.append(c.value)
                i += 1
                continue
            }
            i += 1
            if i < template.count, template[i] == "$" {
                out.append(0x24)
                i += 1
                continue
            }
            guard let (name, rest) = Self.extractName(template, i) else {
                out.append(0x24)
                continue
            }
            i = rest
            var group: Int?
            if let n = Int(name), !(name.hasPrefix("0") && name.count > 1), name.allSatisfy({ $0.isASCII && $0.isNumber }) {
                group = n
            } else {
                group = names.sorted { $0.key < $1.key }.first { $0.value == name }?.key
            }
            if let g = group, 2 * g + 1 < m.count, m[2 * g] >= 0 {
                out.append(contentsOf: input[m[2 * g]..<m[2 * g + 1]])
            }
        }
    }

    /// A group name after `$`: letters, digits and underscores, optionally in braces.
    private static func extractName(_ t: [Unicode.Scalar], _ start: Int) -> (String, Int)? {
        var j = start
        var brace = false
        if j < t.count, t[j] == "{" {
            brace = true
            j += 1
        }
        let nameStart = j
        while j < t.count {
            let p = t[j].properties
            let isLetter = [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter]
                .contains(p.generalCategory)
            guard isLetter || p.generalCategory == .decimalNumber || t[j] == "_" else { break }
            j += 1
        }
        guard j > nameStart else { return nil }
        var name = String.UnicodeScalarView()
        name.append(contentsOf: t[nameStart..<j])
        if brace {
            guard j < t.count, t[j] == "}" else { return nil }
            j += 1
        }
        return (String(name), j)
    }
}
