import Foundation
import PolicyCore

/// Reading rule and case files from disk: the only file-system access the loaders need.
public enum DocumentFiles {
    /// The file's text, or an `io_error` diagnostic naming it.
    public static func read(_ path: String) -> Result<String, Diagnostic> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(Diagnostic(code: Diagnostic.Code.io, message: "cannot read `\(path)`", span: SourceSpan(file: path, line: 1, column: 1)))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return .failure(Diagnostic(code: Diagnostic.Code.io, message: "`\(path)` is not UTF-8 text", span: SourceSpan(file: path, line: 1, column: 1)))
        }
        return .success(text)
    }

    public static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    public static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// Regular files below `directory` (recursively; hidden entries skipped) whose extension is one of
    /// `extensions`, sorted by path so every run reads them in the same order.
    public static func files(under directory: String, extensions: Set<String>) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        var out: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(".") {
                enumerator.skipDescendants()
                continue
            }
            let ext = (name as NSString).pathExtension
            let path = directory.hasSuffix("/") ? directory + relative : directory + "/" + relative
            if extensions.contains(ext), !isDirectory(path) { out.append(path) }
        }
        return out.sorted()
    }

    /// The files named by `paths`: files as given, directories expanded with `files(under:extensions:)`.
    public static func expand(_ paths: [String], extensions: Set<String>) -> [String] {
        paths.flatMap { isDirectory($0) ? files(under: $0, extensions: extensions) : [$0] }
    }
}
