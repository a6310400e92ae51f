import Documents
import Foundation
import PolicyCore
import Rego

/// What `warden eval` and `warden test` load from disk: `.rego` modules, and base data from `.json` and
/// `.yaml` files (a data file found in a directory is placed at its directory's path below `data`, as OPA
/// loads bundles; a data file named directly is merged at the root).
struct RegoFiles {
    var modules: [RegoModuleSource] = []
    var data: Value = .object([Value: Value]())
    /// The bounds every file is read under (and the modules compiled under).
    var limits = InputLimits.default

    static let dataExtensions: Set<String> = ["json", "yaml", "yml"]

    /// Loads every path; the diagnostics say what could not be read.
    static func load(_ paths: [String], dataFiles: [String] = [], limits: InputLimits = .default) -> (RegoFiles, [Diagnostic]) {
        var files = RegoFiles()
        files.limits = limits
        var problems: [Diagnostic] = []
        for path in paths {
            if DocumentFiles.isDirectory(path) {
                let root = path.hasSuffix("/") ? String(path.dropLast()) : path
                for file in DocumentFiles.files(under: root, extensions: dataExtensions.union(["rego"])) {
                    let relative = String(file.dropFirst(root.count + 1))
                    let directories = relative.split(separator: "/").dropLast().map(String.init)
                    files.add(file, at: directories, &problems)
                }
            } else if DocumentFiles.exists(path) {
                files.add(path, at: [], &problems)
            } else {
                problems.append(DocumentFiles.unreadable(path))
            }
        }
        for path in dataFiles { files.addData(path, at: [], &problems) }
        return (files, problems)
    }

    private mutating func add(_ file: String, at directories: [String], _ problems: inout [Diagnostic]) {
        if file.hasSuffix(".rego") {
            switch DocumentFiles.read(file, limits: limits) {
            case .success(let text): modules.append(RegoModuleSource(path: file, text: text))
            case .failure(let problem): problems.append(problem)
            }
        } else {
            addData(file, at: directories, &problems)
        }
    }

    private mutating func addData(_ file: String, at path: [String], _ problems: inout [Diagnostic]) {
        guard let value = RegoFiles.readValue(file, &problems, limits: limits) else { return }
        guard case .object = value else {
            problems.append(
                Diagnostic(code: Diagnostic.Code.invalidValue, message: "data file `\(file)` must hold an object"))
            return
        }
        data = RegoFiles.merge(data, value, at: path[...])
    }

    /// A JSON or YAML file's value.
    static func readValue(_ file: String, _ problems: inout [Diagnostic], limits: InputLimits = .default) -> Value? {
        let text: String
        switch DocumentFiles.read(file, limits: limits) {
        case .success(let t): text = t
        case .failure(let problem):
            problems.append(problem)
            return nil
        }
        if file.hasSuffix(".yaml") || file.hasSuffix(".yml") {
            let parsed = YAMLDocuments.parse(text, file: file, limits: limits)
            if let error = parsed.diagnostics.first(where: \.isError) {
                problems.append(error)
                return nil
            }
            return parsed.documents.first?.value ?? .null
        }
        do {
            return try JSONReader.parse(text, maximumDepth: limits.maxNestingDepth)
        } catch {
            problems.append(
                Diagnostic(
                    code: Diagnostic.Code.jsonParse, message: error.message,
                    span: SourceSpan(file: file, line: error.line, column: error.column)))
            return nil
        }
    }

    /// `base` with `addition` merged in at `path` (objects merge member by member; other values replace).
    static func merge(_ base: Value, _ addition: Value, at path: ArraySlice<String>) -> Value {
        guard let key = path.first else {
            guard case .object(var left) = base, case .object(let right) = addition else { return addition }
            for (k, v) in right { left[k] = left[k].map { merge($0, v, at: []) } ?? v }
            return .object(left)
        }
        var object: [Value: Value] = [:]
        if case .object(let o) = base { object = o }
        object[.string(key)] = merge(object[.string(key)] ?? .object([Value: Value]()), addition, at: path.dropFirst())
        return .object(object)
    }
}
