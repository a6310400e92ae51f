import PolicyCore

/// One token of Rego source. Keywords are identifiers here; the parser knows which words are reserved.
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        case identifier, number, string, rawString
        case leftBrace, rightBrace, leftBracket, rightBracket, leftParen, rightParen
        case dot, comma, semicolon, colon
        case assign, unify, equal, notEqual, less, lessOrEqual, greater, greaterOrEqual
        case plus, minus, star, slash, percent, ampersand, bar
        case endOfFile
    }

    var kind: Kind
    /// The identifier, the number's literal text, or the string's decoded value.
    var text: String
    var start: Int
    var end: Int
    var line: Int
    var column: Int
    /// Whether a line break separates this token from the previous one (statements end at line breaks).
    var newlineBefore: Bool
    /// Whether any white space or comment separates this token from the previous one (`a[0]` is a reference,
    /// `a [0]` is not).
    var spaceBefore: Bool

    /// How OPA names the token in `unexpected ... token` errors.
    var displayName: String {
        switch kind {
        case .identifier: return keywords.contains(text) ? text : "identifier"
        case .number: return "number"
        case .string, .rawString: return "string"
        case .leftBrace: return "{"
        case .rightBrace: return "}"
        case .leftBracket: return "["
        case .rightBracket: return "]"
        case .leftParen: return "("
        case .rightParen: return ")"
        case .dot: return "."
        case .comma: return ","
        case .semicolon: return ";"
        case .colon: return ":"
        case .assign: return "assign"
        case .unify: return "eq"
        case .equal: return "equal"
        case .notEqual: return "neq"
        case .less: return "lt"
        case .lessOrEqual: return "lte"
        case .greater: return "gt"
        case .greaterOrEqual: return "gte"
        case .plus: return "plus"
        case .minus: return "minus"
        case .star: return "mul"
        case .slash: return "div"
        case .percent: return "rem"
        case .ampersand: return "and"
        case .bar: return "or"
        case .endOfFile: return "eof"
        }
    }

    func isKeyword(_ word: String) -> Bool { kind == .identifier && text == word }
}

/// Words Rego v1 reserves: they cannot name variables or rules.
let keywords: Set<String> = [
    "package", "import", "as", "default", "else", "not", "some", "with", "if", "contains", "in", "every",
    "true", "false", "null",
]
