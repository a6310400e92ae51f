import PolicyCore

/// The time builtins, with Go's `time` package semantics: nanoseconds since the Unix epoch in 64 bits, RFC 3339
/// as Go parses it, Go durations (plus OPA's `d`, `w` and `y`), calendar arithmetic that normalises overflowing
/// months and days, and IANA time zones.
extension Builtins {
    static let time: [Builtin] = [
        Builtin("time.now_ns", arity: 0, nondeterministic: true, signature: .parse("() -> now: number")) { _, context in
            .number(Number(context.nowNanoseconds))
        },
        Builtin("time.parse_rfc3339_ns", arity: 1, signature: .parse("(value: string) -> ns: number")) {
            operands, _ throws(BuiltinError) in
            .number(Number(try GoTime.parseRFC3339(try string(operands, 0))))
        },
        Builtin("time.parse_duration_ns", arity: 1, signature: .parse("(duration: string) -> ns: number")) {
            operands, _ throws(BuiltinError) in
            .number(Number(try GoTime.parseDuration(try string(operands, 0))))
        },
        Builtin(
            "time.add_date", arity: 4,
            signature: .parse("(ns: number, years: number, months: number, days: number) -> output: number")
        ) { operands, _ throws(BuiltinError) in
            let t = try GoTime.zoned(operands[0])
            let years = try integer(operands, 1)
            let months = try integer(operands, 2)
            let days = try integer(operands, 3)
            let civil = t.civil
            // Go's `AddDate`: the wall clock moved in the zone, then resolved back to UTC there.
            guard let local = GoTime.Civil.localSeconds(
                year: civil.year + years, month: civil.month + months, day: civil.day + days,
                secondOfDay: civil.secondOfDay),
                let result = GoTime.nanoseconds(
                    seconds: t.zone.info.utcSeconds(forLocal: local), nanosecond: civil.nanosecond)
            else { throw BuiltinError(.builtinError, "time outside of valid range") }
            return .number(Number(result))
        },
        Builtin("time.date", arity: 1, signature: .parse("(x: \(GoTime.zonedType)) -> date: array<number, number, number>")) {
            operands, _ throws(BuiltinError) in
            let t = try GoTime.zoned(operands[0])
            return .array([.int(t.civil.year), .int(t.civil.month), .int(t.civil.day)])
        },
        Builtin("time.clock", arity: 1, signature: .parse("(x: \(GoTime.zonedType)) -> output: array<number, number, number>")) {
            operands, _ throws(BuiltinError) in
            let c = try GoTime.zoned(operands[0]).civil
            return .array([.int(c.secondOfDay / 3600), .int(c.secondOfDay / 60 % 60), .int(c.secondOfDay % 60)])
        },
        Builtin("time.weekday", arity: 1, signature: .parse("(x: \(GoTime.zonedType)) -> day: string")) {
            operands, _ throws(BuiltinError) in
            .string(GoTime.weekdays[try GoTime.zoned(operands[0]).civil.weekday])
        },
        Builtin(
            "time.diff", arity: 2,
            signature: .parse(
                "(ns1: \(GoTime.zonedType), ns2: \(GoTime.zonedType)) -> output: array<number, number, number, number, number, number>")
        ) { operands, _ throws(BuiltinError) in
            let first = try GoTime.zoned(operands[0])
            let second = try GoTime.zoned(operands[1])
            // Both in the first operand's zone, earlier first.
            var a = first
            var b = GoTime.Zoned(nanoseconds: second.nanoseconds, zone: first.zone)
            if a.nanoseconds > b.nanoseconds { swap(&a, &b) }
            let c1 = a.civil, c2 = b.civil
            var year = c2.year - c1.year
            var month = c2.month - c1.month
            var day = c2.day - c1.day
            var hour = c2.secondOfDay / 3600 - c1.secondOfDay / 3600
            var minute = c2.secondOfDay / 60 % 60 - c1.secondOfDay / 60 % 60
            var second2 = c2.secondOfDay % 60 - c1.secondOfDay % 60
            if second2 < 0 { second2 += 60; minute -= 1 }
            if minute < 0 { minute += 60; hour -= 1 }
            if hour < 0 { hour += 24; day -= 1 }
            if day < 0 {
                day += GoTime.daysIn(month: c1.month, year: c1.year)
                month -= 1
            }
            if month < 0 { month += 12; year -= 1 }
            return .array([.int(year), .int(month), .int(day), .int(hour), .int(minute), .int(second2)])
        },
        Builtin(
            "time.format", arity: 1,
            signature: .parse(
                "(x: any<number, array<number, string>, array<number, string, string>>) -> \"formatted timestamp\": string")
        ) { operands, _ throws(BuiltinError) in
            let t = try GoTime.zoned(operands[0])
            var layout = GoTime.rfc3339Nano
            if case .array(let a) = operands[0], a.count > 2 {
                guard case .string(let l) = a[2] else { throw .operand(1, mustBe: "string", got: a[2]) }
                if !l.isEmpty { layout = GoTime.namedLayouts[l] ?? l }
            }
            return .string(GoTime.format(t, layout: layout))
        },
    ]
}

enum GoTime {
    static let zonedType = "any<number, array<number, string>>"
    static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                         "October", "November", "December"]
    static let rfc3339Nano = "2006-01-02T15:04:05.999999999Z07:00"
    static let namedLayouts: [String: String] = [
        "ANSIC": "Mon Jan _2 15:04:05 2006", "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
        "RubyDate": "Mon Jan 02 15:04:05 -0700 2006", "RFC822": "02 Jan 06 15:04 MST",
        "RFC822Z": "02 Jan 06 15:04 -0700", "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
        "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST", "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
        "RFC3339": "2006-01-02T15:04:05Z07:00", "RFC3339Nano": rfc3339Nano,
    ]

    // MARK: Calendar

    /// A moment split into calendar fields at a given offset from UTC.
    struct Civil {
        var year: Int, month: Int, day: Int
        var secondOfDay: Int
        var nanosecond: Int
        var weekday: Int

        init(nanoseconds: Int64, offset: Int) {
            var seconds = Int(nanoseconds / 1_000_000_000)
            var nanos = Int(nanoseconds % 1_000_000_000)
            if nanos < 0 {
                nanos += 1_000_000_000
                seconds -= 1
            }
            seconds += offset
            var days = seconds / 86_400
            var rest = seconds % 86_400
            if rest < 0 {
                rest += 86_400
                days -= 1
            }
            (year, month, day) = GoTime.civil(fromDays: days)
            secondOfDay = rest
            nanosecond = nanos
            weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday
        }

        /// Nanoseconds for the fields at a fixed offset, normalising out-of-range months and days as Go's
        /// `time.Date` does; nil outside the 64-bit range.
        static func nanoseconds(
            year: Int, month: Int, day: Int, secondOfDay: Int, nanosecond: Int, offset: Int
        ) -> Int64? {
            guard let local = localSeconds(year: year, month: month, day: day, secondOfDay: secondOfDay) else {
                return nil
            }
            return GoTime.nanoseconds(seconds: local - Int64(offset), nanosecond: nanosecond)
        }

        /// The fields as if they were UTC, in seconds since the epoch, with months and days normalised.
        static func localSeconds(year: Int, month: Int, day: Int, secondOfDay: Int) -> Int64? {
            let y = year + (month - 1).floorDiv(12)
            let m = (month - 1).floorMod(12) + 1
            if y < -1_000_000 || y > 1_000_000 { return nil }
            let days = GoTime.days(fromCivil: y, m, 1) + day - 1
            return Int64(days * 86_400 + secondOfDay)
        }
    }

    /// `seconds * 1e9 + nanosecond`, or nil outside the 64-bit range.
    static func nanoseconds(seconds: Int64, nanosecond: Int) -> Int64? {
        let wide = Int128(seconds) * 1_000_000_000 + Int128(nanosecond)
        return Int64(exactly: wide)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = y.floorDiv(400)
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = z.floorDiv(146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    /// Days before the first of `month` in a common year.
    static func daysBefore(month: Int) -> Int {
        [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][month - 1]
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // MARK: Zones

    /// A moment in a zone.
    struct Zoned {
        var nanoseconds: Int64
        var zone: Zone

        var offset: Int { zone.offset(at: nanoseconds) }
        var civil: Civil { Civil(nanoseconds: nanoseconds, offset: offset) }
    }

    struct Zone: Sendable {
        var info: GoZoneInfo

        static let utc = Zone(info: .utc)

        func offset(at ns: Int64) -> Int { info.lookup(ns.floorDiv(1_000_000_000)).offset }

        func abbreviation(at ns: Int64) -> String { info.lookup(ns.floorDiv(1_000_000_000)).name }
    }

    static func zone(named name: String) throws(BuiltinError) -> Zone {
        do {
            return Zone(info: try GoZoneInfo.load(name))
        } catch .invalidName {
            throw BuiltinError(.builtinError, "time: invalid location name")
        } catch {
            throw BuiltinError(.builtinError, "unknown time zone \(name)")
        }
    }

    /// A number of nanoseconds, or `[ns, zone]` (more elements are allowed and ignored here).
    static func zoned(_ value: Value) throws(BuiltinError) -> Zoned {
        let bad = BuiltinError(.typeError, "operand 1 must be either number (ns) or [number (ns), string (tz)] but got \(value.typeName)")
        switch value {
        case .number(let n):
            return Zoned(nanoseconds: try nanoseconds(n), zone: Zone.utc)
        case .array(let a):
            guard let first = a.first else { throw bad }
            guard case .number(let n) = first else { throw .operand(1, mustBe: "number", got: first) }
            var zone = Zone.utc
            if a.count > 1 {
                guard case .string(let name) = a[1] else { throw .operand(1, mustBe: "string", got: a[1]) }
                zone = try GoTime.zone(named: name)
            }
            return Zoned(nanoseconds: try nanoseconds(n), zone: zone)
        default:
            throw bad
        }
    }

    /// A timestamp operand read as OPA reads it: through a 64-bit float, which must hold an exact 64-bit integer.
    static func nanoseconds(_ n: Number) throws(BuiltinError) -> Int64 {
        let tooBig = BuiltinError(.builtinError, "timestamp too big")
        if let i = n.int64Value, n.isIntegerLiteral { return i }
        let f = try RegoArithmetic.float(n)
        guard f.isInteger, let i = f.truncated.int64Value else { throw tooBig }
        return i
    }

    // MARK: RFC 3339

    static let rfc3339Layout = "2006-01-02T15:04:05Z07:00"

    /// Go's `time.Parse(time.RFC3339, s)`, in nanoseconds.
    static func parseRFC3339(_ text: String) throws(BuiltinError) -> Int64 {
        let v = Array(text.utf8)
        var i = 0
        func cannot(_ element: String) -> BuiltinError {
            let rest = String(decoding: v[min(i, v.count)...], as: UTF8.self)
            return BuiltinError(.builtinError,
                "parsing time \(quote(text)) as \(quote(rfc3339Layout)): cannot parse \(quote(rest)) as \(quote(element))")
        }
        func outOfRange(_ what: String) -> BuiltinError {
            BuiltinError(.builtinError, "parsing time \(quote(text)): \(what) out of range")
        }
        func isDigit(_ k: Int) -> Bool { k < v.count && v[k] >= 0x30 && v[k] <= 0x39 }
        func fixed2(_ element: String) throws(BuiltinError) -> Int {
            guard isDigit(i), isDigit(i + 1) else { throw cannot(element) }
            defer { i += 2 }
            return Int(v[i] - 0x30) * 10 + Int(v[i + 1] - 0x30)
        }
        func literal(_ c: UInt8, _ element: String) throws(BuiltinError) {
            guard i < v.count, v[i] == c else { throw cannot(element) }
            i += 1
        }
        guard v.count >= 4, (0..<4).allSatisfy({ isDigit($0) }) else { throw cannot("2006") }
        let year = v[0..<4].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        i = 4
        try literal(0x2D, "-")
        let month = try fixed2("01")
        if month < 1 || month > 12 { throw outOfRange("month") }
        try literal(0x2D, "-")
        let day = try fixed2("02")
        try literal(0x54, "T")
        // The hour may have one or two digits.
        guard isDigit(i) else { throw cannot("15") }
        var hour = Int(v[i] - 0x30)
        i += 1
        if isDigit(i) {
            hour = hour * 10 + Int(v[i] - 0x30)
            i += 1
        }
        if hour >= 24 { throw outOfRange("hour") }
        try literal(0x3A, ":")
        let minute = try fixed2("04")
        if minute >= 60 { throw outOfRange("minute") }
        try literal(0x3A, ":")
        let second = try fixed2("05")
        if second >= 60 { throw outOfRange("second") }
        var nanos = 0
        if i + 1 < v.count, v[i] == 0x2E || v[i] == 0x2C, isDigit(i + 1) {
            i += 1
            var digits = 0
            while isDigit(i) {
                if digits < 9 {
                    nanos = nanos * 10 + Int(v[i] - 0x30)
                    digits += 1
                }
                i += 1
            }
            while digits < 9 {
                nanos *= 10
                digits += 1
            }
        }
        var offset = 0
        if i < v.count, v[i] == 0x5A {
            i += 1
        } else {
            guard v.count - i >= 6, v[i + 3] == 0x3A, v[i] == 0x2B || v[i] == 0x2D,
                isDigit(i + 1), isDigit(i + 2), isDigit(i + 4), isDigit(i + 5)
            else { throw cannot("Z07:00") }
            let hh = Int(v[i + 1] - 0x30) * 10 + Int(v[i + 2] - 0x30)
            let mm = Int(v[i + 4] - 0x30) * 10 + Int(v[i + 5] - 0x30)
            offset = (hh * 60 + mm) * 60 * (v[i] == 0x2D ? -1 : 1)
            i += 6
        }
        if i < v.count {
            let rest = String(decoding: v[i...], as: UTF8.self)
            throw BuiltinError(.builtinError, "parsing time \(quote(text)): extra text: \(quote(rest))")
        }
        if day < 1 || day > daysIn(month: month, year: year) { throw outOfRange("day") }
        guard let ns = Civil.nanoseconds(
            year: year, month: month, day: day, secondOfDay: hour * 3600 + minute * 60 + second,
            nanosecond: nanos, offset: offset)
        else { throw BuiltinError(.builtinError, "time outside of valid range") }
        return ns
    }

    /// Go's `time` package quoting: non-ASCII and control bytes as `\xNN`.
    static func quote(_ s: String) -> String {
        var out = "\""
        let hex = Array("0123456789abcdef".utf8)
        for scalar in s.unicodeScalars {
            if scalar.value >= 0x80 || scalar.value < 0x20 {
                for b in String(scalar).utf8 {
                    out += "\\x"
                    out.unicodeScalars.append(Unicode.Scalar(hex[Int(b >> 4)]))
                    out.unicodeScalars.append(Unicode.Scalar(hex[Int(b & 0xF)]))
                }
            } else {
                if scalar == "\"" || scalar == "\\" { out += "\\" }
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    // MARK: Durations

    /// Go's duration units in nanoseconds.
    static let units: [String: UInt64] = [
        "ns": 1, "us": 1_000, "\u{B5}s": 1_000, "\u{3BC}s": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
        "m": 60_000_000_000, "h": 3_600_000_000_000,
    ]

    /// OPA's `time.parse_duration_ns`: Go's `time.ParseDuration`, and when the text holds a `d`, `w` or `y`, a first
    /// pass that splits it into `[-+]? (digits-and-points unit)+` segments and rewrites days, weeks and years as hours
    /// (through a 64-bit float, printed shortest) before Go parses the result. Errors from the rewritten text name
    /// the original.
    static func parseDuration(_ original: String) throws(BuiltinError) -> Int64 {
        let invalid = BuiltinError(.builtinError, "time: invalid duration \(GoQuote.quote(original))")
        if original.isEmpty { throw invalid }
        let bytes = Array(original.utf8)
        if !bytes.contains(where: { $0 == UInt8(ascii: "d") || $0 == UInt8(ascii: "w") || $0 == UInt8(ascii: "y") }) {
            return try goParseDuration(original)
        }
        var i = 0
        var rewritten = ""
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            rewritten.unicodeScalars.append(Unicode.Scalar(bytes[0]))
            i = 1
        }
        let micro: [UInt8] = [0xC2, 0xB5, UInt8(ascii: "s")]
        var segments = 0
        while i < bytes.count {
            let digitsStart = i
            while i < bytes.count, bytes[i] == UInt8(ascii: ".") || (bytes[i] >= 0x30 && bytes[i] <= 0x39) { i += 1 }
            guard i > digitsStart, i < bytes.count else { throw invalid }
            let digits = String(decoding: bytes[digitsStart..<i], as: UTF8.self)
            let unitStart = i
            let two = i + 2 <= bytes.count ? Array(bytes[i..<i + 2]) : []
            if two == Array("ms".utf8) || two == Array("us".utf8) || two == Array("ns".utf8) {
                i += 2
            } else if i + 3 <= bytes.count, Array(bytes[i..<i + 3]) == micro {
                i += 3
            } else if bytes[i] >= UInt8(ascii: "a") && bytes[i] <= UInt8(ascii: "z") {
                i += 1
            } else {
                throw invalid
            }
            let unit = String(decoding: bytes[unitStart..<i], as: UTF8.self)
            segments += 1
            let hoursPer: Double? = switch unit {
            case "d": 24
            case "w": 7 * 24
            case "y": 365 * 24
            default: nil
            }
            guard let hoursPer else {
                rewritten += digits + unit
                continue
            }
            guard let value = goParseDecimal(digits) else { throw invalid }
            let hours = value * hoursPer
            guard hours.isFinite else { throw invalid }
            if hours == 0 {
                rewritten += "0h"
            } else {
                let (d, point) = NumberText.shortestDigits(of: hours)
                rewritten += NumberText.plain(negative: false, digits: d, pointPosition: point) + "h"
            }
        }
        guard segments > 0 else { throw invalid }
        do {
            return try goParseDuration(rewritten)
        } catch {
            // Go's message ends with the quoted duration; put the original text in its place.
            var message = error.message
            if let space = message.lastIndex(of: " ") { message = String(message[..<space]) }
            throw BuiltinError(.builtinError, message + " " + GoQuote.quote(original))
        }
    }

    /// Go's `strconv.ParseFloat` for text of digits and points only; nil when it is not a number or overflows.
    private static func goParseDecimal(_ text: String) -> Double? {
        guard text.utf8.filter({ $0 == UInt8(ascii: ".") }).count <= 1, text != "." else { return nil }
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }

    /// Go's `time.ParseDuration`.
    static func goParseDuration(_ original: String) throws(BuiltinError) -> Int64 {
        let invalid = BuiltinError(.builtinError, "time: invalid duration \(quote(original))")
        var s = Array(original.utf8)[...]
        var negative = false
        if let c = s.first, c == 0x2D || c == 0x2B {
            negative = c == 0x2D
            s = s.dropFirst()
        }
        if s.elementsEqual([0x30]) { return 0 }
        if s.isEmpty { throw invalid }
        let limit: UInt64 = 1 << 63
        var total: UInt64 = 0
        while let first = s.first {
            guard first == 0x2E || (first >= 0x30 && first <= 0x39) else { throw invalid }
            var v: UInt64 = 0
            var consumedInteger = false
            while let c = s.first, c >= 0x30, c <= 0x39 {
                guard v <= limit / 10 else { throw invalid }
                v = v * 10 + UInt64(c - 0x30)
                guard v <= limit else { throw invalid }
                s = s.dropFirst()
                consumedInteger = true
            }
            var fraction: UInt64 = 0
            var scale: Double = 1
            var consumedFraction = false
            if s.first == 0x2E {
                s = s.dropFirst()
                var overflow = false
                while let c = s.first, c >= 0x30, c <= 0x39 {
                    s = s.dropFirst()
                    consumedFraction = true
                    if overflow { continue }
                    if fraction > (limit - 1) / 10 {
                        overflow = true
                        continue
                    }
                    let y = fraction * 10 + UInt64(c - 0x30)
                    if y > limit {
                        overflow = true
                        continue
                    }
                    fraction = y
                    scale *= 10
                }
            }
            guard consumedInteger || consumedFraction else { throw invalid }
            var unitEnd = s.startIndex
            while unitEnd < s.endIndex, !(s[unitEnd] == 0x2E || (s[unitEnd] >= 0x30 && s[unitEnd] <= 0x39)) {
                unitEnd += 1
            }
            guard unitEnd > s.startIndex else {
                throw BuiltinError(.builtinError, "time: missing unit in duration \(quote(original))")
            }
            let unitText = String(decoding: s[s.startIndex..<unitEnd], as: UTF8.self)
            s = s[unitEnd...]
            guard let unit = units[unitText] else {
                throw BuiltinError(.builtinError, "time: unknown unit \(quote(unitText)) in duration \(quote(original))")
            }
            guard v <= limit / unit else { throw invalid }
            v *= unit
            if fraction > 0 {
                v += UInt64(Double(fraction) * (Double(unit) / scale))
                guard v <= limit else { throw invalid }
            }
            total += v
            guard total <= limit else { throw invalid }
        }
        if negative { return total == limit ? Int64.min : -Int64(total) }
        guard total <= limit - 1 else { throw invalid }
        return Int64(total)
    }

    // MARK: Formatting

    /// Go's `Time.Format` for the layout's standard chunks.
    static func format(_ t: Zoned, layout: String) -> String {
        let c = t.civil
        let offset = t.offset
        let l = Array(layout.utf8)
        var out = ""
        var i = 0
        func pad(_ n: Int, _ width: Int) -> String {
            let s = String(abs(n))
            return (n < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - s.count)) + s
        }
        func has(_ prefix: String) -> Bool { l[i...].starts(with: prefix.utf8) }
        func zone(colon: Bool, seconds: Bool, hoursOnly: Bool, z: Bool) -> String {
            if z && offset == 0 { return "Z" }
            let sign = offset < 0 ? "-" : "+"
            let a = abs(offset)
            var s = sign + pad(a / 3600, 2)
            if !hoursOnly { s += (colon ? ":" : "") + pad(a / 60 % 60, 2) }
            if seconds { s += (colon ? ":" : "") + pad(a % 60, 2) }
            return s
        }
        let hour = c.secondOfDay / 3600, minute = c.secondOfDay / 60 % 60, second = c.secondOfDay % 60
        while i < l.count {
            // Longest chunks first, in the order Go recognises them.
            if has("January") { out += months[c.month - 1]; i += 7; continue }
            if has("Jan") { out += String(months[c.month - 1].prefix(3)); i += 3; continue }
            if has("Monday") { out += weekdays[c.weekday]; i += 6; continue }
            if has("Mon") { out += String(weekdays[c.weekday].prefix(3)); i += 3; continue }
            if has("MST") { out += t.zone.abbreviation(at: t.nanoseconds); i += 3; continue }
            if has("01") { out += pad(c.month, 2); i += 2; continue }
            if has("02") { out += pad(c.day, 2); i += 2; continue }
            if has("03") { out += pad(hour % 12 == 0 ? 12 : hour % 12, 2); i += 2; continue }
            if has("04") { out += pad(minute, 2); i += 2; continue }
            if has("05") { out += pad(second, 2); i += 2; continue }
            if has("06") { out += pad(c.year % 100, 2); i += 2; continue }
            if has("002") { out += pad(days(fromCivil: c.year, c.month, c.day) - days(fromCivil: c.year, 1, 1) + 1, 3); i += 3; continue }
            if has("2006") { out += pad(c.year, 4); i += 4; continue }
            if has("__2") { let d = days(fromCivil: c.year, c.month, c.day) - days(fromCivil: c.year, 1, 1) + 1; out += String(repeating: " ", count: max(0, 3 - String(d).count)) + String(d); i += 3; continue }
            if has("_2") { out += (c.day < 10 ? " " : "") + String(c.day); i += 2; continue }
            if has("15") { out += pad(hour, 2); i += 2; continue }
            if has("Z07:00:00") { out += zone(colon: true, seconds: true, hoursOnly: false, z: true); i += 9; continue }
            if has("-07:00:00") { out += zone(colon: true, seconds: true, hoursOnly: false, z: false); i += 9; continue }
            if has("Z070000") { out += zone(colon: false, seconds: true, hoursOnly: false, z: true); i += 7; continue }
            if has("-070000") { out += zone(colon: false, seconds: true, hoursOnly: false, z: false); i += 7; continue }
            if has("Z07:00") { out += zone(colon: true, seconds: false, hoursOnly: false, z: true); i += 6; continue }
            if has("-07:00") { out += zone(colon: true, seconds: false, hoursOnly: false, z: false); i += 6; continue }
            if has("Z0700") { out += zone(colon: false, seconds: false, hoursOnly: false, z: true); i += 5; continue }
            if has("-0700") { out += zone(colon: false, seconds: false, hoursOnly: false, z: false); i += 5; continue }
            if has("Z07") { out += zone(colon: false, seconds: false, hoursOnly: true, z: true); i += 3; continue }
            if has("-07") { out += zone(colon: false, seconds: false, hoursOnly: true, z: false); i += 3; continue }
            if has("PM") { out += hour >= 12 ? "PM" : "AM"; i += 2; continue }
            if has("pm") { out += hour >= 12 ? "pm" : "am"; i += 2; continue }
            // Fractional seconds: `.000` keeps zeros, `.999` trims them; a digit follows the dot or comma.
            if (l[i] == 0x2E || l[i] == 0x2C), i + 1 < l.count, l[i + 1] == 0x30 || l[i + 1] == 0x39 {
                let digit = l[i + 1]
                var j = i + 1
                while j < l.count, l[j] == digit { j += 1 }
                // Only when no digit follows the run.
                if !(j < l.count && l[j] >= 0x30 && l[j] <= 0x39) {
                    let n = j - i - 1
                    let full = pad(c.nanosecond, 9)
                    var digits = String(full.prefix(min(n, 9)))
                    if digit == 0x39 {
                        while digits.hasSuffix("0") { digits.removeLast() }
                        if !digits.isEmpty { out.unicodeScalars.append(Unicode.Scalar(l[i])); out += digits }
                    } else {
                        out.unicodeScalars.append(Unicode.Scalar(l[i]))
                        out += digits
                    }
                    i = j
                    continue
                }
            }
            if l[i] == 0x31 { out += String(c.month); i += 1; continue }
            if l[i] == 0x32 { out += String(c.day); i += 1; continue }
            if l[i] == 0x33 { out += String(hour % 12 == 0 ? 12 : hour % 12); i += 1; continue }
            if l[i] == 0x34 { out += String(minute); i += 1; continue }
            if l[i] == 0x35 { out += String(second); i += 1; continue }
            // Anything else is copied, one code point at a time.
            let (scalar, width) = GoUTF8.scalar(at: i, in: l) ?? ("\u{FFFD}", 1)
            out.unicodeScalars.append(scalar)
            i += width
        }
        return out
    }
}

extension Int {
    func floorDiv(_ d: Int) -> Int {
        let q = self / d
        return (self % d != 0) && ((self < 0) != (d < 0)) ? q - 1 : q
    }

    func floorMod(_ d: Int) -> Int {
        let r = self % d
        return r != 0 && ((r < 0) != (d < 0)) ? r + d : r
    }
}

extension Int64 {
    func floorDiv(_ d: Int64) -> Int64 {
        let q = self / d
        return (self % d != 0) && ((self < 0) != (d < 0)) ? q - 1 : q
    }
}
