import PolicyCore
import Synchronization

/// A regular expression failed to parse, reported as Go's `regexp` reports it:
/// `error parsing regexp: missing closing ): `(abc``.
struct RE2Error: Error, Sendable, Equatable, CustomStringConvertible {
    var code: String
    var expression: String

    var description: String { "error parsing regexp: \(code): `\(expression)`" }

    static let missingParen = "missing closing )"
    static let unexpectedParen = "unexpected )"
    static let missingBracket = "missing closing ]"
    static let invalidCharRange = "invalid character class range"
    static let invalidEscape = "invalid escape sequence"
    static let invalidNamedCapture = "invalid named capture"
    static let invalidPerlOp = "invalid or unsupported Perl syntax"
    static let invalidRepeatOp = "invalid nested repetition operator"
    static let invalidRepeatSize = "invalid repeat count"
    static let missingRepeatArgument = "missing argument to repetition operator"
    static let trailingBackslash = "trailing backslash at end of expression"
    static let nestingDepth = "expression nests too deeply"
    static let tooLarge = "expression too large"
}

/// The parsed form of an RE2 pattern, with flags already applied to each node.
indirect enum RE2Node: Sendable {
    case empty
    case literal(UInt32, fold: Bool)
    case charClass(RE2CharClass)
    case anyChar
    case anyCharNotNewline
    case beginLine, endLine, beginText, endText, wordBoundary, noWordBoundary
    case capture(Int, RE2Node)
    case concat([RE2Node])
    case alternate([RE2Node])
    /// `max` is -1 when unbounded; `counted` marks `{n,m}` forms, which Go limits in size.
    case `repeat`(RE2Node, min: Int, max: Int, greedy: Bool, counted: Bool)

    /// Nesting height, for Go's depth limit.
    var height: Int {
        switch self {
        case .capture(_, let n): return 1 + n.height
        case .concat(let ns), .alternate(let ns): return 1 + (ns.map(\.height).max() ?? 0)
        case .repeat(let n, _, _, _, _): return 1 + n.height
        default: return 1
        }
    }
}

/// A set of code points: ranges and Unicode properties, optionally case-folded and negated. Case folding and
/// negation apply in Go's order: each item is folded, then the union is negated.
struct RE2CharClass: Sendable {
    enum Item: Sendable {
        case ranges([ClosedRange<UInt32>])
        /// A Unicode category, script or other named table.
        case property(RE2Property, negated: Bool)
        /// A class of ranges negated on its own (`\D`, `[:^alpha:]`).
        case negatedRanges([ClosedRange<UInt32>])
    }

    var items: [Item] = []
    var fold = false
    var negated = false

    func contains(_ c: UInt32) -> Bool {
        var hit = items.contains { itemContains($0, c) }
        if !hit && fold {
            hit = RE2CaseFold.orbit(c).contains { other in other != c && items.contains { itemContains($0, other) } }
        }
        return hit != negated
    }

    private func itemContains(_ item: Item, _ c: UInt32) -> Bool {
        switch item {
        case .ranges(let rs): return Self.inRanges(rs, c)
        case .property(let p, let negated):
            if fold {
                let hit = p.contains(c) || RE2CaseFold.orbit(c).contains { $0 != c && p.contains($0) }
                return hit != negated
            }
            return p.contains(c) != negated
        case .negatedRanges(let rs):
            if fold {
                let hit = Self.inRanges(rs, c) || RE2CaseFold.orbit(c).contains { $0 != c && Self.inRanges(rs, $0) }
                return !hit
            }
            return !Self.inRanges(rs, c)
        }
    }

    static func inRanges(_ rs: [ClosedRange<UInt32>], _ c: UInt32) -> Bool {
        // Ranges are few; a linear scan beats sorting them.
        for r in rs where r.contains(c) { return true }
        return false
    }
}

/// A named Unicode table as Go's `regexp` resolves `\p{Name}`.
enum RE2Property: Sendable {
    case any
    case ascii
    case category(Set<Unicode.GeneralCategory>)
    case script(String)

    func contains(_ c: UInt32) -> Bool {
        switch self {
        case .any: return true
        case .ascii: return c < 0x80
        case .category(let cats):
            guard let s = Unicode.Scalar(c) else { return cats.contains(.surrogate) }
            return cats.contains(s.properties.generalCategory)
        case .script(let name):
            return RE2Scripts.contains(c, script: name)
        }
    }

    /// Go canonicalizes the name (first letter upper case, the rest lower case, `_ - space` dropped) and looks
    /// it up among categories, single-word scripts (the only script keys already in that form) and category
    /// aliases. The result is the table and whether it is inverted (`Assigned` is everything but `Cn`).
    static func named(_ raw: String) -> (RE2Property, inverted: Bool)? {
        var canonical = ""
        var first = true
        for ch in raw.unicodeScalars {
            if ch == "_" || ch == "-" || ch == " " { continue }
            if first {
                canonical.unicodeScalars.append(ch.value >= 0x61 && ch.value <= 0x7A ? Unicode.Scalar(ch.value - 32)! : ch)
                first = false
            } else {
                canonical.unicodeScalars.append(ch.value >= 0x41 && ch.value <= 0x5A ? Unicode.Scalar(ch.value + 32)! : ch)
            }
        }
        switch canonical {
        case "Any": return (.any, false)
        case "Assigned": return (.category([.unassigned]), true)
        case "Ascii": return (.ascii, false)
        case "Lc": return (.category(categories["LC"]!), false)
        default: break
        }
        if let cats = categories[canonical] { return (.category(cats), false) }
        if RE2Scripts.names.contains(canonical) { return (.script(canonical), false) }
        if let code = aliases[canonical], let cats = categories[code] { return (.category(cats), false) }
        return nil
    }

    static let categories: [String: Set<Unicode.GeneralCategory>] = {
        let table: [String: Unicode.GeneralCategory] = [
            "Cc": .control, "Cf": .format, "Cn": .unassigned, "Co": .privateUse, "Cs": .surrogate,
            "Ll": .lowercaseLetter, "Lm": .modifierLetter, "Lo": .otherLetter, "Lt": .titlecaseLetter,
            "Lu": .uppercaseLetter, "Mc": .spacingMark, "Me": .enclosingMark, "Mn": .nonspacingMark,
            "Nd": .decimalNumber, "Nl": .letterNumber, "No": .otherNumber, "Pc": .connectorPunctuation,
            "Pd": .dashPunctuation, "Pe": .closePunctuation, "Pf": .finalPunctuation, "Pi": .initialPunctuation,
            "Po": .otherPunctuation, "Ps": .openPunctuation, "Sc": .currencySymbol, "Sk": .modifierSymbol,
            "Sm": .mathSymbol, "So": .otherSymbol, "Zl": .lineSeparator, "Zp": .paragraphSeparator,
            "Zs": .spaceSeparator,
        ]
        var out: [String: Set<Unicode.GeneralCategory>] = [:]
        for (code, cat) in table {
            out[code] = [cat]
            out[String(code.prefix(1)), default: []].insert(cat)
        }
        out["LC"] = [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter]
        return out
    }()

    /// Unicode's long names for general categories, canonicalized.
    static let aliases: [String: String] = {
        let pairs: [(String, String)] = [
            ("Other", "C"), ("Control", "Cc"), ("Cntrl", "Cc"), ("Format", "Cf"), ("Unassigned", "Cn"),
            ("Privateuse", "Co"), ("Surrogate", "Cs"), ("Letter", "L"), ("Casedletter", "LC"),
            ("Lowercaseletter", "Ll"), ("Modifierletter", "Lm"), ("Otherletter", "Lo"),
            ("Titlecaseletter", "Lt"), ("Uppercaseletter", "Lu"), ("Mark", "M"), ("Combiningmark", "M"),
            ("Spacingmark", "Mc"), ("Enclosingmark", "Me"), ("Nonspacingmark", "Mn"), ("Number", "N"),
            ("Decimalnumber", "Nd"), ("Digit", "Nd"), ("Letternumber", "Nl"), ("Othernumber", "No"),
            ("Punctuation", "P"), ("Punct", "P"), ("Connectorpunctuation", "Pc"), ("Dashpunctuation", "Pd"),
            ("Closepunctuation", "Pe"), ("Finalpunctuation", "Pf"), ("Initialpunctuation", "Pi"),
            ("Otherpunctuation", "Po"), ("Openpunctuation", "Ps"), ("Symbol", "S"), ("Currencysymbol", "Sc"),
            ("Modifiersymbol", "Sk"), ("Mathsymbol", "Sm"), ("Othersymbol", "So"), ("Separator", "Z"),
            ("Lineseparator", "Zl"), ("Paragraphseparator", "Zp"), ("Spaceseparator", "Zs"),
        ]
        return Dictionary(uniqueKeysWithValues: pairs)
    }()
}

/// Parses RE2 syntax with Go's `regexp` rules (Perl flags: `(?i) (?m) (?s) (?U)`, ASCII `\d \s \w`, no
/// back-references or look-around) and Go's error texts.
struct RE2Parser {
    struct Flags {
        var foldCase = false
        var oneLine = true
        var dotNL = false
        var nonGreedy = false
    }

    /// One open group: its alternatives so far and the concatenation being built.
    struct Frame {
        var capture: Int?
        var name: String?
        var savedFlags: Flags
        var alternatives: [[RE2Node]] = []
        var current: [RE2Node] = []
    }

    let s: [Unicode.Scalar]
    var i = 0
    var flags = Flags()
    var stack: [Frame]
    var captureCount = 0
    var names: [Int: String] = [:]

    init(_ pattern: String) {
        s = Array(pattern.unicodeScalars)
        stack = [Frame(capture: nil, name: nil, savedFlags: Flags())]
    }

    func text(_ range: Range<Int>) -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: s[max(0, range.lowerBound)..<min(s.count, range.upperBound)])
        return String(out)
    }

    var whole: String { text(0..<s.count) }

    func error(_ code: String, _ range: Range<Int>) -> RE2Error { RE2Error(code: code, expression: text(range)) }

    func peek(_ k: Int = 0) -> Unicode.Scalar? { i + k < s.count ? s[i + k] : nil }

    mutating func push(_ node: RE2Node) { stack[stack.count - 1].current.append(node) }

    mutating func parse() throws(RE2Error) -> RE2Node {
        // The start of the previous repetition operator, while the previous token was one.
        var lastRepeat: Int?
        while i < s.count {
            var repeatStart: Int?
            let c = s[i]
            switch c {
            case "(":
                if peek(1) == "?" {
                    try parsePerlFlags()
                } else {
                    captureCount += 1
                    stack.append(Frame(capture: captureCount, name: nil, savedFlags: flags))
                    i += 1
                }
            case "|":
                let frame = stack.count - 1
                stack[frame].alternatives.append(stack[frame].current)
                stack[frame].current = []
                i += 1
            case ")":
                guard stack.count > 1 else { throw error(RE2Error.unexpectedParen, 0..<s.count) }
                let frame = stack.removeLast()
                flags = frame.savedFlags
                let body = Self.alternation(frame.alternatives + [frame.current])
                if let cap = frame.capture {
                    push(.capture(cap, body))
                } else {
                    push(body)
                }
                i += 1
            case "^":
                push(flags.oneLine ? .beginText : .beginLine)
                i += 1
            case "$":
                push(flags.oneLine ? .endText : .endLine)
                i += 1
            case ".":
                push(flags.dotNL ? .anyChar : .anyCharNotNewline)
                i += 1
            case "[":
                try parseClass()
            case "*", "+", "?":
                let start = i
                i += 1
                let (min, max) = c == "*" ? (0, -1) : (c == "+" ? (1, -1) : (0, 1))
                try applyRepeat(min: min, max: max, counted: false, start: start, lastRepeat: lastRepeat)
                repeatStart = start
            case "{":
                let start = i
                guard let (min, max, end) = parseRepeatBraces() else {
                    push(literal(0x7B))
                    i += 1
                    break
                }
                i = end
                if min < 0 || min > 1000 || max > 1000 || (max >= 0 && min > max) {
                    throw error(RE2Error.invalidRepeatSize, start..<end)
                }
                try applyRepeat(min: min, max: max, counted: true, start: start, lastRepeat: lastRepeat)
                repeatStart = start
            case "\\":
                try parseBackslash()
            default:
                push(literal(c.value))
                i += 1
            }
            lastRepeat = repeatStart
        }
        guard stack.count == 1 else { throw error(RE2Error.missingParen, 0..<s.count) }
        let root = stack[0]
        let node = Self.alternation(root.alternatives + [root.current])
        if node.height > 1000 { throw error(RE2Error.nestingDepth, 0..<s.count) }
        return node
    }

    static func alternation(_ alternatives: [[RE2Node]]) -> RE2Node {
        let branches = alternatives.map { $0.count == 1 ? $0[0] : ($0.isEmpty ? RE2Node.empty : .concat($0)) }
        return branches.count == 1 ? branches[0] : .alternate(branches)
    }

    func literal(_ c: UInt32) -> RE2Node { .literal(c, fold: flags.foldCase) }

    /// Applies a repetition operator that began at `start` (the cursor is after it) to the last node.
    mutating func applyRepeat(min: Int, max: Int, counted: Bool, start: Int, lastRepeat: Int?) throws(RE2Error) {
        var greedy = !flags.nonGreedy
        if peek() == "?" {
            i += 1
            greedy.toggle()
        }
        if let last = lastRepeat { throw error(RE2Error.invalidRepeatOp, last..<i) }
        let frame = stack.count - 1
        guard let sub = stack[frame].current.popLast() else {
            throw error(RE2Error.missingRepeatArgument, start..<i)
        }
        let node = RE2Node.repeat(sub, min: min, max: max, greedy: greedy, counted: counted)
        if counted && (min >= 2 || max >= 2) && !Self.repeatIsValid(node, 1000) {
            throw error(RE2Error.invalidRepeatSize, start..<i)
        }
        stack[frame].current.append(node)
    }

    /// Counted repetitions nested inside each other may not multiply past `n` copies of the innermost item.
    static func repeatIsValid(_ node: RE2Node, _ limit: Int) -> Bool {
        var n = limit
        switch node {
        case .repeat(let sub, let min, let max, _, let counted):
            if counted {
                var m = max
                if m == 0 { return true }
                if m < 0 { m = min }
                if m > n { return false }
                if m > 0 { n /= m }
            }
            return repeatIsValid(sub, n)
        case .capture(_, let sub): return repeatIsValid(sub, n)
        case .concat(let subs), .alternate(let subs): return subs.allSatisfy { repeatIsValid($0, n) }
        default: return true
        }
    }

    /// `{n}`, `{n,}` or `{n,m}` at the cursor: (min, max, index after `}`), max -1 when open, min -1 when a
    /// number is too large; nil when the text is not a repetition (then `{` is a literal).
    func parseRepeatBraces() -> (Int, Int, Int)? {
        var j = i + 1
        func number() -> Int? {
            guard j < s.count, s[j].value >= 0x30, s[j].value <= 0x39 else { return nil }
            // Leading zeros are not a number.
            if s[j] == "0", j + 1 < s.count, s[j + 1].value >= 0x30, s[j + 1].value <= 0x39 { return nil }
            var n = 0
            while j < s.count, s[j].value >= 0x30, s[j].value <= 0x39 {
                if n >= 100_000_000 { n = -1 } else if n >= 0 { n = n * 10 + Int(s[j].value - 0x30) }
                j += 1
            }
            return n
        }
        guard var min = number(), j < s.count else { return nil }
        var max: Int
        if s[j] != "," {
            max = min
        } else {
            j += 1
            guard j < s.count else { return nil }
            if s[j] == "}" {
                max = -1
            } else {
                guard let m = number() else { return nil }
                max = m
                if m < 0 { min = -1 }
            }
        }
        guard j < s.count, s[j] == "}" else { return nil }
        return (min, max, j + 1)
    }

    // MARK: Groups and flags

    mutating func parsePerlFlags() throws(RE2Error) {
        let start = i
        // Named captures: (?P<name>re) and (?<name>re).
        let withP = s.count - i > 4 && s[i + 2] == "P" && s[i + 3] == "<"
        let bare = s.count - i > 3 && s[i + 2] == "<"
        if withP || bare {
            let nameStart = i + (withP ? 4 : 3)
            guard let end = s[i...].firstIndex(of: ">") else {
                throw error(RE2Error.invalidNamedCapture, start..<s.count)
            }
            let name = text(nameStart..<end)
            let valid = !name.isEmpty && name.unicodeScalars.allSatisfy {
                $0 == "_" || ($0.value >= 0x30 && $0.value <= 0x39) || ($0.value >= 0x41 && $0.value <= 0x5A)
                    || ($0.value >= 0x61 && $0.value <= 0x7A)
            }
            guard valid else { throw error(RE2Error.invalidNamedCapture, start..<(end + 1)) }
            captureCount += 1
            names[captureCount] = name
            stack.append(Frame(capture: captureCount, name: name, savedFlags: flags))
            i = end + 1
            return
        }
        var j = i + 2
        var newFlags = flags
        var negative = false
        var sawFlag = false
        while j < s.count {
            let c = s[j]
            j += 1
            switch c {
            case "i": newFlags.foldCase = !negative; sawFlag = true
            case "m": newFlags.oneLine = negative; sawFlag = true
            case "s": newFlags.dotNL = !negative; sawFlag = true
            case "U": newFlags.nonGreedy = !negative; sawFlag = true
            case "-":
                if negative { throw error(RE2Error.invalidPerlOp, start..<j) }
                negative = true
                sawFlag = false
            case ":", ")":
                if negative && !sawFlag { throw error(RE2Error.invalidPerlOp, start..<j) }
                if c == ":" { stack.append(Frame(capture: nil, name: nil, savedFlags: flags)) }
                flags = newFlags
                i = j
                return
            default:
                throw error(RE2Error.invalidPerlOp, start..<j)
            }
        }
        throw error(RE2Error.invalidPerlOp, start..<j)
    }

    // MARK: Escapes

    mutating func parseBackslash() throws(RE2Error) {
        if let next = peek(1) {
            switch next {
            case "A": push(.beginText); i += 2; return
            case "b": push(.wordBoundary); i += 2; return
            case "B": push(.noWordBoundary); i += 2; return
            case "C": throw error(RE2Error.invalidEscape, i..<(i + 2))
            case "Q":
                var j = i + 2
                while j < s.count, !(s[j] == "\\" && j + 1 < s.count && s[j + 1] == "E") {
                    push(literal(s[j].value))
                    j += 1
                }
                i = j < s.count ? j + 2 : j
                return
            case "z": push(.endText); i += 2; return
            case "p", "P":
                var cls = RE2CharClass()
                cls.fold = flags.foldCase
                if try parseUnicodeClass(into: &cls) {
                    push(.charClass(cls))
                    return
                }
            default:
                break
            }
            if let group = Self.perlGroup(next) {
                var cls = RE2CharClass()
                cls.fold = flags.foldCase
                cls.items.append(group)
                push(.charClass(cls))
                i += 2
                return
            }
        }
        let c = try parseEscape()
        push(literal(c))
    }

    /// `\d \s \w` and their negations: ASCII only.
    static func perlGroup(_ c: Unicode.Scalar) -> RE2CharClass.Item? {
        let digit: [ClosedRange<UInt32>] = [0x30...0x39]
        let space: [ClosedRange<UInt32>] = [0x09...0x0A, 0x0C...0x0D, 0x20...0x20]
        let word: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]
        switch c {
        case "d": return .ranges(digit)
        case "D": return .negatedRanges(digit)
        case "s": return .ranges(space)
        case "S": return .negatedRanges(space)
        case "w": return .ranges(word)
        case "W": return .negatedRanges(word)
        default: return nil
        }
    }

    /// A single-character escape at the cursor (which is on the backslash).
    mutating func parseEscape() throws(RE2Error) -> UInt32 {
        let start = i
        guard i + 1 < s.count else { throw RE2Error(code: RE2Error.trailingBackslash, expression: "") }
        let c = s[i + 1]
        var j = i + 2
        func isOctal(_ k: Int) -> Bool { k < s.count && s[k].value >= 0x30 && s[k].value <= 0x37 }
        switch c {
        case "1", "2", "3", "4", "5", "6", "7", "0":
            // A lone non-zero digit would be a back-reference, which RE2 does not have.
            if c != "0" && !isOctal(j) { break }
            var r = c.value - 0x30
            for _ in 1..<3 where isOctal(j) {
                r = r * 8 + (s[j].value - 0x30)
                j += 1
            }
            i = j
            return r
        case "x":
            guard j < s.count else { break }
            let d = s[j]
            j += 1
            if d == "{" {
                var r: UInt32 = 0
                var digits = 0
                while true {
                    guard j < s.count else { throw error(RE2Error.invalidEscape, start..<j) }
                    let h = s[j]
                    j += 1
                    if h == "}" { break }
                    guard let v = Self.hexValue(h) else { throw error(RE2Error.invalidEscape, start..<j) }
                    r = r * 16 + v
                    if r > 0x10FFFF { throw error(RE2Error.invalidEscape, start..<j) }
                    digits += 1
                }
                guard digits > 0 else { throw error(RE2Error.invalidEscape, start..<j) }
                i = j
                return r
            }
            guard j < s.count else { throw error(RE2Error.invalidEscape, start..<j) }
            let e = s[j]
            j += 1
            guard let x = Self.hexValue(d), let y = Self.hexValue(e) else {
                throw error(RE2Error.invalidEscape, start..<j)
            }
            i = j
            return x * 16 + y
        case "a": i = j; return 0x07
        case "f": i = j; return 0x0C
        case "n": i = j; return 0x0A
        case "r": i = j; return 0x0D
        case "t": i = j; return 0x09
        case "v": i = j; return 0x0B
        default:
            // Punctuation escapes itself; letters and digits must be known escapes.
            if c.value < 0x80 && !Self.isAlphanumeric(c) {
                i = j
                return c.value
            }
        }
        throw error(RE2Error.invalidEscape, start..<j)
    }

    static func isAlphanumeric(_ c: Unicode.Scalar) -> Bool {
        (c.value >= 0x30 && c.value <= 0x39) || (c.value >= 0x41 && c.value <= 0x5A) || (c.value >= 0x61 && c.value <= 0x7A)
    }

    static func hexValue(_ c: Unicode.Scalar) -> UInt32? {
        switch c.value {
        case 0x30...0x39: c.value - 0x30
        case 0x41...0x46: c.value - 0x41 + 10
        case 0x61...0x66: c.value - 0x61 + 10
        default: nil
        }
    }

    /// `\pN`, `\p{Name}`, `\P{...}`, `\p{^Name}` at the cursor; false if the cursor is not on one.
    mutating func parseUnicodeClass(into cls: inout RE2CharClass) throws(RE2Error) -> Bool {
        guard i + 1 < s.count, s[i] == "\\", s[i + 1] == "p" || s[i + 1] == "P" else { return false }
        var negated = s[i + 1] == "P"
        let start = i
        var name: String
        var end: Int
        if i + 2 >= s.count {
            // A bare `\p` names nothing.
            name = ""
            end = i + 2
        } else if s[i + 2] != "{" {
            name = String(s[i + 2])
            end = i + 3
        } else {
            guard let close = s[i...].firstIndex(of: "}") else {
                throw error(RE2Error.invalidCharRange, start..<s.count)
            }
            name = text((i + 3)..<close)
            end = close + 1
        }
        if name.hasPrefix("^") {
            negated.toggle()
            name.removeFirst()
        }
        guard let (property, inverted) = RE2Property.named(name) else {
            throw error(RE2Error.invalidCharRange, start..<end)
        }
        cls.items.append(.property(property, negated: negated != inverted))
        i = end
        return true
    }

    // MARK: Character classes

    static let posixClasses: [String: [ClosedRange<UInt32>]] = [
        "alnum": [0x30...0x39, 0x41...0x5A, 0x61...0x7A], "alpha": [0x41...0x5A, 0x61...0x7A],
        "ascii": [0x00...0x7F], "blank": [0x09...0x09, 0x20...0x20], "cntrl": [0x00...0x1F, 0x7F...0x7F],
        "digit": [0x30...0x39], "graph": [0x21...0x7E], "lower": [0x61...0x7A], "print": [0x20...0x7E],
        "punct": [0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E], "space": [0x09...0x0D, 0x20...0x20],
        "upper": [0x41...0x5A], "word": [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A],
        "xdigit": [0x30...0x39, 0x41...0x46, 0x61...0x66],
    ]

    mutating func parseClass() throws(RE2Error) {
        let classStart = i
        i += 1
        var cls = RE2CharClass()
        cls.fold = flags.foldCase
        if peek() == "^" {
            cls.negated = true
            i += 1
        }
        var ranges: [ClosedRange<UInt32>] = []
        var first = true
        while first || peek() != "]" {
            guard i < s.count else { throw error(RE2Error.missingBracket, classStart..<s.count) }
            first = false
            // POSIX [:name:].
            if s[i] == "[", peek(1) == ":", let close = posixEnd() {
                let full = text(i..<close)
                let inner = text((i + 2)..<(close - 2))
                let negatedPosix = inner.hasPrefix("^")
                guard let rs = Self.posixClasses[negatedPosix ? String(inner.dropFirst()) : inner] else {
                    throw RE2Error(code: RE2Error.invalidCharRange, expression: full)
                }
                cls.items.append(negatedPosix ? .negatedRanges(rs) : .ranges(rs))
                i = close
                continue
            }
            if try parseUnicodeClass(into: &cls) { continue }
            if s[i] == "\\", let next = peek(1), let group = Self.perlGroup(next) {
                cls.items.append(group)
                i += 2
                continue
            }
            let rangeStart = i
            let lo = try classChar(classStart)
            var hi = lo
            if peek() == "-", let after = peek(1), after != "]" {
                i += 1
                hi = try classChar(classStart)
                if hi < lo { throw error(RE2Error.invalidCharRange, rangeStart..<i) }
            }
            ranges.append(lo...hi)
        }
        i += 1
        if !ranges.isEmpty { cls.items.append(.ranges(ranges)) }
        push(.charClass(cls))
    }

    /// The index just after `:]` when the cursor is on `[:`.
    func posixEnd() -> Int? {
        var j = i + 2
        while j + 1 < s.count {
            if s[j] == ":" && s[j + 1] == "]" { return j + 2 }
            j += 1
        }
        return nil
    }

    mutating func classChar(_ classStart: Int) throws(RE2Error) -> UInt32 {
        guard i < s.count else { throw error(RE2Error.missingBracket, classStart..<s.count) }
        if s[i] == "\\" { return try parseEscape() }
        defer { i += 1 }
        return s[i].value
    }
}

/// Simple case folding as Go's `unicode.SimpleFold` orbits it: the code points that match one another under
/// `(?i)`.
enum RE2CaseFold {
    static func orbit(_ c: UInt32) -> [UInt32] {
        guard c >= 0x41, c <= 0x1E943 else { return [c] }
        return table[key(c)] ?? [c]
    }

    /// The code point every member of an orbit maps to: the lower case of the upper case, by one-to-one mappings.
    static func key(_ c: UInt32) -> UInt32 {
        // Dotted and dotless i have no simple folds.
        guard c != 0x130, c != 0x131, let scalar = Unicode.Scalar(c) else { return c }
        let upper = single(scalar.properties.uppercaseMapping) ?? scalar
        let lower = single(upper.properties.lowercaseMapping) ?? upper
        return lower.value
    }

    private static func single(_ mapping: String) -> Unicode.Scalar? {
        var it = mapping.unicodeScalars.makeIterator()
        guard let first = it.next(), it.next() == nil else { return nil }
        return first
    }

    private static let table: [UInt32: [UInt32]] = {
        var groups: [UInt32: [UInt32]] = [:]
        for c in UInt32(0x41)...0x1E943 {
            let k = key(c)
            if k != c || groups[k] != nil { groups[k, default: [k]].append(c) }
        }
        var out: [UInt32: [UInt32]] = [:]
        for (k, members) in groups {
            let unique = Array(Set(members)).sorted()
            if unique.count > 1 { out[k] = unique }
        }
        var byMember: [UInt32: [UInt32]] = [:]
        for members in out.values { for m in members { byMember[m] = members } }
        return byMember
    }()
}

/// Script membership, answered by the platform's Unicode tables.
enum RE2Scripts {
    /// The scripts Go's lookup can reach: single-word names (multi-word keys such as `Old_Italic` never match
    /// its canonical form).
    static let names: Set<String> = [
        "Adlam", "Ahom", "Arabic", "Armenian", "Avestan", "Balinese", "Bamum", "Batak", "Bengali", "Bhaiksuki",
        "Bopomofo", "Brahmi", "Braille", "Buginese", "Buhid", "Carian", "Chakma", "Cham", "Cherokee", "Chorasmian",
        "Common", "Coptic", "Cuneiform", "Cypriot", "Cyrillic", "Deseret", "Devanagari", "Dogra", "Duployan",
        "Elbasan", "Elymaic", "Ethiopic", "Georgian", "Glagolitic", "Gothic", "Grantha", "Greek", "Gujarati",
        "Gurmukhi", "Han", "Hangul", "Hanunoo", "Hatran", "Hebrew", "Hiragana", "Inherited", "Javanese", "Kaithi",
        "Kannada", "Katakana", "Kawi", "Kharoshthi", "Khmer", "Khojki", "Khudawadi", "Lao", "Latin", "Lepcha",
        "Limbu", "Lisu", "Lycian", "Lydian", "Mahajani", "Makasar", "Malayalam", "Mandaic", "Manichaean",
        "Marchen", "Medefaidrin", "Miao", "Modi", "Mongolian", "Mro", "Multani", "Myanmar", "Nabataean",
        "Nandinagari", "Newa", "Nko", "Nushu", "Ogham", "Oriya", "Osage", "Osmanya", "Palmyrene", "Phoenician",
        "Rejang", "Runic", "Samaritan", "Saurashtra", "Sharada", "Shavian", "Siddham", "Sinhala", "Sogdian",
        "Soyombo", "Sundanese", "Syriac", "Tagalog", "Tagbanwa", "Takri", "Tamil", "Tangsa", "Tangut", "Telugu",
        "Thaana", "Thai", "Tibetan", "Tifinagh", "Tirhuta", "Toto", "Ugaritic", "Vai", "Vithkuqi", "Wancho",
        "Yezidi", "Yi",
    ]

    /// Compiled script tests and their answers so far, shared by every evaluation.
    private static let matchers = Mutex<[String: ScriptMatcher]>([:])

    private struct ScriptMatcher {
        var regex: Regex<AnyRegexOutput>
        var answers: [UInt32: Bool] = [:]
    }

    static func contains(_ c: UInt32, script: String) -> Bool {
        guard names.contains(script), let scalar = Unicode.Scalar(c) else { return false }
        return matchers.withLock { table in
            if table[script] == nil {
                guard let r = try? Regex("\\p{Script=\(script)}") else { return false }
                table[script] = ScriptMatcher(regex: r.matchingSemantics(.unicodeScalar))
            }
            if let known = table[script]!.answers[c] { return known }
            let answer = (try? table[script]!.regex.wholeMatch(in: String(scalar))) != nil
            if table[script]!.answers.count < 100_000 { table[script]!.answers[c] = answer }
            return answer
        }
    }
}
