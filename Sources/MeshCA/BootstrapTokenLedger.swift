#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Identity
import Synchronization

/// Remembers which bootstrap tokens were used, in a file in the CA directory, so a token works once even across
/// restarts of the CA: one line per used token, `<id> <expiry in seconds since the epoch>`. The file is locked
/// (`flock`) while it is read and appended to, so two CA processes on one directory agree too. Entries of
/// expired tokens are dropped when the ledger opens: an expired token is refused anyway.
public final class BootstrapTokenLedger: Sendable {
    public let path: String
    /// The file is never read past this size; a ledger this large means something is wrong.
    public static let maximumSize = 8 << 20
    private let lock = Mutex(())

    public init(path: String, now: Date = Date()) throws(CAError) {
        self.path = path
        try compact(now: now)
    }

    /// Records `grant` as used. Returns false, recording nothing, when it was used before.
    public func consume(_ grant: BootstrapGrant) throws(CAError) -> Bool {
        try lock.withLock { _ throws(CAError) -> Bool in
            try withLockedFile { fd throws(CAError) -> Bool in
                let entries = try Self.entries(readFrom: fd)
                if entries.contains(where: { $0.id == grant.id }) { return false }
                let line = "\(grant.id) \(Int(grant.expiresAt.timeIntervalSince1970))\n"
                guard lseek(fd, 0, SEEK_END) >= 0, Self.writeAll(fd, Array(line.utf8)), fsync(fd) == 0 else {
                    throw AtomicFile.failure("cannot record the token in `\(path)`")
                }
                return true
            }
        }
    }

    /// Drops the entries of tokens that expired before `now`.
    private func compact(now: Date) throws(CAError) {
        try lock.withLock { _ throws(CAError) in
            try withLockedFile { fd throws(CAError) in
                let entries = try Self.entries(readFrom: fd)
                let live = entries.filter { $0.expiresAt >= Int(now.timeIntervalSince1970) }
                guard live.count != entries.count else { return }
                let text = live.map { "\($0.id) \($0.expiresAt)\n" }.joined()
                guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0, Self.writeAll(fd, Array(text.utf8)),
                    fsync(fd) == 0
                else {
                    throw AtomicFile.failure("cannot rewrite `\(path)`")
                }
            }
        }
    }

    private func withLockedFile<T>(_ body: (Int32) throws(CAError) -> T) throws(CAError) -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AtomicFile.failure("cannot open `\(path)`") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw AtomicFile.failure("cannot lock `\(path)`") }
        defer { flock(fd, LOCK_UN) }
        return try body(fd)
    }

    private static func entries(readFrom fd: Int32) throws(CAError) -> [(id: String, expiresAt: Int)] {
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw AtomicFile.failure("cannot read the token ledger") }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw AtomicFile.failure("cannot read the token ledger")
            }
            if count == 0 { break }
            bytes += buffer[..<count]
            guard bytes.count <= maximumSize else {
                throw CAError(.fileError, "the token ledger is larger than \(maximumSize) bytes")
            }
        }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 2, let expiry = Int(fields[1]) else { return nil }
            return (String(fields[0]), expiry)
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += count
        }
        return true
    }
}
