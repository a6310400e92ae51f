#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Identity

/// Files replaced whole: the new contents go to a temporary file beside the target (created with the final
/// mode, so a key is never readable by others even for a moment), which is flushed to disk and renamed over the
/// target; then the directory is flushed so the rename survives a crash. A reader sees the old file or the new
/// one, never half of either.
public enum AtomicFile {
    public static func write(_ contents: String, to path: String, mode: mode_t) throws(CAError) {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty
            ? "." : (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temporary = directory + "/.\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw failure("cannot create `\(temporary)`") }
        var written = false
        defer { if !written { unlink(temporary) } }
        // The umask may have narrowed the mode; a key file must be exactly `mode`, no more and no less.
        guard fchmod(fd, mode) == 0 else {
            close(fd)
            throw failure("cannot set the mode of `\(temporary)`")
        }
        let bytes = Array(contents.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { systemWrite(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                close(fd)
                throw failure("cannot write `\(temporary)`")
            }
            offset += count
        }
        guard fsync(fd) == 0 else {
            close(fd)
            throw failure("cannot flush `\(temporary)`")
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw failure("cannot rename `\(temporary)` to `\(path)`") }
        written = true
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// Reads a whole file of at most `limit` bytes.
    public static func read(_ path: String, limit: Int = 1 << 20) throws(CAError) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw failure("cannot read `\(path)`") }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: limit + 1) ?? Data()
        } catch {
            throw failure("cannot read `\(path)`")
        }
        guard data.count <= limit else { throw CAError(.fileError, "`\(path)` is larger than \(limit) bytes") }
        return String(decoding: data, as: UTF8.self)
    }

    public static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// Creates `path` and its parents (new directories get mode 0700).
    public static func makeDirectory(_ path: String) throws(CAError) {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CAError(.fileError, "cannot create the directory `\(path)`: \(error.localizedDescription)")
        }
    }

    static func failure(_ what: String) -> CAError {
        CAError(.fileError, "\(what): \(String(cString: strerror(errno)))")
    }
}

/// POSIX `write`, under a name `AtomicFile.write` does not shadow.
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
