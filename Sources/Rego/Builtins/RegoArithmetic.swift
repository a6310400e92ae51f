import PolicyCore

/// Number arithmetic with OPA's results: exact on integers, floating-point otherwise.
enum RegoArithmetic {
    static func add(_ a: Number, _ b: Number) -> Number {
        if let x = a.int64Value, let y = b.int64Value {
            let (r, overflow) = x.addingReportingOverflow(y)
            if !overflow { return Number(r) }
        }
        return Number(a.doubleValue + b.doubleValue)
    }

    static func subtract(_ a: Number, _ b: Number) -> Number {
        if let x = a.int64Value, let y = b.int64Value {
            let (r, overflow) = x.subtractingReportingOverflow(y)
            if !overflow { return Number(r) }
        }
        return Number(a.doubleValue - b.doubleValue)
    }

    static func multiply(_ a: Number, _ b: Number) -> Number {
        if let x = a.int64Value, let y = b.int64Value {
            let (r, overflow) = x.multipliedReportingOverflow(by: y)
            if !overflow { return Number(r) }
        }
        return Number(a.doubleValue * b.doubleValue)
    }

    static func divide(_ a: Number, _ b: Number) throws(BuiltinError) -> Number {
        guard b.doubleValue != 0 else { throw BuiltinError(.builtinError, "divide by zero") }
        if let x = a.int64Value, let y = b.int64Value, x != 0, x % y == 0 { return Number(x / y) }
        return Number(a.doubleValue / b.doubleValue)
    }

    static func remainder(_ a: Number, _ b: Number) throws(BuiltinError) -> Number {
        guard let x = a.int64Value, let y = b.int64Value else {
            throw BuiltinError(.builtinError, "modulo on floating-point number")
        }
        guard y != 0 else { throw BuiltinError(.builtinError, "modulo by zero") }
        return Number(x % y)
    }

    static func absolute(_ a: Number) -> Number {
        if let x = a.int64Value, x != .min { return Number(Swift.abs(x)) }
        return Number(Swift.abs(a.doubleValue))
    }

    static func round(_ a: Number) -> Number { integral(a, .toNearestOrAwayFromZero) }
    static func ceil(_ a: Number) -> Number { integral(a, .up) }
    static func floor(_ a: Number) -> Number { integral(a, .down) }

    private static func integral(_ a: Number, _ rule: FloatingPointRoundingRule) -> Number {
        if a.int64Value != nil { return a }
        let d = a.doubleValue.rounded(rule)
        return Int64(exactly: d).map { Number($0) } ?? Number(d)
    }
}
