import Foundation
import PolicyCore

/// Reading rule and case files from disk: the only file-system access the loaders need.
public enum DocumentFiles {
    /// The file's text, or an `io_error` diagnostic naming it; a file larger than `limits.maxFileBytes` is
    /// refused (`limit_exceeded`) without being read past the limit.
    public static func read(_ path: String, limits: InputLimits = .default) -> Result<String, Diagnostic> {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return .failure(Diagnostic(code: Diagnostic.Code.io, message: "cannot read `\(path)`", span: SourceSpan(file: path, line: 1, column: 1)))
        }
        defer { try? handle.close() }
        let data: Data
        do {
            // One byte more than the limit tells a file at the limit from one over it (or still growing).
            data = try handle.read(upToCount: limits.maxFileBytes + 1) ?? Data()
        } catch {
            return .failure(Diagnostic(code: Diagnostic.Code.io, message: "cannot read `\(path)`", span: SourceSpan(file: path, line: 1, column: 1)))
        }
        if let refused = checkSize(data.count, file: path, limits: limits) { return .failure(refused) }
        guard let text = String(data: data, encoding: .utf8) else {
            return .failure(Diagnostic(code: Diagnostic.Code.io, message: "`\(path)` is not UTF-8 text", span: SourceSpan(file: path, line: 1, column: 1)))
        }
        return .success(text)
    }

    /// A `limit_exceeded` diagnostic when a file's text is larger than `limits.maxFileBytes`.
    public static func checkSize(_ bytes: Int, file: String, limits: InputLimits) -> Diagnostic? {
        guard bytes > limits.maxFileBytes else { return nil }
        return Diagnostic(
            code: Diagnostic.Code.limitExceeded,
            message: "file too large: more than \(limits.maxFileBytes) bytes (limits.max_file_bytes)",
            span: SourceSpan(file: file, line: 1, column: 1))
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
