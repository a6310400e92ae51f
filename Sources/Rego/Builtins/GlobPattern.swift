import PolicyCore
import Synchronization

/// Glob patterns as OPA's `glob.match` reads and matches them: `*` (no separators), `**` (anything), `?`,
/// `[...]`/`[!...]` lists and `[a-z]` ranges, `{a,b}` alternatives and `\` escapes.
///
/// OPA compiles a pattern into a tree of specialised matchers (prefixes, suffixes, fixed-length rows, searches
/// for the longest fixed part) and the answers follow that tree, including where it departs from the plain
/// reading of the pattern (an alternative whose first branch has no fixed length is given the length of the
/// next, so `{**,x}.y` only matches three characters). Warden builds the same tree. Matching works on UTF-8
/// bytes, as the original does.
struct GlobPattern: Sendable {
    let matcher: GlobMatcher

    init(_ pattern: String, separators: [UInt32]) throws(GlobError) {
        let tokens = try GlobLexer.tokens(Array(pattern.utf8))
        let tree = try GlobSyntax.parse(tokens)
        matcher = GlobCompiler(separators: separators).compile(tree)
    }

    func matches(_ text: String) -> Bool { matcher.match(Array(text.utf8)[...]) }
}

struct GlobError: Error, Sendable {
    var message: String
}

// MARK: - Lexing

enum GlobToken: Equatable {
    case text([UInt32])
    case any, superAny, single
    case rangeOpen, rangeClose, not, rangeLo(UInt32), rangeBetween, rangeHi(UInt32)
    case termsOpen, termsClose, separator
}

enum GlobLexer {
    static let special: Set<UInt8> = [
        UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "\\"), UInt8(ascii: "["), UInt8(ascii: "]"),
        UInt8(ascii: "{"), UInt8(ascii: "}"),
    ]

    static func tokens(_ bytes: [UInt8]) throws(GlobError) -> [GlobToken] {
        let runes = GoBytes.runes(bytes)
        var out: [GlobToken] = []
        var i = 0
        var termsLevel = 0
        func read() -> UInt32? {
            guard i < runes.count else { return nil }
            defer { i += 1 }
            return runes[i]
        }
        let textBreakers: Set<UInt32> = [0x3F, 0x2A, 0x5B, 0x7B]
        let termBreakers = textBreakers.union([0x7D, 0x2C])
        func text(_ breakers: Set<UInt32>) {
            var data: [UInt32] = []
            var escaped = false
            while let r = read() {
                if !escaped {
                    if r == 0x5C {
                        escaped = true
                        continue
                    }
                    if breakers.contains(r) {
                        i -= 1
                        break
                    }
                }
                escaped = false
                data.append(r)
            }
            if !data.isEmpty { out.append(.text(data)) }
        }
        while true {
            guard let r = read() else { return out }
            switch r {
            case 0x7B:
                termsLevel += 1
                out.append(.termsOpen)
            case 0x2C where termsLevel > 0:
                out.append(.separator)
            case 0x7D where termsLevel > 0:
                out.append(.termsClose)
                termsLevel -= 1
            case 0x5B:
                out.append(.rangeOpen)
                var wantHi = false, wantClose = false, seenNot = false
                while true {
                    guard let c = read() else { throw GlobError(message: "unexpected end of input") }
                    if wantClose {
                        guard c == 0x5D else { throw GlobError(message: "expected close range character") }
                        out.append(.rangeClose)
                        break
                    }
                    if wantHi {
                        out.append(.rangeHi(c))
                        wantClose = true
                        continue
                    }
                    if !seenNot && c == 0x21 {
                        out.append(.not)
                        seenNot = true
                        continue
                    }
                    if i < runes.count, runes[i] == 0x2D {
                        i += 1
                        out.append(.rangeLo(c))
                        out.append(.rangeBetween)
                        wantHi = true
                        continue
                    }
                    i -= 1
                    text([0x5D])
                    wantClose = true
                }
            case 0x3F:
                out.append(.single)
            case 0x2A:
                if i < runes.count, runes[i] == 0x2A {
                    i += 1
                    out.append(.superAny)
                } else {
                    out.append(.any)
                }
            default:
                i -= 1
                text(termsLevel > 0 ? termBreakers : textBreakers)
            }
        }
    }
}

// MARK: - Syntax tree

final class GlobNode {
    enum Kind: Equatable { case nothing, pattern, list, range, text, any, superAny, single, anyOf }
    enum Payload: Equatable {
        case none
        case list(not: Bool, chars: [UInt32])
        case range(not: Bool, lo: UInt32, hi: UInt32)
        case text([UInt32])
    }

    let kind: Kind
    let payload: Payload
    var children: [GlobNode] = []
    weak var parent: GlobNode?

    init(_ kind: Kind, _ payload: Payload = .none, children: [GlobNode] = []) {
        self.kind = kind
        self.payload = payload
        for c in children { insert(c) }
    }

    func insert(_ child: GlobNode) {
        children.append(child)
        child.parent = self
    }

    func equals(_ other: GlobNode) -> Bool {
        kind == other.kind && payload == other.payload && children.count == other.children.count
            && zip(children, other.children).allSatisfy { $0.equals($1) }
    }
}

enum GlobSyntax {
    static func parse(_ tokens: [GlobToken]) throws(GlobError) -> GlobNode {
        let root = GlobNode(.pattern)
        var tree = root
        var k = 0
        while k < tokens.count {
            let token = tokens[k]
            k += 1
            switch token {
            case .text(let t): tree.insert(GlobNode(.text, .text(t)))
            case .any: tree.insert(GlobNode(.any))
            case .superAny: tree.insert(GlobNode(.superAny))
            case .single: tree.insert(GlobNode(.single))
            case .termsOpen:
                let alternatives = GlobNode(.anyOf)
                tree.insert(alternatives)
                let p = GlobNode(.pattern)
                alternatives.insert(p)
                tree = p
            case .separator:
                let p = GlobNode(.pattern)
                tree.parent?.insert(p)
                tree = p
            case .termsClose:
                tree = tree.parent?.parent ?? root
            case .rangeOpen:
                var not = false
                var lo: UInt32 = 0, hi: UInt32 = 0
                var chars: [UInt32] = []
                rangeLoop: while k < tokens.count {
                    let t = tokens[k]
                    k += 1
                    switch t {
                    case .not: not = true
                    case .rangeLo(let c): lo = c
                    case .rangeBetween: break
                    case .rangeHi(let c):
                        hi = c
                        if hi < lo {
                            throw GlobError(message: "hi character '\(scalarText(hi))' should be greater than lo '\(scalarText(lo))'")
                        }
                    case .text(let t): chars = t
                    case .rangeClose:
                        let isRange = lo != 0 && hi != 0
                        let isChars = !chars.isEmpty
                        if isChars == isRange { throw GlobError(message: "could not parse range") }
                        tree.insert(isRange ? GlobNode(.range, .range(not: not, lo: lo, hi: hi))
                            : GlobNode(.list, .list(not: not, chars: chars)))
                        break rangeLoop
                    default: break
                    }
                }
            default:
                throw GlobError(message: "unexpected token")
            }
        }
        return root
    }

    static func scalarText(_ c: UInt32) -> String { Unicode.Scalar(c).map { String($0) } ?? "\u{FFFD}" }
}

// MARK: - Matchers

/// One node of the compiled tree. `match` answers for the whole input; `index` finds the first position where
/// the matcher can start and the lengths (in bytes) it can match there; `length` is its fixed length in code
/// points, or -1.
indirect enum GlobMatcher: Sendable {
    case nothing
    case text([UInt8], runes: Int)
    case any(separators: [UInt32])
    case superAny
    case single(separators: [UInt32])
    case list([UInt32], not: Bool)
    case range(lo: UInt32, hi: UInt32, not: Bool)
    case anyOf([GlobMatcher])
    case everyOf([GlobMatcher])
    case min(Int)
    case max(Int)
    case contains([UInt8], not: Bool)
    case prefix([UInt8])
    case suffix([UInt8])
    case prefixSuffix([UInt8], [UInt8])
    case prefixAny([UInt8], separators: [UInt32])
    case suffixAny([UInt8], separators: [UInt32])
    case row([GlobMatcher], length: Int)
    case btree(value: GlobMatcher, left: GlobMatcher?, right: GlobMatcher?, lengths: BTreeLengths)

    struct BTreeLengths: Sendable {
        var value: Int
        var left: Int
        var right: Int
        var total: Int
    }

    var length: Int {
        switch self {
        case .nothing: return 0
        case .text(_, let runes): return runes
        case .single, .list, .range: return 1
        case .row(_, let length): return length
        case .btree(_, _, _, let lengths): return lengths.total
        case .anyOf(let ms):
            // As in the original: a variable first branch does not make the whole variable.
            var l = -1
            for m in ms {
                let ml = m.length
                if l == -1 {
                    l = ml
                    continue
                }
                if ml == -1 || l != ml { return -1 }
            }
            return l
        case .everyOf(let ms):
            return ms.isEmpty ? 0 : -1
        default: return -1
        }
    }

    static func btree(_ value: GlobMatcher, _ left: GlobMatcher?, _ right: GlobMatcher?) -> GlobMatcher {
        var ok = true
        let v = value.length
        if v == -1 { ok = false }
        var l = 0, r = 0
        if let left {
            l = left.length
            if l == -1 { ok = false }
        }
        if let right {
            r = right.length
            if r == -1 { ok = false }
        }
        let total = ok ? l + v + r : -1
        return .btree(value: value, left: left, right: right, lengths: BTreeLengths(value: v, left: l, right: r, total: total))
    }

    func match(_ s: ArraySlice<UInt8>) -> Bool {
        let s = Array(s)
        switch self {
        case .nothing: return s.isEmpty
        case .text(let t, _): return s == t
        case .any(let seps): return GoBytes.indexAnyRunes(s, seps) == -1
        case .superAny: return true
        // One code point; an empty input reads as U+FFFD of width zero, as Go decodes it.
        case .single(let seps):
            let (r, w) = GoBytes.decode(s, 0) ?? (0xFFFD, 0)
            if s.count > w { return false }
            return !seps.contains(r)
        case .list(let list, let not):
            let (r, w) = GoBytes.decode(s, 0) ?? (0xFFFD, 0)
            if s.count > w { return false }
            return list.contains(r) == !not
        case .range(let lo, let hi, let not):
            let (r, w) = GoBytes.decode(s, 0) ?? (0xFFFD, 0)
            if s.count > w { return false }
            return (r >= lo && r <= hi) == !not
        case .anyOf(let ms): return ms.contains { $0.match(s[...]) }
        case .everyOf(let ms): return ms.allSatisfy { $0.match(s[...]) }
        case .min(let limit): return GoBytes.runeCount(s) >= Swift.max(limit, 1)
        case .max(let limit): return GoBytes.runeCount(s) <= limit
        case .contains(let needle, let not): return (GoBytes.index(s, needle) != -1) != not
        case .prefix(let p): return s.starts(with: p)
        case .suffix(let x): return s.count >= x.count && Array(s.suffix(x.count)) == x
        case .prefixSuffix(let p, let x): return s.starts(with: p) && s.count >= x.count && Array(s.suffix(x.count)) == x
        case .prefixAny(let p, let seps):
            guard s.starts(with: p) else { return false }
            return GoBytes.indexAnyRunes(Array(s[p.count...]), seps) == -1
        case .suffixAny(let x, let seps):
            guard s.count >= x.count, Array(s.suffix(x.count)) == x else { return false }
            return GoBytes.indexAnyRunes(Array(s[..<(s.count - x.count)]), seps) == -1
        case .row(let ms, let length): return GoBytes.runeCount(s) == length && Self.rowMatchAll(ms, s)
        case .btree(let value, let left, let right, let lengths): return Self.btreeMatch(value, left, right, lengths, s)
        }
    }

    /// Each matcher takes its length in code points, counted the way the original counts them: it stops on the
    /// last code point's first byte, so a multi-byte last character is cut short (and fails to match).
    private static func rowMatchAll(_ ms: [GlobMatcher], _ s: [UInt8]) -> Bool {
        var idx = 0
        for m in ms {
            let length = m.length
            var count = 0
            var next = 0
            for (offset, _, _) in GoBytes.runesWithOffsets(Array(s[idx...])) {
                next = offset
                count += 1
                if count == length { break }
            }
            if count < length { return false }
            let end = idx + next + 1
            guard end <= s.count, m.match(s[idx..<end]) else { return false }
            idx = end
        }
        return true
    }

    private static func btreeMatch(
        _ value: GlobMatcher, _ left: GlobMatcher?, _ right: GlobMatcher?, _ lengths: BTreeLengths, _ s: [UInt8]
    ) -> Bool {
        let inputLength = s.count
        // Rune lengths compared with the byte length: a cheap bound that is never too strict.
        if lengths.total != -1 && lengths.total > inputLength { return false }
        var offset = lengths.left >= 0 ? lengths.left : 0
        let limit = lengths.right >= 0 ? inputLength - lengths.right : inputLength
        while offset < limit {
            let (index, segments) = value.index(Array(s[offset..<limit]))
            if index == -1 { return false }
            let l = s[..<(offset + index)]
            let leftOK = left.map { $0.match(l) } ?? l.isEmpty
            if leftOK {
                for length in segments.reversed() {
                    let start = offset + index + length
                    let r: ArraySlice<UInt8> = inputLength <= start ? [] : s[start...]
                    let rightOK = right.map { $0.match(r) } ?? r.isEmpty
                    if rightOK { return true }
                }
            }
            let step = GoBytes.decode(s, offset + index)?.1 ?? 1
            offset += index + step
        }
        return false
    }

    /// The first start position and the byte lengths that can be matched there.
    func index(_ s: [UInt8]) -> (Int, [Int]) {
        switch self {
        case .nothing:
            return (0, [0])
        case .text(let t, _):
            let i = GoBytes.index(s, t)
            return i == -1 ? (-1, []) : (i, [t.count])
        case .any(let seps):
            let found = GoBytes.indexAnyRunes(s, seps)
            if found == 0 { return (0, [0]) }
            let sub = found == -1 ? s : Array(s[..<found])
            return (0, GoBytes.runeStarts(sub) + [sub.count])
        case .superAny:
            return (0, GoBytes.runeStarts(s) + [s.count])
        case .single(let seps):
            for (i, r, w) in GoBytes.runesWithOffsets(s) where !seps.contains(r) { return (i, [w]) }
            return (-1, [])
        case .list(let list, let not):
            for (i, r, w) in GoBytes.runesWithOffsets(s) where not == !list.contains(r) { return (i, [w]) }
            return (-1, [])
        case .range(let lo, let hi, let not):
            for (i, r, w) in GoBytes.runesWithOffsets(s) where not != (r >= lo && r <= hi) { return (i, [w]) }
            return (-1, [])
        case .anyOf(let ms):
            var index = -1
            var segments: [Int] = []
            for m in ms {
                let (idx, seg) = m.index(s)
                if idx == -1 { continue }
                if index == -1 || idx < index {
                    index = idx
                    segments = seg
                } else if idx == index {
                    segments = Array(Set(segments).union(seg)).sorted()
                }
            }
            return index == -1 ? (-1, []) : (index, segments)
        case .everyOf(let ms):
            var index = 0, offset = 0
            var current: [Int] = []
            var sub = s
            for (k, m) in ms.enumerated() {
                let (idx, seg) = m.index(sub)
                if idx == -1 { return (-1, []) }
                if k == 0 {
                    current = seg
                } else {
                    let delta = index - (idx + offset)
                    var next: [Int] = []
                    for ex in current { for n in seg where ex + delta == n { next.append(n) } }
                    if next.isEmpty { return (-1, []) }
                    current = next
                }
                index = idx + offset
                sub = Array(s[index...])
                offset += idx
            }
            return (index, current)
        case .min(let limit):
            let c = s.count - limit + 1
            if c <= 0 { return (-1, []) }
            var segments: [Int] = []
            var count = 0
            for (i, _, w) in GoBytes.runesWithOffsets(s) {
                count += 1
                if count >= limit { segments.append(i + w) }
            }
            return segments.isEmpty ? (-1, []) : (0, segments)
        case .max(let limit):
            var segments = [0]
            var count = 0
            for (i, _, w) in GoBytes.runesWithOffsets(s) {
                count += 1
                if count > limit { break }
                segments.append(i + w)
            }
            return (0, segments)
        case .contains(let needle, let not):
            var offset = 0
            var sub = s
            let idx = GoBytes.index(s, needle)
            if !not {
                if idx == -1 { return (-1, []) }
                offset = idx + needle.count
                if s.count <= offset { return (0, [offset]) }
                sub = Array(s[offset...])
            } else if idx != -1 {
                sub = Array(s[..<idx])
            }
            return (0, GoBytes.byteOffsets(sub).map { offset + $0 } + [offset + sub.count])
        case .prefix(let p):
            let idx = GoBytes.index(s, p)
            if idx == -1 { return (-1, []) }
            let length = p.count
            let sub = s.count > idx + length ? Array(s[(idx + length)...]) : []
            return (idx, [length] + GoBytes.runesWithOffsets(sub).map { length + $0.0 + $0.2 })
        case .prefixAny(let p, let seps):
            let idx = GoBytes.index(s, p)
            if idx == -1 { return (-1, []) }
            let n = p.count
            var sub = Array(s[(idx + n)...])
            let i = GoBytes.indexAnyRunes(sub, seps)
            if i > -1 { sub = Array(sub[..<i]) }
            return (idx, [n] + GoBytes.runesWithOffsets(sub).map { n + $0.0 + $0.2 })
        case .prefixSuffix(let p, let x):
            let prefixIndex = GoBytes.index(s, p)
            if prefixIndex == -1 { return (-1, []) }
            if x.isEmpty { return (prefixIndex, [s.count - prefixIndex]) }
            if s.count - prefixIndex <= 0 { return (-1, []) }
            var segments: [Int] = []
            var sub = Array(s[prefixIndex...])
            while true {
                let suffixIndex = GoBytes.lastIndex(sub, x)
                if suffixIndex == -1 { break }
                segments.append(suffixIndex + x.count)
                sub = Array(sub[..<suffixIndex])
            }
            return segments.isEmpty ? (-1, []) : (prefixIndex, segments.reversed())
        case .suffix(let x):
            let idx = GoBytes.index(s, x)
            return idx == -1 ? (-1, []) : (0, [idx + x.count])
        case .suffixAny(let x, let seps):
            let idx = GoBytes.index(s, x)
            if idx == -1 { return (-1, []) }
            let i = GoBytes.lastIndexAnyRunes(Array(s[..<idx]), seps) + 1
            return (i, [idx + x.count - i])
        case .row(let ms, let length):
            for (i, _, _) in GoBytes.runesWithOffsets(s) {
                if s.count - i < length { break }
                if Self.rowMatchAll(ms, Array(s[i...])) { return (i, [length]) }
            }
            return (-1, [])
        case .btree:
            return (-1, [])
        }
    }
}

// MARK: - Compiling

struct GlobCompiler {
    let separators: [UInt32]

    func compile(_ tree: GlobNode) -> GlobMatcher {
        let m: GlobMatcher
        switch tree.kind {
        case .anyOf:
            if let minimized = minimizeAnyOf(tree) { return compile(minimized) }
            return .anyOf(tree.children.map { optimize(compile($0)) })
        case .pattern:
            if tree.children.isEmpty { return optimize(.nothing) }
            let matchers = tree.children.map { optimize(compile($0)) }
            m = combine(minimize(matchers))
        case .any: m = .any(separators: separators)
        case .superAny: m = .superAny
        case .single: m = .single(separators: separators)
        case .nothing: m = .nothing
        case .list:
            guard case .list(let not, let chars) = tree.payload else { return .nothing }
            m = .list(chars, not: not)
        case .range:
            guard case .range(let not, let lo, let hi) = tree.payload else { return .nothing }
            m = .range(lo: lo, hi: hi, not: not)
        case .text:
            guard case .text(let t) = tree.payload else { return .nothing }
            m = Self.text(t)
        }
        return optimize(m)
    }

    static func text(_ runes: [UInt32]) -> GlobMatcher {
        .text(GoBytes.encode(runes), runes: runes.count)
    }

    func optimize(_ matcher: GlobMatcher) -> GlobMatcher {
        switch matcher {
        case .any(let seps) where seps.isEmpty:
            return .superAny
        case .anyOf(let ms) where ms.count == 1:
            return ms[0]
        case .list(let list, let not) where !not && list.count == 1:
            return Self.text(list)
        case .btree(let value, let left, let right, _):
            let l = left.map(optimize)
            let r = right.map(optimize)
            guard case .text(let str, _) = value else { return .btree(value, l, r) }
            switch (l, r) {
            case (nil, nil): return value
            case (.superAny?, .superAny?): return .contains(str, not: false)
            case (.superAny?, nil): return .suffix(str)
            case (nil, .superAny?): return .prefix(str)
            case (nil, .suffix(let suffix)?): return .prefixSuffix(str, suffix)
            case (.prefix(let prefix)?, nil): return .prefixSuffix(prefix, str)
            case (.any(let seps)?, nil): return .suffixAny(str, separators: seps)
            case (nil, .any(let seps)?): return .prefixAny(str, separators: seps)
            default: return .btree(value, l, r)
            }
        default:
            return matcher
        }
    }

    func combine(_ matchers: [GlobMatcher]) -> GlobMatcher {
        if matchers.isEmpty { return .nothing }
        if matchers.count == 1 { return matchers[0] }
        if let glued = glue(matchers) { return glued }
        var index = -1
        var maxLength = -1
        for (i, m) in matchers.enumerated() {
            let l = m.length
            if l != -1 && l >= maxLength {
                maxLength = l
                index = i
            }
        }
        guard index >= 0 else {
            return .btree(matchers[0], nil, combine(Array(matchers[1...])))
        }
        let left = Array(matchers[..<index])
        let right = Array(matchers[(index + 1)...])
        return .btree(matchers[index], left.isEmpty ? nil : combine(left), right.isEmpty ? nil : combine(right))
    }

    func glue(_ matchers: [GlobMatcher]) -> GlobMatcher? {
        glueAsEvery(matchers) ?? glueAsRow(matchers)
    }

    func glueAsRow(_ matchers: [GlobMatcher]) -> GlobMatcher? {
        guard matchers.count > 1 else { return nil }
        var total = 0
        for m in matchers {
            let l = m.length
            if l == -1 { return nil }
            total += l
        }
        return .row(matchers, length: total)
    }

    func glueAsEvery(_ matchers: [GlobMatcher]) -> GlobMatcher? {
        guard matchers.count > 1 else { return nil }
        var hasAny = false, hasSuper = false, hasSingle = false
        var min = 0
        var separator: [UInt32] = []
        for (i, m) in matchers.enumerated() {
            let sep: [UInt32]
            switch m {
            case .superAny:
                sep = []
                hasSuper = true
            case .any(let s):
                sep = s
                hasAny = true
            case .single(let s):
                sep = s
                hasSingle = true
                min += 1
            case .list(let list, let not):
                guard not else { return nil }
                sep = list
                hasSingle = true
                min += 1
            default:
                return nil
            }
            if i == 0 { separator = sep }
            if sep != separator { return nil }
        }
        if hasSuper && !hasAny && !hasSingle { return .superAny }
        if hasAny && !hasSuper && !hasSingle { return .any(separators: separator) }
        if (hasAny || hasSuper) && min > 0 && separator.isEmpty { return .min(min) }
        var every: [GlobMatcher] = []
        if min > 0 {
            every.append(.min(min))
            if !hasAny && !hasSuper { every.append(.max(min)) }
        }
        if !separator.isEmpty { every.append(.contains(GoBytes.encode(separator), not: true)) }
        return .everyOf(every)
    }

    func minimize(_ matchers: [GlobMatcher]) -> [GlobMatcher] {
        var done: GlobMatcher?
        var left = 0, right = 0, count = 0
        for l in 0..<matchers.count {
            var r = matchers.count
            while r > l {
                if let glued = glue(Array(matchers[l..<r])) {
                    var swap: Bool
                    if let current = done {
                        let cl = current.length, gl = glued.length
                        swap = cl > -1 && gl > -1 && gl > cl
                        swap = swap || count < r - l
                    } else {
                        swap = true
                    }
                    if swap {
                        done = glued
                        left = l
                        right = r
                        count = r - l
                    }
                }
                r -= 1
            }
        }
        guard let done else { return matchers }
        var next = Array(matchers[..<left]) + [done]
        if right < matchers.count { next += matchers[right...] }
        if next.count == matchers.count { return next }
        return minimize(next)
    }

    /// Factors the branches' common leading and trailing parts out of an alternative.
    func minimizeAnyOf(_ tree: GlobNode) -> GlobNode? {
        guard tree.children.allSatisfy({ $0.kind == .pattern }) else { return nil }
        let (commonLeft, commonRight) = commonChildren(tree.children)
        if commonLeft.isEmpty && commonRight.isEmpty { return nil }
        var result: [GlobNode] = []
        if !commonLeft.isEmpty { result.append(GlobNode(.pattern, children: commonLeft)) }
        var alternatives: [GlobNode] = []
        for child in tree.children {
            let reuse = Array(child.children[commonLeft.count..<(child.children.count - commonRight.count)])
            let node = reuse.isEmpty ? GlobNode(.nothing) : GlobNode(.pattern, children: reuse)
            if !alternatives.contains(where: { $0.equals(node) }) { alternatives.append(node) }
        }
        if alternatives.count == 1 && alternatives[0].kind != .nothing {
            result.append(alternatives[0])
        } else if alternatives.count > 1 {
            result.append(GlobNode(.anyOf, children: alternatives))
        }
        if !commonRight.isEmpty { result.append(GlobNode(.pattern, children: commonRight)) }
        return GlobNode(.pattern, children: result)
    }

    func commonChildren(_ nodes: [GlobNode]) -> ([GlobNode], [GlobNode]) {
        guard nodes.count > 1 else { return ([], []) }
        var idx = -1, least = -1
        for (i, n) in nodes.enumerated() where idx == -1 || n.children.count < least {
            least = n.children.count
            idx = i
        }
        let tree = nodes[idx]
        let treeLength = tree.children.count
        var commonLeft: [GlobNode] = []
        var commonRight = [GlobNode?](repeating: nil, count: treeLength)
        var lastRight = treeLength
        var breakLeft = false, breakRight = false
        var commonTotal = 0
        var i = 0, j = treeLength - 1
        while commonTotal < treeLength && j >= 0 && !(breakLeft && breakRight) {
            let treeLeft = tree.children[i]
            let treeRight = tree.children[j]
            var k = 0
            while k < nodes.count && !(breakLeft && breakRight) {
                if k == idx {
                    k += 1
                    continue
                }
                let restLeft = nodes[k].children[i]
                let restRight = nodes[k].children[j + nodes[k].children.count - treeLength]
                breakLeft = breakLeft || !treeLeft.equals(restLeft)
                breakRight = breakRight || (!breakLeft && j <= i)
                breakRight = breakRight || !treeRight.equals(restRight)
                k += 1
            }
            if !breakLeft {
                commonTotal += 1
                commonLeft.append(treeLeft)
            }
            if !breakRight {
                commonTotal += 1
                lastRight = j
                commonRight[j] = treeRight
            }
            i += 1
            j -= 1
        }
        return (commonLeft, commonRight[lastRight...].compactMap { $0 })
    }
}

// MARK: - Go string operations on UTF-8 bytes

enum GoBytes {
    /// The code point at byte `i` and its width; invalid bytes read as U+FFFD, one byte wide.
    static func decode(_ s: [UInt8], _ i: Int) -> (UInt32, Int)? {
        guard i < s.count else { return nil }
        if let (scalar, width) = GoUTF8.scalar(at: i, in: s) { return (scalar.value, width) }
        return (0xFFFD, 1)
    }

    static func runes(_ s: [UInt8]) -> [UInt32] { runesWithOffsets(s).map(\.1) }

    static func runesWithOffsets(_ s: [UInt8]) -> [(Int, UInt32, Int)] {
        var out: [(Int, UInt32, Int)] = []
        var i = 0
        while let (r, w) = decode(s, i) {
            out.append((i, r, w))
            i += w
        }
        return out
    }

    static func runeStarts(_ s: [UInt8]) -> [Int] { runesWithOffsets(s).map(\.0) }

    /// Every byte offset of a Go `for i := range s` loop over a string: one per code point.
    static func byteOffsets(_ s: [UInt8]) -> [Int] { runeStarts(s) }

    static func runeCount(_ s: [UInt8]) -> Int { runesWithOffsets(s).count }

    static func encode(_ runes: [UInt32]) -> [UInt8] {
        var out = String.UnicodeScalarView()
        for r in runes { out.append(Unicode.Scalar(r) ?? "\u{FFFD}") }
        return Array(String(out).utf8)
    }

    static func index(_ s: [UInt8], _ needle: [UInt8]) -> Int {
        if needle.isEmpty { return 0 }
        guard needle.count <= s.count else { return -1 }
        for i in 0...(s.count - needle.count) where s[i] == needle[0] && s[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return -1
    }

    static func lastIndex(_ s: [UInt8], _ needle: [UInt8]) -> Int {
        if needle.isEmpty { return s.count }
        guard needle.count <= s.count else { return -1 }
        var i = s.count - needle.count
        while i >= 0 {
            if s[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i -= 1
        }
        return -1
    }

    static func indexRune(_ s: [UInt8], _ r: UInt32) -> Int {
        for (i, c, _) in runesWithOffsets(s) where c == r { return i }
        return -1
    }

    /// The position of the first separator found, trying the separators in order (not the earliest one).
    static func indexAnyRunes(_ s: [UInt8], _ rs: [UInt32]) -> Int {
        for r in rs {
            let i = indexRune(s, r)
            if i != -1 { return i }
        }
        return -1
    }

    static func lastIndexAnyRunes(_ s: [UInt8], _ rs: [UInt32]) -> Int {
        for r in rs {
            var i = -1
            if r < 0x80 {
                i = s.lastIndex(of: UInt8(r)) ?? -1
            } else {
                // The original searches the whole string again on every pass; it settles on the first match.
                i = indexRune(s, r)
            }
            if i != -1 { return i }
        }
        return -1
    }
}

/// Compiled globs shared by every evaluation, keyed by pattern bytes and separators.
final class GlobCache: Sendable {
    static let shared = GlobCache()
    static let capacity = 1_000

    private struct Key: Hashable {
        var pattern: [UInt8]
        var separators: [UInt32]
    }

    private let entries = Mutex<[Key: Result<GlobPattern, GlobError>]>([:])

    func compile(_ pattern: String, separators: [UInt32]) throws(GlobError) -> GlobPattern {
        let key = Key(pattern: Array(pattern.utf8), separators: separators)
        if let cached = entries.withLock({ $0[key] }) { return try cached.get() }
        let result: Result<GlobPattern, GlobError>
        do {
            result = .success(try GlobPattern(pattern, separators: separators))
        } catch {
            result = .failure(error)
        }
        entries.withLock { table in
            if table.count >= Self.capacity { table.removeAll(keepingCapacity: true) }
            table[key] = result
        }
        return try result.get()
    }
}
