import PolicyCore
import Rego

/// Compiles modules given as text (named test-0.rego, test-1.rego, ...).
func compile(_ modules: String..., data: Value = .object([Value: Value]())) throws -> RegoPolicySet {
    try RegoPolicySet.compile(
        modules: modules.enumerated().map { RegoModuleSource(path: "test-\($0.offset).rego", text: $0.element) },
        data: data)
}

/// The compile errors of modules that must not compile.
func compileErrors(_ modules: String...) -> [Diagnostic] {
    do {
        _ = try RegoPolicySet.compile(
            modules: modules.enumerated().map { RegoModuleSource(path: "test-\($0.offset).rego", text: $0.element) })
        return []
    } catch {
        return error.diagnostics
    }
}

/// The value of a query, or undefined, or the error.
func value(
    _ policy: RegoPolicySet, _ query: String, input: Value? = nil,
    options: RegoEvaluationOptions = RegoEvaluationOptions()
) throws -> RegoOutcome {
    try policy.prepare(query: query).evaluateValue(input: input, options: options)
}

/// Reads JSON text, for expectations with exact numbers.
func json(_ text: String) -> Value {
    try! JSONReader.parse(text)
}
