import PolicyCore

/// A query prepared against a policy set: parsed, resolved and ordered once, then evaluated any number of
/// times, concurrently, with different inputs.
public struct RegoQuery: Sendable {
    public let policy: RegoPolicySet
    public let text: String
    let body: [Literal]
    let frameSize: Int
    /// Each expression as written, and the slot its value is captured in.
    let expressions: [(text: String, location: Location, capture: Int?)]
    /// The query's variables reported in results, by name.
    let bindings: [(name: String, slot: Int)]
    /// For a query that is a single reference without variables: the operand, evaluated directly.
    let reference: Operand?

    init(policy: RegoPolicySet, text: String) throws(RegoCompileError) {
        self.policy = policy
        self.text = text
        let (parsed, problems) = Parser.parseQuery(text, maximumDepth: policy.limits.maxNestingDepth)
        guard let parsed, problems.isEmpty else { throw RegoCompileError(problems) }
        let lowering = Lowering(tree: policy.tree, context: nil)
        let scope = lowering.newScope(parent: nil)
        let (literals, captures) = lowering.lowerQuery(parsed, scope: scope)
        let (ordered, _) = lowering.order(literals, in: scope)
        var diagnostics = lowering.diagnostics
        if diagnostics.isEmpty {
            diagnostics.append(contentsOf: TypeChecker(tree: policy.tree).checkQuery(ordered, lowering: lowering))
        }
        guard diagnostics.isEmpty else { throw RegoCompileError(diagnostics) }
        body = Planner.plan(query: ordered)
        frameSize = lowering.slots.count
        let bytes = Array(text.utf8)
        expressions = zip(parsed, captures).map { expr, capture in
            let range = expr.location.start..<min(expr.location.end, bytes.count)
            return (String(decoding: bytes[range], as: UTF8.self), expr.location, capture)
        }
        var named: [(String, Int)] = []
        for (slot, info) in lowering.slots.enumerated() where info.scope == scope.id && info.kind == .user {
            if !named.contains(where: { $0.0 == info.name }) { named.append((info.name, slot)) }
        }
        bindings = named.sorted { $0.0 < $1.0 }
        // `data.a.b`, `input.x`: one literal capturing a reference with no variables.
        if ordered.count == 1, parsed.count == 1, parsed[0].withModifiers.isEmpty, !parsed[0].negated,
            case .unify(.local(let slot), let op) = body[0].step, slot == captures[0], RegoQuery.isPlainReference(op)
        {
            reference = op
        } else {
            reference = nil
        }
    }

    private static func isPlainReference(_ op: Operand) -> Bool {
        switch op {
        case .input, .node, .data, .constant: return true
        case .ref(let r):
            return isPlainReference(r.base) && r.constantPath != nil
        default: return false
        }
    }

    /// Evaluates the query: every solution with its expressions' values and variable bindings, as `opa eval`
    /// reports them, or the error that ended evaluation.
    public func evaluate(input: Value?, options: RegoEvaluationOptions = RegoEvaluationOptions()) -> RegoEvaluation {
        let evaluator = Evaluator(policy: policy, input: input, options: options)
        var results: [RegoResult] = []
        do {
            if let reference {
                try evaluator.eval(reference) { (v) throws(EvalSignal) in
                    results.append(RegoResult(expressions: [self.expressionValue(0, v)], bindings: [:]))
                }
            } else {
                _ = evaluator.pushFrame(frameSize)
                try evaluator.evalBody(body, 0) { () throws(EvalSignal) in
                    var values: [RegoExpressionValue] = []
                    values.reserveCapacity(self.expressions.count)
                    for (i, expression) in self.expressions.enumerated() {
                        let v = expression.capture.flatMap { evaluator.local($0) } ?? .bool(true)
                        values.append(self.expressionValue(i, v))
                    }
                    var bound: [String: Value] = [:]
                    for (name, slot) in self.bindings {
                        if let v = evaluator.local(slot) { bound[name] = v }
                    }
                    results.append(RegoResult(expressions: values, bindings: bound))
                }
            }
        } catch {
            switch error {
            case .failure(let diagnostic): return .error(diagnostic)
            case .stop: break
            }
        }
        if options.strictBuiltinErrors, let builtinError = evaluator.builtinError { return .error(builtinError) }
        return .results(results)
    }

    /// The value of a single-expression query (a reference such as `data.envoy.authz.allow`): undefined, its
    /// value in the first solution, or the error.
    public func evaluateValue(input: Value?, options: RegoEvaluationOptions = RegoEvaluationOptions()) -> RegoOutcome {
        if let reference {
            let evaluator = Evaluator(policy: policy, input: input, options: options)
            var result: Value?
            do {
                try evaluator.eval(reference) { (v) throws(EvalSignal) in
                    result = v
                    throw EvalSignal.stop
                }
            } catch {
                if case .failure(let diagnostic) = error { return .error(diagnostic) }
            }
            if options.strictBuiltinErrors, let builtinError = evaluator.builtinError { return .error(builtinError) }
            return result.map { .value($0) } ?? .undefined
        }
        switch evaluate(input: input, options: options) {
        case .error(let diagnostic): return .error(diagnostic)
        case .results(let results):
            guard let first = results.first?.expressions.first else { return .undefined }
            return .value(first.value)
        }
    }

    private func expressionValue(_ i: Int, _ value: Value) -> RegoExpressionValue {
        let e = expressions[i]
        return RegoExpressionValue(value: value, text: e.text, location: e.location)
    }
}

/// The outcome of evaluating a query: its solutions (none when it is undefined), or an error.
public enum RegoEvaluation: Sendable {
    case results([RegoResult])
    case error(Diagnostic)
}

/// One solution of a query.
public struct RegoResult: Sendable {
    public var expressions: [RegoExpressionValue]
    /// The query's variables and their values.
    public var bindings: [String: Value]
}

public struct RegoExpressionValue: Sendable {
    public var value: Value
    /// The expression as written in the query.
    public var text: String
    public var location: Location
}

/// The value of a document or single-expression query.
public enum RegoOutcome: Sendable, Equatable {
    case undefined
    case value(Value)
    case error(Diagnostic)
}
