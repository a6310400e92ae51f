import PolicyCore

/// Splits Rego source into tokens. Line breaks and spaces are not tokens; each token records whether a line
/// break or a space came before it, which is all the parser needs to know about layout.
struct Lexer {
    /// A lexical error: where and what.
    struct Failure: Error {
        var message: String
        var start: Int
        var line: Int
        var column: Int
    }

    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0

    init(_ text: String) {
        bytes = Array(text.utf8)
    }

    static func tokenize(_ text: String) -> Result<[Token], Failure> {
        var lexer = Lexer(text)
        var tokens: [Token] = []
        do {
            while true {
                let token = try lexer.next()
                tokens.append(token)
                if token.kind == .endOfFile { break }
            }
        } catch {
            return .failure(error)
        }
        return .success(tokens)
    }

    /// The last column computed on the current line and its byte offset: tokens come in order, so each column
    /// is counted on from the previous one instead of from the line's start (a long line stays linear).
    private var columnMark = (offset: 0, column: 1)

    private var column: Int { mutating get { columnAt(index) } }

    /// 1-based column of a byte offset on the current line, counting Unicode scalars.
    private mutating func columnAt(_ offset: Int) -> Int {
        if columnMark.offset < lineStart || columnMark.offset > offset { columnMark = (lineStart, 1) }
        var c = columnMark.column
        var i = columnMark.offset
        while i < offset {
            if bytes[i] & 0xC0 != 0x80 { c += 1 }
            i += 1
        }
        columnMark = (offset, c)
        return c
    }

    private mutating func next() throws(Failure) -> Token {
        var newline = index == 0
        var space = false
        // White space and comments.
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\n") {
                index += 1
                line += 1
                lineStart = index
                newline = true
                space = true
            } else if b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r") {
                index += 1
                space = true
            } else if b == UInt8(ascii: "#") {
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
                space = true
            } else {
                break
            }
        }
        let start = index
        let startLine = line
        let startColumn = column
        func make(_ kind: Token.Kind, _ text: String = "") -> Token {
            Token(
                kind: kind, text: text, start: start, end: index, line: startLine, column: startColumn,
                newlineBefore: newline, spaceBefore: space)
        }
        guard index < bytes.count else { return make(.endOfFile) }
        let b = bytes[index]
        if isIdentifierStart(b) {
            while index < bytes.count, isIdentifierStart(bytes[index]) || isDigit(bytes[index]) { index += 1 }
            return make(.identifier, String(decoding: bytes[start..<index], as: UTF8.self))
        }
        if isDigit(b) {
            try scanNumber(start: start)
            return make(.number, String(decoding: bytes[start..<index], as: UTF8.self))
        }
        if b == UInt8(ascii: "\"") {
            let value = try scanString(start: start, column: startColumn)
            return make(.string, value)
        }
        if b == UInt8(ascii: "`") {
            index += 1
            let contentStart = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "`") {
                if bytes[index] == UInt8(ascii: "\n") {
                    line += 1
                    lineStart = index + 1
                }
                index += 1
            }
            guard index < bytes.count else {
                throw Failure(message: "non-terminated raw string", start: start, line: startLine, column: startColumn)
            }
            let value = String(decoding: bytes[contentStart..<index], as: UTF8.self)
            index += 1
            return make(.rawString, value)
        }
        index += 1
        let following: UInt8? = index < bytes.count ? bytes[index] : nil
        switch b {
        case UInt8(ascii: "{"): return make(.leftBrace)
        case UInt8(ascii: "}"): return make(.rightBrace)
        case UInt8(ascii: "["): return make(.leftBracket)
        case UInt8(ascii: "]"): return make(.rightBracket)
        case UInt8(ascii: "("): return make(.leftParen)
        case UInt8(ascii: ")"): return make(.rightParen)
        case UInt8(ascii: "."): return make(.dot)
        case UInt8(ascii: ","): return make(.comma)
        case UInt8(ascii: ";"): return make(.semicolon)
        case UInt8(ascii: "+"): return make(.plus)
        case UInt8(ascii: "-"): return make(.minus)
        case UInt8(ascii: "*"): return make(.star)
        case UInt8(ascii: "/"): return make(.slash)
        case UInt8(ascii: "%"): return make(.percent)
        case UInt8(ascii: "&"): return make(.ampersand)
        case UInt8(ascii: "|"): return make(.bar)
        case UInt8(ascii: ":"):
            if following == UInt8(ascii: "=") {
                index += 1
                return make(.assign)
            }
            return make(.colon)
        case UInt8(ascii: "="):
            if following == UInt8(ascii: "=") {
                index += 1
                return make(.equal)
            }
            return make(.unify)
        case UInt8(ascii: "!"):
            if following == UInt8(ascii: "=") {
                index += 1
                return make(.notEqual)
            }
        case UInt8(ascii: "<"):
            if following == UInt8(ascii: "=") {
                index += 1
                return make(.lessOrEqual)
            }
            return make(.less)
        case UInt8(ascii: ">"):
            if following == UInt8(ascii: "=") {
                index += 1
                return make(.greaterOrEqual)
            }
            return make(.greater)
        default:
            break
        }
        throw Failure(message: "illegal token", start: start, line: startLine, column: startColumn)
    }

    private mutating func scanNumber(start: Int) throws(Failure) {
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "."), isDigit(bytes[index + 1]) {
            index += 1
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            var i = index + 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            if i < bytes.count, isDigit(bytes[i]) {
                index = i
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
        }
        // A number running straight into a name (`1a`) is not a number.
        if index < bytes.count, isIdentifierStart(bytes[index]) {
            throw Failure(message: "illegal number format", start: start, line: line, column: columnAt(start))
        }
    }

    private mutating func scanString(start: Int, column startColumn: Int) throws(Failure) -> String {
        index += 1
        var out: [UInt8] = []
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b == UInt8(ascii: "\n") { break }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { break }
            let e = bytes[index]
            index += 1
            switch e {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard var code = hex4() else {
                    throw Failure(message: "invalid escape in string", start: start, line: line, column: startColumn)
                }
                if (0xD800..<0xDC00).contains(code) {
                    if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                        index += 2
                        if let low = hex4(), (0xDC00..<0xE000).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            code = 0xFFFD
                        }
                    } else {
                        code = 0xFFFD
                    }
                } else if (0xDC00..<0xE000).contains(code) {
                    code = 0xFFFD
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(code) ?? "\u{FFFD}")).utf8)
            default:
                throw Failure(message: "invalid escape in string", start: start, line: line, column: startColumn)
            }
        }
        throw Failure(message: "non-terminated string", start: start, line: line, column: startColumn)
    }

    private mutating func hex4() -> UInt32? {
        guard index + 4 <= bytes.count else { return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: return nil
            }
            v = v << 4 | d
            index += 1
        }
        return v
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    private func isIdentifierStart(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || b == UInt8(ascii: "_")
    }
}
