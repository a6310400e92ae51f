import PolicyCore

/// Go's `strconv.Quote`, which OPA's error messages and `sprintf`'s `%q` use: double quotes, backslash escapes
/// for quotes, backslashes and control characters, `\u`/`\U` for other non-printable code points; printable
/// Unicode is kept.
enum GoQuote {
    static func quote(_ s: String) -> String { quote(s, quote: "\"", asciiOnly: false) }

    /// `strconv.QuoteToASCII`: non-ASCII code points are escaped too.
    static func quoteASCII(_ s: String) -> String { quote(s, quote: "\"", asciiOnly: true) }

    /// `strconv.QuoteRune` (or `QuoteRuneToASCII`): single quotes.
    static func quoteRune(_ r: Unicode.Scalar, asciiOnly: Bool) -> String {
        quote(String(r), quote: "'", asciiOnly: asciiOnly)
    }

    private static func quote(_ s: String, quote: Unicode.Scalar, asciiOnly: Bool) -> String {
        var out = String(quote)
        for scalar in s.unicodeScalars {
            if scalar == quote {
                out += "\\" + String(quote)
                continue
            }
            switch scalar {
            case "\\": out += "\\\\"
            case "\u{07}": out += "\\a"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{0B}": out += "\\v"
            default:
                if isPrintable(scalar) && !(asciiOnly && scalar.value >= 0x80) {
                    out.unicodeScalars.append(scalar)
                } else if scalar.value < 0x80 {
                    out += "\\x" + hex(scalar.value, 2)
                } else if scalar.value < 0x10000 {
                    out += "\\u" + hex(scalar.value, 4)
                } else {
                    out += "\\U" + hex(scalar.value, 8)
                }
            }
        }
        return out + String(quote)
    }

    /// Printable in Go's sense: letters, marks, numbers, punctuation, symbols and the ASCII space.
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == " " { return true }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .nonspacingMark, .spacingMark, .enclosingMark,
            .decimalNumber, .letterNumber, .otherNumber,
            .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation,
            .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            return true
        default:
            return false
        }
    }

    private static func hex(_ v: UInt32, _ width: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}
