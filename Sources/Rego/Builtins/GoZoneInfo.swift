import Foundation
import PolicyCore
import Synchronization

/// A time zone as Go's `time` package loads it: the TZif file's transitions, zone kinds and abbreviations, and its
/// POSIX TZ footer for times after the last transition. Lookups answer exactly what Go's `Location.lookup` does,
/// including the abbreviation Go prints for `MST` in a layout.
struct GoZoneInfo: Sendable {
    struct Kind: Sendable {
        var name: String
        var offset: Int
        var isDST: Bool
    }

    struct Transition: Sendable {
        var at: Int64
        var kind: Int
    }

    /// The name Go reports for a zone's abbreviation lookups and errors.
    var name: String
    var kinds: [Kind]
    var transitions: [Transition]
    var extend: String

    static let utc = GoZoneInfo(name: "UTC", kinds: [], transitions: [], extend: "")

    static let alpha = Int64.min
    static let omega = Int64.max

    struct Lookup {
        var name: String
        var offset: Int
        var start: Int64
        var end: Int64
    }

    /// The zone in effect at `sec` seconds since the Unix epoch.
    func lookup(_ sec: Int64) -> Lookup {
        if kinds.isEmpty { return Lookup(name: "UTC", offset: 0, start: Self.alpha, end: Self.omega) }
        if transitions.isEmpty || sec < transitions[0].at {
            let kind = kinds[firstKind()]
            return Lookup(
                name: kind.name, offset: kind.offset, start: Self.alpha,
                end: transitions.first?.at ?? Self.omega)
        }
        var end = Self.omega
        var lo = 0, hi = transitions.count
        while hi - lo > 1 {
            let m = (lo + hi) / 2
            let lim = transitions[m].at
            if sec < lim {
                end = lim
                hi = m
            } else {
                lo = m
            }
        }
        let kind = kinds[transitions[lo].kind]
        let start = transitions[lo].at
        if lo == transitions.count - 1, !extend.isEmpty,
            let rule = GoZoneInfo.tzset(Array(extend.utf8), lastTransition: start, sec: sec)
        {
            return rule
        }
        return Lookup(name: kind.name, offset: kind.offset, start: start, end: end)
    }

    /// The offset from UTC for a local wall-clock second, resolved as Go's `time.Date` resolves it.
    func utcSeconds(forLocal unix: Int64) -> Int64 {
        let found = lookup(unix)
        var offset = found.offset
        if offset != 0 {
            let utc = unix &- Int64(offset)
            if utc < found.start || utc >= found.end { offset = lookup(utc).offset }
        }
        return unix &- Int64(offset)
    }

    /// The kind used before the first transition (Go's `lookupFirstZone`).
    private func firstKind() -> Int {
        if !transitions.contains(where: { $0.kind == 0 }) { return 0 }
        if let first = transitions.first, kinds[first.kind].isDST {
            var k = first.kind - 1
            while k >= 0 {
                if !kinds[k].isDST { return k }
                k -= 1
            }
        }
        return kinds.firstIndex(where: { !$0.isDST }) ?? 0
    }

    // MARK: Loading

    enum LoadError: Error {
        case invalidName
        case unknown
    }

    private static let cache = Mutex<[String: GoZoneInfo]>([:])

    /// Go's `time.LoadLocation`: "" and "UTC" are UTC, "Local" is the process's zone, other names come from the
    /// zoneinfo directories Go searches.
    static func load(_ name: String) throws(LoadError) -> GoZoneInfo {
        if name.isEmpty || name == "UTC" { return .utc }
        if name == "Local" { return local }
        if name.contains("..") || name.hasPrefix("/") || name.hasPrefix("\\") { throw .invalidName }
        if let cached = cache.withLock({ $0[name] }) { return cached }
        var directories: [String] = []
        if let env = ProcessInfo.processInfo.environment["ZONEINFO"], !env.isEmpty { directories.append(env) }
        directories += ["/usr/share/zoneinfo/", "/usr/share/lib/zoneinfo/", "/usr/lib/locale/TZ/", "/etc/zoneinfo/"]
        for directory in directories {
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path),
                let zone = parse([UInt8](data), name: name)
            else { continue }
            cache.withLock { $0[name] = zone }
            return zone
        }
        throw .unknown
    }

    /// The process's zone as Go sets it up: `TZ` when set (empty means UTC), else `/etc/localtime`, else UTC.
    static let local: GoZoneInfo = {
        let environment = ProcessInfo.processInfo.environment
        if let tz = environment["TZ"] {
            if tz.isEmpty || tz == "UTC" { return .utc }
            let name = tz.hasPrefix(":") ? String(tz.dropFirst()) : tz
            if name.hasPrefix("/"), let data = FileManager.default.contents(atPath: name),
                let zone = parse([UInt8](data), name: "Local")
            {
                return zone
            }
            if var zone = try? load(name) {
                zone.name = "Local"
                return zone
            }
            return .utc
        }
        if let data = FileManager.default.contents(atPath: "/etc/localtime"),
            let zone = parse([UInt8](data), name: "Local")
        {
            return zone
        }
        return .utc
    }()

    /// A TZif file (RFC 8536), version 1 or later, read as Go's `LoadLocationFromTZData` reads it.
    static func parse(_ bytes: [UInt8], name: String) -> GoZoneInfo? {
        var p = 0
        func u32() -> Int? {
            guard p + 4 <= bytes.count else { return nil }
            defer { p += 4 }
            return Int(bytes[p]) << 24 | Int(bytes[p + 1]) << 16 | Int(bytes[p + 2]) << 8 | Int(bytes[p + 3])
        }
        func i64() -> Int64? {
            guard p + 8 <= bytes.count else { return nil }
            var v: UInt64 = 0
            for k in 0..<8 { v = v << 8 | UInt64(bytes[p + k]) }
            p += 8
            return Int64(bitPattern: v)
        }
        func header() -> (version: UInt8, counts: [Int])? {
            guard p + 44 <= bytes.count, bytes[p..<p + 4].elementsEqual("TZif".utf8) else { return nil }
            let version = bytes[p + 4] == 0 ? 1 : bytes[p + 4] &- 0x30
            p += 20
            var counts: [Int] = []
            for _ in 0..<6 {
                guard let c = u32() else { return nil }
                counts.append(c)
            }
            return (version, counts)
        }
        guard var (version, counts) = header() else { return nil }
        var wide = false
        if version >= 2 {
            // Skip the 32-bit data block; the 64-bit block follows its own header.
            let (isut, isstd, leap, time, type, chars) = (counts[0], counts[1], counts[2], counts[3], counts[4], counts[5])
            p += time * 4 + time + type * 6 + chars + leap * 8 + isstd + isut
            guard let second = header() else { return nil }
            (version, counts) = second
            wide = true
        }
        let (isut, isstd, leap, timeCount, typeCount, charCount) =
            (counts[0], counts[1], counts[2], counts[3], counts[4], counts[5])
        var times: [Int64] = []
        for _ in 0..<timeCount {
            if wide {
                guard let t = i64() else { return nil }
                times.append(t)
            } else {
                guard let t = u32() else { return nil }
                times.append(Int64(Int32(truncatingIfNeeded: t)))
            }
        }
        guard p + timeCount <= bytes.count else { return nil }
        let indexes = bytes[p..<p + timeCount].map(Int.init)
        p += timeCount
        var rawKinds: [(offset: Int, isDST: Bool, abbreviation: Int)] = []
        for _ in 0..<typeCount {
            guard let offset = u32(), p + 2 <= bytes.count else { return nil }
            rawKinds.append((Int(Int32(truncatingIfNeeded: offset)), bytes[p] != 0, Int(bytes[p + 1])))
            p += 2
        }
        guard p + charCount <= bytes.count else { return nil }
        let chars = Array(bytes[p..<p + charCount])
        p += charCount
        p += leap * (wide ? 12 : 8) + isstd + isut
        var extend = ""
        if wide, p < bytes.count, bytes[p] == 0x0A {
            if let close = bytes[(p + 1)...].firstIndex(of: 0x0A) {
                extend = String(decoding: bytes[(p + 1)..<close], as: UTF8.self)
            }
        }
        guard !rawKinds.isEmpty else { return nil }
        var kinds: [Kind] = []
        for raw in rawKinds {
            guard raw.abbreviation <= chars.count else { return nil }
            let rest = chars[raw.abbreviation...]
            let end = rest.firstIndex(of: 0) ?? chars.count
            kinds.append(Kind(name: String(decoding: chars[raw.abbreviation..<end], as: UTF8.self),
                              offset: raw.offset, isDST: raw.isDST))
        }
        var transitions: [Transition] = []
        for (t, k) in zip(times, indexes) {
            guard k < kinds.count else { return nil }
            transitions.append(Transition(at: t, kind: k))
        }
        if transitions.isEmpty { transitions.append(Transition(at: alpha, kind: 0)) }
        return GoZoneInfo(name: name, kinds: kinds, transitions: transitions, extend: extend)
    }

    // MARK: POSIX TZ rules (Go's tzset)

    private enum RuleKind { case julian, dayOfYear, monthWeekDay }

    private struct Rule {
        var kind: RuleKind
        var day = 0, week = 0, month = 0
        var time = 0
    }

    private static func tzset(_ s0: [UInt8], lastTransition: Int64, sec: Int64) -> Lookup? {
        var s = s0[...]
        guard var stdName = tzsetName(&s), var stdOffset = tzsetOffset(&s) else { return nil }
        stdOffset = -stdOffset
        if s.isEmpty || s.first == UInt8(ascii: ",") {
            return Lookup(name: stdName, offset: stdOffset, start: lastTransition, end: omega)
        }
        guard var dstName = tzsetName(&s) else { return nil }
        var dstOffset: Int
        if s.isEmpty || s.first == UInt8(ascii: ",") {
            dstOffset = stdOffset + 3600
        } else {
            guard let o = tzsetOffset(&s) else { return nil }
            dstOffset = -o
        }
        if s.isEmpty { s = Array(",M3.2.0,M11.1.0".utf8)[...] }
        guard s.first == UInt8(ascii: ",") || s.first == UInt8(ascii: ";") else { return nil }
        s = s.dropFirst()
        guard let startRule = tzsetRule(&s), s.first == UInt8(ascii: ",") else { return nil }
        s = s.dropFirst()
        guard let endRule = tzsetRule(&s), s.isEmpty else { return nil }

        let days = Int(sec.floorDiv(86_400))
        let (year, _, _) = GoTime.civil(fromDays: days)
        let yearStartDays = GoTime.days(fromCivil: year, 1, 1)
        let ysec = Int64((days - yearStartDays) * 86_400) + sec % 86_400
        let abs = Int64(yearStartDays) * 86_400
        var startSec = Int64(ruleTime(year: year, startRule, offset: stdOffset))
        var endSec = Int64(ruleTime(year: year, endRule, offset: dstOffset))
        if endSec < startSec {
            swap(&startSec, &endSec)
            swap(&stdName, &dstName)
            swap(&stdOffset, &dstOffset)
        }
        if ysec < startSec {
            return Lookup(name: stdName, offset: stdOffset, start: abs, end: startSec + abs)
        } else if ysec >= endSec {
            return Lookup(name: stdName, offset: stdOffset, start: endSec + abs, end: abs + 365 * 86_400)
        } else {
            return Lookup(name: dstName, offset: dstOffset, start: startSec + abs, end: endSec + abs)
        }
    }

    private static func tzsetName(_ s: inout ArraySlice<UInt8>) -> String? {
        guard let first = s.first else { return nil }
        if first != UInt8(ascii: "<") {
            for (i, c) in zip(s.indices, s) {
                if (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: ",") || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
                    if i - s.startIndex < 3 { return nil }
                    let name = String(decoding: s[..<i], as: UTF8.self)
                    s = s[i...]
                    return name
                }
            }
            if s.count < 3 { return nil }
            let name = String(decoding: s, as: UTF8.self)
            s = s[s.endIndex...]
            return name
        }
        guard let close = s.firstIndex(of: UInt8(ascii: ">")) else { return nil }
        let name = String(decoding: s[(s.startIndex + 1)..<close], as: UTF8.self)
        s = s[(close + 1)...]
        return name
    }

    private static func tzsetOffset(_ s: inout ArraySlice<UInt8>) -> Int? {
        guard let first = s.first else { return nil }
        var negative = false
        if first == UInt8(ascii: "+") {
            s = s.dropFirst()
        } else if first == UInt8(ascii: "-") {
            s = s.dropFirst()
            negative = true
        }
        guard let hours = tzsetNumber(&s, 0, 24 * 7) else { return nil }
        var offset = hours * 3600
        if s.first == UInt8(ascii: ":") {
            s = s.dropFirst()
            guard let minutes = tzsetNumber(&s, 0, 59) else { return nil }
            offset += minutes * 60
            if s.first == UInt8(ascii: ":") {
                s = s.dropFirst()
                guard let seconds = tzsetNumber(&s, 0, 59) else { return nil }
                offset += seconds
            }
        }
        return negative ? -offset : offset
    }

    private static func tzsetRule(_ s: inout ArraySlice<UInt8>) -> Rule? {
        guard let first = s.first else { return nil }
        var rule: Rule
        if first == UInt8(ascii: "J") {
            s = s.dropFirst()
            guard let day = tzsetNumber(&s, 1, 365) else { return nil }
            rule = Rule(kind: .julian, day: day)
        } else if first == UInt8(ascii: "M") {
            s = s.dropFirst()
            guard let month = tzsetNumber(&s, 1, 12), s.first == UInt8(ascii: ".") else { return nil }
            s = s.dropFirst()
            guard let week = tzsetNumber(&s, 1, 5), s.first == UInt8(ascii: ".") else { return nil }
            s = s.dropFirst()
            guard let day = tzsetNumber(&s, 0, 6) else { return nil }
            rule = Rule(kind: .monthWeekDay, day: day, week: week, month: month)
        } else {
            guard let day = tzsetNumber(&s, 0, 365) else { return nil }
            rule = Rule(kind: .dayOfYear, day: day)
        }
        if s.first != UInt8(ascii: "/") {
            rule.time = 2 * 3600
            return rule
        }
        s = s.dropFirst()
        guard let time = tzsetOffset(&s) else { return nil }
        rule.time = time
        return rule
    }

    private static func tzsetNumber(_ s: inout ArraySlice<UInt8>, _ low: Int, _ high: Int) -> Int? {
        guard !s.isEmpty else { return nil }
        var n = 0
        for (i, c) in zip(s.indices, s) {
            if c < 0x30 || c > 0x39 {
                if i == s.startIndex || n < low { return nil }
                s = s[i...]
                return n
            }
            n = n * 10 + Int(c - 0x30)
            if n > high { return nil }
        }
        if n < low { return nil }
        s = s[s.endIndex...]
        return n
    }

    private static func ruleTime(year: Int, _ rule: Rule, offset: Int) -> Int {
        let leap = GoTime.isLeap(year)
        var s: Int
        switch rule.kind {
        case .julian:
            s = (rule.day - 1) * 86_400
            if leap && rule.day >= 60 { s += 86_400 }
        case .dayOfYear:
            s = rule.day * 86_400
        case .monthWeekDay:
            // Zeller's congruence: the weekday of the month's first day.
            let m1 = (rule.month + 9) % 12 + 1
            var yy0 = year
            if rule.month <= 2 { yy0 -= 1 }
            let yy1 = yy0 / 100
            let yy2 = yy0 % 100
            var dow = ((26 * m1 - 2) / 10 + 1 + yy2 + yy2 / 4 + yy1 / 4 - 2 * yy1) % 7
            if dow < 0 { dow += 7 }
            var d = rule.day - dow
            if d < 0 { d += 7 }
            var i = 1
            while i < rule.week {
                if d + 7 >= GoTime.daysIn(month: rule.month, year: year) { break }
                d += 7
                i += 1
            }
            d += GoTime.daysBefore(month: rule.month)
            if leap && rule.month > 2 { d += 1 }
            s = d * 86_400
        }
        return s + rule.time - offset
    }
}
