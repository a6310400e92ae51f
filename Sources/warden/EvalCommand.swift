import ArgumentParser
import Documents
import PolicyCore
import Rego

/// `warden eval`: evaluates a Rego query against policy files, data and an input document, like `opa eval`.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a Rego query (like `opa eval`).",
        discussion: """
            Loads `.rego` modules and data files (`.json`, `.yaml`) from every --data-path, evaluates QUERY with \
            the input document and prints the result set in OPA's JSON shape: {"result": [{"expressions": \
            [...], "bindings": {...}}]}, or {} when the query is undefined. Errors are printed as \
            {"errors": [...]} and the exit status is 1.
            """
    )

    @Option(name: [.customShort("d"), .customLong("data-path")], help: "A policy or data file, or a directory of them.")
    var paths: [String] = []

    @Option(name: .customLong("data"), help: "A JSON or YAML file merged into `data` at the root.")
    var dataFiles: [String] = []

    @Option(name: [.customShort("i"), .customLong("input")], help: "A JSON or YAML file holding the input document.")
    var inputFile: String?

    @Option(name: [.customShort("f"), .customLong("format")], help: "Output format: json or pretty.")
    var format: EvalFormat = .json

    @OptionGroup var limits: LimitOptions

    @Flag(name: .customLong("strict-builtin-errors"), help: "Treat the first builtin error as the query's error.")
    var strictBuiltinErrors = false

    @Argument(help: "The query, such as `data.envoy.authz.allow` or `x := data.a.b[k]`.")
    var query: String

    func run() throws {
        let (files, problems) = RegoFiles.load(paths, dataFiles: dataFiles, limits: limits.applied())
        var input: Value?
        var inputProblems: [Diagnostic] = []
        if let inputFile { input = RegoFiles.readValue(inputFile, &inputProblems, limits: files.limits) }
        if let problem = (problems + inputProblems).first {
            writeError(problem.description)
            throw ExitCode(Warden.Status.unusable)
        }
        let options = RegoEvaluationOptions(
            strictBuiltinErrors: strictBuiltinErrors,
            printHandler: { event in writeError(event.message) })
        let evaluation: RegoEvaluation
        do {
            let policy = try RegoPolicySet.compile(modules: files.modules, data: files.data, limits: files.limits)
            let prepared = try policy.prepare(query: query)
            evaluation = prepared.evaluate(input: input, options: options)
        } catch {
            report(errors: error.diagnostics)
            throw ExitCode(Warden.Status.failed)
        }
        switch evaluation {
        case .error(let diagnostic):
            report(errors: [diagnostic])
            throw ExitCode(Warden.Status.failed)
        case .results(let results):
            switch format {
            case .json: writeOutput(JSONWriter.string(EvalCommand.resultJSON(results), pretty: true))
            case .pretty: writeOutput(EvalCommand.pretty(results))
            }
        }
    }

    private func report(errors: [Diagnostic]) {
        switch format {
        case .json:
            writeOutput(JSONWriter.string(EvalCommand.errorJSON(errors), pretty: true))
        case .pretty:
            var renderer = DiagnosticRenderer()
            for diagnostic in errors {
                writeError(RegoError.render(diagnostic))
                if let span = diagnostic.span, !span.file.isEmpty {
                    let rendered = renderer.render(diagnostic)
                    if let caret = rendered.split(separator: "\n", maxSplits: 1).dropFirst().first { writeError(String(caret)) }
                }
            }
        }
    }

    /// OPA's result set: `{"result": [{"expressions": [...], "bindings": {...}}]}`, `{}` when undefined.
    static func resultJSON(_ results: [RegoResult]) -> Value {
        guard !results.isEmpty else { return .object([Value: Value]()) }
        return [
            "result": .array(
                results.map { result in
                    var entry: [String: Value] = [
                        "expressions": .array(
                            result.expressions.map { e in
                                [
                                    "value": e.value, "text": .string(e.text),
                                    "location": ["row": .int(e.location.line), "col": .int(e.location.column)],
                                ]
                            })
                    ]
                    if !result.bindings.isEmpty {
                        var bindings: [Value: Value] = [:]
                        for (name, value) in result.bindings { bindings[.string(name)] = value }
                        entry["bindings"] = .object(bindings)
                    }
                    return .object(entry)
                })
        ]
    }

    /// OPA's error shape: `{"errors": [{"code": ..., "message": ..., "location": {"file", "row", "col"}}]}`.
    static func errorJSON(_ errors: [Diagnostic]) -> Value {
        [
            "errors": .array(
                errors.map { d in
                    var o: [String: Value] = ["code": .string(d.code), "message": .string(d.message)]
                    if let span = d.span {
                        o["location"] = ["file": .string(span.file), "row": .int(span.line), "col": .int(span.column)]
                    }
                    return .object(o)
                })
        ]
    }

    /// Human-readable: the value of a single expression, or a table of bindings and expression values.
    static func pretty(_ results: [RegoResult]) -> String {
        guard let first = results.first else { return "undefined" }
        if results.count == 1, first.bindings.isEmpty, first.expressions.count == 1 {
            return JSONWriter.string(first.expressions[0].value, pretty: true)
        }
        let names = first.bindings.keys.sorted()
        let headers = names.isEmpty ? first.expressions.map(\.text) : names
        var rows: [[String]] = []
        for result in results {
            if names.isEmpty {
                rows.append(result.expressions.map { JSONWriter.string($0.value) })
            } else {
                rows.append(names.map { result.bindings[$0].map { JSONWriter.string($0) } ?? "" })
            }
        }
        var widths = headers.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { i, c in c + String(repeating: " ", count: widths[i] - c.count) }
                .joined(separator: " | ") + " |"
        }
        let rule = "+" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "+") + "+"
        return ([rule, line(headers), rule] + rows.map(line) + [rule]).joined(separator: "\n")
    }
}

enum EvalFormat: String, ExpressibleByArgument, CaseIterable {
    case json, pretty
}
