import Foundation
import PolicyCore

/// Reading rule and case files from disk: the only file-system access the loaders need.
public enum DocumentFiles {
    /// The file's text, or an `io_error` diagnostic naming it; a file larger than `limits.maxFileBytes` is
    /// refused (`limit_exceeded`) without being read past the limit.
    public static func read(_ path: String, limits: InputLimits = .default) -> Result<String, Diagnostic> {
        guard let handle = FileHandle(forReadingAtPath: path) else { return .failure(unreadable(path)) }
        defer { try? handle.close() }
        let data: Data
        do {
            // One byte more than the limit tells a file at the limit from one over it (or still growing).
            data = try handle.read(upToCount: limits.maxFileBytes + 1) ?? Data()
        } catch {
            return .failure(unreadable(path, reason: "\(error.localizedDescription)".lowercased()))
        }
        if let refused = checkSize(data.count, file: path, limits: limits) { return .failure(refused) }
        guard let text = String(data: data, encoding: .utf8) else {
            return .failure(Diagnostic(code: Diagnostic.Code.io, message: "`\(path)` is not UTF-8 text", span: SourceSpan(file: path, line: 1, column: 1)))
        }
        return .success(text)
    }

    /// The one way every command says a file or directory cannot be read: `cannot read `PATH`: REASON`.
    public static func unreadable(_ path: String, reason: String? = nil) -> Diagnostic {
        Diagnostic(code: Diagnostic.Code.io, message: "cannot read `\(path)`: \(reason ?? whyUnreadable(path))")
    }

    /// Why `path` cannot be read, in the words of the C library (`no such file or directory`, `permission denied`).
    public static func whyUnreadable(_ path: String) -> String {
        let descriptor = open(path, O_RDONLY)
        if descriptor >= 0 {
            close(descriptor)
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
                ? "is a directory" : "unreadable"
        }
        return String(cString: strerror(errno)).lowercased()
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

/// What a look at a file sees without reading it: enough to tell that it changed, and whether it was put in
/// place whole (renamed, or its modification time set, after its last write).
public struct FileStamp: Sendable, Hashable {
    public var size: Int64
    /// Modification time (the last write), in nanoseconds since the epoch.
    public var modified: Int64
    /// Status change time (the last write, rename, or change of times or mode), in nanoseconds.
    public var changed: Int64
    public var inode: UInt64
    public var device: UInt64

    /// Whether something happened to the file after its last write: `rename(2)` onto the final name (the
    /// write-then-rename pattern), or its modification time being set (`rsync`, `tar`, `cp -p`). A file
    /// still being written in place has both times equal.
    public var settledByRename: Bool { changed > modified }

    /// The stamp of the file at `path` (following symbolic links), or nil when it cannot be looked at.
    public static func of(_ path: String) -> FileStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if canImport(Darwin)
        let modified = info.st_mtimespec, changed = info.st_ctimespec
        #else
        let modified = info.st_mtim, changed = info.st_ctim
        #endif
        return FileStamp(
            size: Int64(info.st_size),
            modified: Int64(modified.tv_sec) * 1_000_000_000 + Int64(modified.tv_nsec),
            changed: Int64(changed.tv_sec) * 1_000_000_000 + Int64(changed.tv_nsec),
            inode: UInt64(info.st_ino), device: UInt64(info.st_dev))
    }
}
