/// A Go-style duration (`5s`, `1.5s`, `500ms`, `1m30s`, `2h`); nil when malformed.
public func parseDuration(_ text: String) -> Duration? {
    var rest = Substring(text)
    guard !rest.isEmpty else { return nil }
    var total: Double = 0
    while !rest.isEmpty {
        let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        rest = rest.dropFirst(number.count)
        let unit = rest.prefix { $0.isLetter || $0 == "µ" }
        rest = rest.dropFirst(unit.count)
        let scale: Double
        switch unit {
        case "ns": scale = 1e-9
        case "us", "µs": scale = 1e-6
        case "ms": scale = 1e-3
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3600
        default: return nil
        }
        total += value * scale
    }
    guard total.isFinite, total < 1e9 else { return nil }
    let nanoseconds = (total * 1e9).rounded()
    return .nanoseconds(Int64(nanoseconds))
}
