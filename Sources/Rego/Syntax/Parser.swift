import PolicyCore

/// Parses Rego v1 source into modules and queries. Errors are `rego_parse_error` diagnostics with OPA's messages;
/// v0 forms (`p { ... }`, `p[x] { ... }`) parse, so that every problem in them is reported, but are errors.
///
/// Nesting is bounded by an explicit counter (`InputLimits.maxNestingDepth`): every nested term, body and
/// operator application counts one level, so neither this parser nor the compiler stages after it (which
/// recurse over the tree) can exhaust the stack, and each term is parsed once, so the work is linear in the
/// text.
struct Parser {
    /// A parse error that ends the current module or query; its diagnostic is already recorded.
    struct Stop: Error {}

    private var tokens: [Token]
    private var position = 0
    private let file: String
    private let source: [UInt8]
    private(set) var diagnostics: [Diagnostic] = []
    /// The nesting the term being parsed sits at, and its bound.
    private var depth = 0
    private let maximumDepth: Int

    static let operatorNames: [Token.Kind: String] = [
        .equal: "equal", .notEqual: "neq", .less: "lt", .lessOrEqual: "lte", .greater: "gt",
        .greaterOrEqual: "gte", .plus: "plus", .minus: "minus", .star: "mul", .slash: "div", .percent: "rem",
        .ampersand: "and", .bar: "or",
    ]

    private init(tokens: [Token], file: String, source: String, maximumDepth: Int) {
        self.tokens = tokens
        self.file = file
        self.source = Array(source.utf8)
        self.maximumDepth = maximumDepth
    }

    /// Parses one `.rego` file.
    static func parseModule(
        _ text: String, file: String, maximumDepth: Int = InputLimits.default.maxNestingDepth
    ) -> (Module?, [Diagnostic]) {
        switch Lexer.tokenize(text) {
        case .failure(let failure):
            return (nil, [lexicalDiagnostic(failure, file: file)])
        case .success(let tokens):
            var parser = Parser(tokens: tokens, file: file, source: text, maximumDepth: maximumDepth)
            let module = try? parser.module(text: text)
            return (parser.diagnostics.isEmpty ? module : nil, parser.diagnostics)
        }
    }

    /// Parses a query: expressions separated by `;` or line breaks.
    static func parseQuery(
        _ text: String, file: String = "", maximumDepth: Int = InputLimits.default.maxNestingDepth
    ) -> (Body?, [Diagnostic]) {
        switch Lexer.tokenize(text) {
        case .failure(let failure):
            return (nil, [lexicalDiagnostic(failure, file: file)])
        case .success(let tokens):
            var parser = Parser(tokens: tokens, file: file, source: text, maximumDepth: maximumDepth)
            do {
                if parser.current.kind == .endOfFile {
                    parser.error("empty query", at: parser.current)
                    return (nil, parser.diagnostics)
                }
                let body = try parser.statements(until: .endOfFile)
                return (parser.diagnostics.isEmpty ? body : nil, parser.diagnostics)
            } catch {
                return (nil, parser.diagnostics)
            }
        }
    }

    private static func lexicalDiagnostic(_ failure: Lexer.Failure, file: String) -> Diagnostic {
        Diagnostic(
            code: RegoError.Code.parse, message: failure.message,
            span: SourceSpan(file: file, line: failure.line, column: failure.column))
    }

    // MARK: - Tokens

    private var current: Token { tokens[position] }

    private func peek(_ offset: Int = 1) -> Token {
        tokens[min(position + offset, tokens.count - 1)]
    }

    private mutating func advance() -> Token {
        let token = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    private func location(of token: Token) -> Location {
        Location(file: file, line: token.line, column: token.column, start: token.start, end: token.end)
    }

    /// The location from `start` to the end of the previous token.
    private func location(from start: Token) -> Location {
        let last = position > 0 ? tokens[position - 1] : start
        return Location(file: file, line: start.line, column: start.column, start: start.start, end: max(start.end, last.end))
    }

    private mutating func error(_ message: String, at token: Token) {
        diagnostics.append(Diagnostic(code: RegoError.Code.parse, message: message, span: location(of: token).span))
    }

    private mutating func fail(_ message: String, at token: Token) -> Stop {
        error(message, at: token)
        return Stop()
    }

    private mutating func unexpected(_ expected: String? = nil) -> Stop {
        let token = current
        var message =
            token.kind == .identifier && keywords.contains(token.text)
            ? "unexpected \(token.text) keyword" : "unexpected \(token.displayName) token"
        if let expected { message += ": expected \(expected)" }
        return fail(message, at: token)
    }

    private mutating func expect(_ kind: Token.Kind, _ name: String) throws(Stop) -> Token {
        guard current.kind == kind else { throw unexpected(name) }
        return advance()
    }

    private func atKeyword(_ word: String) -> Bool { current.isKeyword(word) }

    // MARK: - Nesting

    /// Enters one more level of nesting, or stops at the bound with an error at the current token.
    private mutating func nest() throws(Stop) {
        guard depth < maximumDepth else {
            throw fail(
                "expression nested too deeply: more than \(maximumDepth) levels of terms, bodies and operators "
                    + "(limits.max_nesting_depth)", at: current)
        }
        depth += 1
    }

    /// A reference (package path, rule head, `a.b[c]...`) becomes as many levels of the data tree.
    private mutating func checkLength(_ path: Int, at token: Token) throws(Stop) {
        if path > maximumDepth {
            throw fail("reference too long: more than \(maximumDepth) parts (limits.max_nesting_depth)", at: token)
        }
    }

    // MARK: - Modules

    private mutating func module(text: String) throws(Stop) -> Module {
        guard atKeyword("package") else {
            throw fail("package expected", at: current)
        }
        let packageToken = advance()
        let packagePath = try packageReference()
        var module = Module(
            file: file, text: text, package: packagePath, packageLocation: location(from: packageToken),
            imports: [], rules: [])
        while atKeyword("import") {
            module.imports.append(try importStatement())
        }
        while current.kind != .endOfFile {
            if atKeyword("import") {
                throw fail("import must come before rules", at: current)
            }
            if atKeyword("package") {
                throw fail("unexpected package keyword: only one package per file", at: current)
            }
            guard current.newlineBefore else { throw unexpected() }
            module.rules.append(try rule())
        }
        return module
    }

    private mutating func packageReference() throws(Stop) -> [String] {
        let first = current
        guard first.kind == .identifier, !keywords.contains(first.text) else { throw unexpected("ident") }
        _ = advance()
        var path = [first.text]
        while !current.spaceBefore {
            if current.kind == .dot {
                _ = advance()
                guard current.kind == .identifier else { throw unexpected("ident") }
                path.append(advance().text)
            } else if current.kind == .leftBracket {
                _ = advance()
                guard current.kind == .string else { throw fail("invalid package path", at: current) }
                path.append(advance().text)
                _ = try expect(.rightBracket, "]")
            } else {
                break
            }
            try checkLength(path.count, at: current)
        }
        return path
    }

    private mutating func importStatement() throws(Stop) -> Import {
        let start = advance()
        let pathStart = current
        guard current.kind == .identifier else { throw unexpected("ident") }
        let path = try term()
        switch path.kind {
        case .variable, .ref: break
        default: throw fail("invalid import path", at: pathStart)
        }
        var alias: String?
        if atKeyword("as") {
            _ = advance()
            guard current.kind == .identifier, !keywords.contains(current.text) else { throw unexpected("ident") }
            alias = advance().text
        }
        return Import(path: path, alias: alias, location: location(from: start))
    }

    // MARK: - Rules

    private mutating func rule() throws(Stop) -> Rule {
        let start = current
        var isDefault = false
        if atKeyword("default") {
            _ = advance()
            isDefault = true
        }
        let headStart = current
        guard current.kind == .identifier else { throw unexpected() }
        if keywords.contains(current.text) { throw unexpected() }
        var reference = [Term(.variable(advance().text), location(of: headStart))]
        while !current.spaceBefore {
            if current.kind == .dot {
                _ = advance()
                guard current.kind == .identifier else { throw unexpected("ident") }
                let name = advance()
                reference.append(Term(.string(name.text), location(of: name)))
            } else if current.kind == .leftBracket {
                _ = advance()
                reference.append(try termIn(keyValue: false))
                _ = try expect(.rightBracket, "]")
            } else {
                break
            }
            try checkLength(reference.count, at: current)
        }
        var arguments: [Term]?
        if current.kind == .leftParen, !current.spaceBefore {
            _ = advance()
            arguments = try termList(until: .rightParen)
        }
        var key: Term?
        var value: Term?
        var assigns = false
        if atKeyword("contains") {
            _ = advance()
            key = try termIn(keyValue: false)
        } else if current.kind == .assign || current.kind == .unify {
            assigns = advance().kind == .assign
            value = try termIn(keyValue: false)
        }
        try rejectWith(in: "rule head")
        let head = RuleHead(
            reference: reference, arguments: arguments, key: key, value: value, assigns: assigns,
            location: location(from: headStart))

        if isDefault {
            if value == nil { throw fail("illegal default rule (must have a value)", at: start) }
            if atKeyword("if") || current.kind == .leftBrace && !current.newlineBefore { throw unexpected() }
        }
        var body: Body = []
        var hasBody = false
        if atKeyword("if") {
            _ = advance()
            body = try ruleBody()
            hasBody = true
        } else if current.kind == .leftBrace, !current.newlineBefore {
            // A v0 rule: report what v1 requires, and keep parsing to find further problems.
            error("`if` keyword is required before \(arguments == nil ? "rule" : "function") body", at: current)
            if reference.count > 1, value == nil, key == nil, arguments == nil {
                error("`contains` keyword is required for partial set rules", at: current)
            }
            body = try braces()
            hasBody = true
        }
        if !hasBody, value == nil, key == nil {
            if arguments == nil && reference.count == 1 {
                throw fail("var cannot be used for rule name", at: headStart)
            }
        }
        var rule = Rule(
            isDefault: isDefault, head: head, body: body, elseClauses: [], location: location(from: start),
            hasBody: hasBody)
        if isDefault, atKeyword("else") { throw unexpected() }
        while atKeyword("else") {
            let elseToken = advance()
            var elseValue: Term?
            if current.kind == .assign || current.kind == .unify {
                _ = advance()
                elseValue = try termIn(keyValue: false)
            }
            try rejectWith(in: "rule head")
            var elseBody: Body = []
            if atKeyword("if") {
                _ = advance()
                elseBody = try ruleBody()
            } else if current.kind == .leftBrace, !current.newlineBefore {
                error("`if` keyword is required before rule body", at: current)
                elseBody = try braces()
            }
            rule.elseClauses.append(ElseClause(value: elseValue, body: elseBody, location: location(from: elseToken)))
        }
        if !rule.elseClauses.isEmpty, isDefault {
            throw fail("else keyword cannot be used on default rules", at: start)
        }
        if !rule.elseClauses.isEmpty, key != nil || (arguments == nil && head.reference.count > 1 && !head.reference.dropFirst().allSatisfy(\.isGround)) {
            throw fail(
                key != nil ? "else keyword cannot be used on multi-value rules"
                    : "else keyword cannot be used on rules with variables in head", at: start)
        }
        rule.location = location(from: start)
        return rule
    }

    private mutating func rejectWith(in place: String) throws(Stop) {
        if atKeyword("with") {
            throw fail("expressions using with keyword cannot be used for \(place)", at: current)
        }
    }

    /// After `if`: a braced body, or a single expression (which may itself start with a set or object
    /// literal: `p if {1, 2} == x`).
    private mutating func ruleBody() throws(Stop) -> Body {
        if current.kind == .leftBrace {
            let saved = position
            let savedDiagnostics = diagnostics.count
            let body = try? braces()
            if let body, !continuesExpression(current) { return body }
            let bodyEnd = position
            let bodyDiagnostics = Array(diagnostics[savedDiagnostics...])
            position = saved
            diagnostics.removeSubrange(savedDiagnostics...)
            // Not a body: an expression starting with a set or object literal; if it is not one either, the
            // body's error is the one to report.
            do {
                return [try literal()]
            } catch {
                if body != nil { throw error }
                diagnostics.removeSubrange(savedDiagnostics...)
                diagnostics.append(contentsOf: bodyDiagnostics)
                position = bodyEnd
                throw error
            }
        }
        return [try literal()]
    }

    /// Whether a token after a braced term continues it as an expression on the same line.
    private func continuesExpression(_ token: Token) -> Bool {
        if token.newlineBefore { return false }
        switch token.kind {
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual, .plus, .minus, .star, .slash,
            .percent, .ampersand, .bar, .unify, .assign:
            return true
        case .leftBracket, .dot:
            return !token.spaceBefore
        case .identifier:
            return token.text == "in" || token.text == "with"
        default:
            return false
        }
    }

    private mutating func braces() throws(Stop) -> Body {
        let open = try expect(.leftBrace, "{")
        if current.kind == .rightBrace {
            throw fail("found empty body", at: open)
        }
        let body = try statements(until: .rightBrace)
        _ = try expect(.rightBrace, "}")
        return body
    }

    /// Expressions separated by `;` or line breaks, up to (not including) `end`.
    private mutating func statements(until end: Token.Kind) throws(Stop) -> Body {
        try nest()
        defer { depth -= 1 }
        var body: Body = []
        while true {
            body.append(try literal())
            if current.kind == .semicolon {
                _ = advance()
                continue
            }
            if current.kind == end { return body }
            if current.newlineBefore, current.kind != .endOfFile { continue }
            let expected = end == .endOfFile ? "\\n or ;" : "\\n or ; or \(end == .rightBrace ? "}" : "]")"
            throw unexpected(expected)
        }
    }

    // MARK: - Expressions

    private mutating func literal() throws(Stop) -> Expr {
        let start = current
        if atKeyword("some") {
            return try withModifiers(try someDeclaration(), start: start)
        }
        if atKeyword("every") {
            return try withModifiers(try every(), start: start)
        }
        var negated = false
        if atKeyword("not") {
            _ = advance()
            negated = true
            for keyword in ["every", "some"] where atKeyword(keyword) {
                throw fail("unexpected \(keyword) keyword: illegal negation of '\(keyword)'", at: current)
            }
        }
        var expr = try expression()
        expr.negated = negated
        expr.location = location(from: start)
        return try withModifiers(expr, start: start)
    }

    private mutating func withModifiers(_ expr: Expr, start: Token) throws(Stop) -> Expr {
        var expr = expr
        while atKeyword("with") {
            let withToken = advance()
            let target = try term()
            guard atKeyword("as") else { throw unexpected("as") }
            _ = advance()
            let value = try termIn(keyValue: false)
            expr.withModifiers.append(WithModifier(target: target, value: value, location: location(from: withToken)))
        }
        expr.location = location(from: start)
        return expr
    }

    private mutating func expression() throws(Stop) -> Expr {
        let start = current
        let lhs = try termIn(keyValue: true)
        if current.kind == .assign || current.kind == .unify {
            let op = advance()
            let rhs = try termIn(keyValue: true)
            let function = Term(.variable(op.kind == .assign ? "assign" : "eq"), location(of: op))
            return Expr(.call(function: function, arguments: [lhs, rhs]), location: location(from: start))
        }
        if case .call(let function, let arguments) = lhs.kind {
            return Expr(.call(function: function, arguments: arguments), location: location(from: start))
        }
        return Expr(.term(lhs), location: location(from: start))
    }

    private mutating func someDeclaration() throws(Stop) -> Expr {
        let start = advance()
        let first = try termIn(keyValue: true)
        if case .call(let function, let arguments) = first.kind, let name = function.variableName {
            if name == "internal.member_2" {
                return Expr(.someIn(key: nil, value: arguments[0], domain: arguments[1]), location: location(from: start))
            }
            if name == "internal.member_3" {
                return Expr(
                    .someIn(key: arguments[0], value: arguments[1], domain: arguments[2]), location: location(from: start))
            }
        }
        var symbols = [first]
        while current.kind == .comma {
            _ = advance()
            symbols.append(try termIn(keyValue: false))
        }
        for symbol in symbols where symbol.variableName == nil {
            throw fail("expected var", at: start)
        }
        return Expr(.someDeclaration(symbols), location: location(from: start))
    }

    private mutating func every() throws(Stop) -> Expr {
        let start = advance()
        let domainTerm = try termIn(keyValue: true)
        guard case .call(let function, let arguments) = domainTerm.kind, let name = function.variableName,
            name == "internal.member_2" || name == "internal.member_3"
        else {
            throw fail("expected `x[, y] in xs { ... }` expression", at: start)
        }
        let body = try braces()
        if name == "internal.member_2" {
            return Expr(
                .every(key: nil, value: arguments[0], domain: arguments[1], body: body), location: location(from: start))
        }
        return Expr(
            .every(key: arguments[0], value: arguments[1], domain: arguments[2], body: body),
            location: location(from: start))
    }

    // MARK: - Terms, by operator precedence

    // Each level takes the leftmost operand when the caller has already parsed it (`first`): a literal such as
    // `[x | ...]` reads one term to see whether a comprehension follows, and goes on from that term when none
    // does, instead of parsing it again (which made nested literals cost 2^depth). Every operator applied adds a
    // level of nesting to the tree (`1 + 1 + ...` is a chain as deep as it is long), so each counts one.

    /// `x in xs` and, when `keyValue`, `k, v in xs`: the loosest-binding operator.
    private mutating func termIn(keyValue: Bool, first: Term? = nil) throws(Stop) -> Term {
        let outer = depth
        defer { depth = outer }
        var lhs = try relation(first: first)
        while true {
            if keyValue, current.kind == .comma {
                let saved = position
                let savedDiagnostics = diagnostics.count
                let savedDepth = depth
                _ = advance()
                if let middle = try? relation(), atKeyword("in") {
                    let op = advance()
                    try nest()
                    let rhs = try relation()
                    lhs = Term(
                        .call(function: Term(.variable("internal.member_3"), location(of: op)), arguments: [lhs, middle, rhs]),
                        lhs.location.through(rhs.location))
                    continue
                }
                position = saved
                depth = savedDepth
                diagnostics.removeSubrange(savedDiagnostics...)
            }
            if atKeyword("in") {
                let op = advance()
                try nest()
                let rhs = try relation()
                lhs = Term(
                    .call(function: Term(.variable("internal.member_2"), location(of: op)), arguments: [lhs, rhs]),
                    lhs.location.through(rhs.location))
                continue
            }
            return lhs
        }
    }

    private mutating func relation(first: Term? = nil) throws(Stop) -> Term {
        let outer = depth
        defer { depth = outer }
        var lhs = try union(first: first)
        while [.equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual].contains(current.kind) {
            let op = advance()
            try nest()
            let rhs = try union()
            lhs = binary(op, lhs, rhs)
        }
        return lhs
    }

    private mutating func union(first: Term? = nil) throws(Stop) -> Term {
        let outer = depth
        defer { depth = outer }
        var lhs = try intersection(first: first)
        while current.kind == .bar {
            let op = advance()
            try nest()
            let rhs = try intersection()
            lhs = binary(op, lhs, rhs)
        }
        return lhs
    }

    private mutating func intersection(first: Term? = nil) throws(Stop) -> Term {
        let outer = depth
        defer { depth = outer }
        var lhs = try arithmetic(first: first)
        while current.kind == .ampersand {
            let op = advance()
            try nest()
            let rhs = try arithmetic()
            lhs = binary(op, lhs, rhs)
        }
        return lhs
    }

    private mutating func arithmetic(first: Term? = nil) throws(Stop) -> Term {
        let outer = depth
        defer { depth = outer }
        var lhs = try factor(first: first)
        while current.kind == .plus || current.kind == .minus {
            let op = advance()
            try nest()
            let rhs = try factor()
            lhs = binary(op, lhs, rhs)
        }
        return lhs
    }

    private mutating func factor(first: Term? = nil) throws(Stop) -> Term {
        let outer = depth
        defer { depth = outer }
        var lhs: Term
        if let first { lhs = first } else { lhs = try term() }
        while current.kind == .star || current.kind == .slash || current.kind == .percent {
            let op = advance()
            try nest()
            let rhs = try term()
            lhs = binary(op, lhs, rhs)
        }
        return lhs
    }

    private func binary(_ op: Token, _ lhs: Term, _ rhs: Term) -> Term {
        let function = Term(.variable(Parser.operatorNames[op.kind]!), location(of: op))
        return Term(.call(function: function, arguments: [lhs, rhs]), lhs.location.through(rhs.location))
    }

    // MARK: - Primary terms

    /// A single term with its reference and call suffixes.
    private mutating func term() throws(Stop) -> Term {
        try nest()
        defer { depth -= 1 }
        let start = current
        var base: Term
        switch start.kind {
        case .number:
            _ = advance()
            base = try number(start.text, start)
        case .string, .rawString:
            _ = advance()
            base = Term(.string(start.text), location(of: start))
        case .minus:
            _ = advance()
            if current.kind == .number, !current.spaceBefore {
                let digits = advance()
                return try number("-" + digits.text, start)
            }
            let operand = try term()
            let zero = Term(.number(Number(0)), location(of: start))
            let function = Term(.variable("minus"), location(of: start))
            return Term(.call(function: function, arguments: [zero, operand]), location(from: start))
        case .leftParen:
            _ = advance()
            let inner = try termIn(keyValue: true)
            _ = try expect(.rightParen, ")")
            base = inner
            base.location = location(from: start)
        case .leftBracket:
            base = try arrayLiteral()
        case .leftBrace:
            base = try braceLiteral()
        case .identifier:
            _ = advance()
            switch start.text {
            case "true": return Term(.bool(true), location(of: start))
            case "false": return Term(.bool(false), location(of: start))
            case "null": return Term(.null, location(of: start))
            case "set" where current.kind == .leftParen && !current.spaceBefore && peek().kind == .rightParen:
                _ = advance()
                _ = advance()
                return Term(.set([]), location(from: start))
            default:
                // `contains` is also a builtin: directly followed by `(` in a term, it is a call.
                let isCall = start.text == "contains" && current.kind == .leftParen && !current.spaceBefore
                if keywords.contains(start.text), !isCall {
                    position -= 1
                    throw unexpected()
                }
                base = Term(.variable(start.text), location(of: start))
            }
        default:
            throw unexpected()
        }
        return try suffixes(base, start: start)
    }

    /// `.name`, `[term]` and `(args)` directly after a term, with no space before them.
    private mutating func suffixes(_ base: Term, start: Token) throws(Stop) -> Term {
        var head = base
        var path: [Term] = []
        func built() -> Term {
            path.isEmpty ? head : Term(.ref(head: head, path: path), head.location.through(path.last!.location))
        }
        while !current.spaceBefore {
            switch current.kind {
            case .dot:
                _ = advance()
                let name = current
                guard name.kind == .identifier, !current.spaceBefore else { throw unexpected("ident") }
                _ = advance()
                path.append(Term(.string(name.text), location(of: name)))
                try checkLength(path.count, at: current)
            case .leftBracket:
                _ = advance()
                let index = try termIn(keyValue: false)
                _ = try expect(.rightBracket, "]")
                var located = index
                located.location = index.location
                path.append(located)
                try checkLength(path.count, at: current)
            case .leftParen:
                let function = built()
                switch function.kind {
                case .variable: break
                case .ref(let h, _) where h.variableName != nil: break
                default: throw unexpected()
                }
                _ = advance()
                let arguments = try termList(until: .rightParen)
                head = Term(.call(function: function, arguments: arguments), location(from: start))
                path = []
            default:
                return built()
            }
        }
        return built()
    }

    private mutating func number(_ text: String, _ token: Token) throws(Stop) -> Term {
        guard let n = Number(literal: Substring(text)) else {
            throw fail("invalid number `\(text)`", at: token)
        }
        return Term(.number(n), location(from: token))
    }

    /// Terms separated by commas up to `end`, which is consumed; a trailing comma is allowed.
    private mutating func termList(until end: Token.Kind) throws(Stop) -> [Term] {
        var items: [Term] = []
        while current.kind != end {
            items.append(try termIn(keyValue: false))
            if current.kind == .comma {
                _ = advance()
                continue
            }
            guard current.kind == end else { throw unexpected(end == .rightParen ? ")" : "]") }
        }
        _ = advance()
        return items
    }

    /// `[...]`: a comprehension when a single term is followed by `|` (OPA reads the head of a comprehension
    /// as one term, so `[x * 2 | ...]` is the union `x * 2 | ...`), else an array.
    private mutating func arrayLiteral() throws(Stop) -> Term {
        let start = advance()
        if current.kind == .rightBracket {
            _ = advance()
            return Term(.array([]), location(from: start))
        }
        let head = try term()
        if current.kind == .bar {
            _ = advance()
            let body = try comprehensionBody(until: .rightBracket)
            return Term(.arrayComprehension(head: head, body: body), location(from: start))
        }
        var items: [Term] = []
        var first: Term? = head
        while true {
            items.append(try termIn(keyValue: false, first: first))
            first = nil
            guard current.kind == .comma else { break }
            _ = advance()
            if current.kind == .rightBracket { break }
        }
        _ = try expect(.rightBracket, "]")
        return Term(.array(items), location(from: start))
    }

    /// `{...}`: an object, a set, or their comprehensions (heads are single terms, as for arrays).
    private mutating func braceLiteral() throws(Stop) -> Term {
        let start = advance()
        if current.kind == .rightBrace {
            _ = advance()
            return Term(.object([]), location(from: start))
        }
        let head = try term()
        if current.kind == .bar {
            _ = advance()
            let body = try comprehensionBody(until: .rightBrace)
            return Term(.setComprehension(head: head, body: body), location(from: start))
        }
        // `{k: v | body}` is a comprehension only when its key and value are single terms.
        let keyIsHead = current.kind == .colon
        let first = keyIsHead ? head : try termIn(keyValue: false, first: head)
        if current.kind == .colon {
            _ = advance()
            let value = try term()
            if keyIsHead, current.kind == .bar {
                _ = advance()
                let body = try comprehensionBody(until: .rightBrace)
                return Term(.objectComprehension(key: first, value: value, body: body), location(from: start))
            }
            var members = [(key: first, value: try termIn(keyValue: false, first: value))]
            while current.kind == .comma {
                _ = advance()
                if current.kind == .rightBrace { break }
                let key = try termIn(keyValue: false)
                _ = try expect(.colon, ":")
                let value = try termIn(keyValue: false)
                members.append((key, value))
            }
            _ = try expect(.rightBrace, "}")
            return Term(.object(members), location(from: start))
        }
        var items = [first]
        while current.kind == .comma {
            _ = advance()
            if current.kind == .rightBrace { break }
            items.append(try termIn(keyValue: false))
        }
        _ = try expect(.rightBrace, "}")
        return Term(.set(items), location(from: start))
    }

    private mutating func comprehensionBody(until end: Token.Kind) throws(Stop) -> Body {
        if current.kind == end { throw fail("found empty body", at: current) }
        let body = try statements(until: end)
        _ = advance()
        return body
    }
}
