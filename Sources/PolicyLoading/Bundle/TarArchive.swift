/// A small tar (POSIX ustar, with pax and GNU long names) reader and writer for bundles: regular files only.
///
/// Reading is bounded before the work: the entry count, each entry's size (from its header, before its data is
/// touched) and the name's length. Links, devices, FIFOs and names that climb out (`..`) are refused; a leading
/// `/` names the archive's root, as OPA writes bundle entries (`/data.json`), and nothing is ever written to disk
/// under an entry's name.
public enum TarArchive {
    public struct Entry: Sendable, Hashable {
        /// The normalized path: no leading `/`, no `.` or empty segments.
        public var path: String
        public var bytes: [UInt8]

        public init(path: String, bytes: [UInt8]) {
            self.path = path
            self.bytes = bytes
        }
    }

    public struct Limits: Sendable, Hashable {
        public var maxEntries: Int
        public var maxEntryBytes: Int
        public var maxPathBytes: Int

        public init(maxEntries: Int = 10_000, maxEntryBytes: Int = 64 << 20, maxPathBytes: Int = 1024) {
            self.maxEntries = maxEntries
            self.maxEntryBytes = maxEntryBytes
            self.maxPathBytes = maxPathBytes
        }
    }

    public struct Error: Swift.Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
        init(_ message: String) { self.message = message }
    }

    static let block = 512

    /// The regular files of an archive, in archive order; directories are skipped.
    public static func read(_ data: [UInt8], limits: Limits = Limits()) throws(Error) -> [Entry] {
        var entries: [Entry] = []
        var offset = 0
        var longName: String?
        var paxPath: String?
        while offset + block <= data.count {
            let header = data[offset..<offset + block]
            if header.allSatisfy({ $0 == 0 }) { break }
            guard checksumMatches(header) else { throw Error("tar header at byte \(offset) has a bad checksum") }
            let size = try number(header, 124, 12)
            let type = header[header.startIndex + 156]
            guard size >= 0, size <= limits.maxEntryBytes else {
                throw Error("tar entry at byte \(offset) is \(size) bytes; the limit is \(limits.maxEntryBytes)")
            }
            let start = offset + block
            guard start + size <= data.count else { throw Error("tar archive is truncated") }
            let body = Array(data[start..<start + size])
            offset = start + (size + block - 1) / block * block
            switch type {
            case UInt8(ascii: "x"):
                paxPath = try paxRecords(body)["path"]
                continue
            case UInt8(ascii: "g"):
                continue
            case UInt8(ascii: "L"):
                guard body.count <= limits.maxPathBytes + 1 else { throw Error("tar entry name is too long") }
                longName = String(decoding: body.prefix { $0 != 0 }, as: UTF8.self)
                continue
            default:
                break
            }
            var name = paxPath ?? longName ?? ustarName(header)
            paxPath = nil
            longName = nil
            switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                break
            case UInt8(ascii: "5"):
                continue
            case UInt8(ascii: "1"), UInt8(ascii: "2"):
                throw Error("tar entry `\(name)` is a link; bundles hold regular files only")
            default:
                throw Error("tar entry `\(name)` is not a regular file (type `\(Character(Unicode.Scalar(type)))`)")
            }
            guard name.utf8.count <= limits.maxPathBytes else { throw Error("tar entry name is too long") }
            name = try normalize(name)
            guard entries.count < limits.maxEntries else {
                throw Error("tar archive has more than \(limits.maxEntries) files")
            }
            entries.append(Entry(path: name, bytes: body))
        }
        return entries
    }

    /// A normalized entry path, or an error for one that could escape its root.
    static func normalize(_ name: String) throws(Error) -> String {
        guard !name.utf8.contains(0), !name.contains("\\") else { throw Error("tar entry name `\(name)` is not allowed") }
        var parts: [Substring] = []
        for part in name.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { throw Error("tar entry `\(name)` climbs out of the archive with `..`") }
            parts.append(part)
        }
        guard !parts.isEmpty else { throw Error("tar entry has an empty name") }
        return parts.joined(separator: "/")
    }

    static func ustarName(_ header: ArraySlice<UInt8>) -> String {
        let base = header.startIndex
        let name = cString(header[base..<base + 100])
        let magic = Array(header[base + 257..<base + 263])
        if magic == Array("ustar\0".utf8) {
            let prefix = cString(header[base + 345..<base + 500])
            if !prefix.isEmpty { return prefix + "/" + name }
        }
        return name
    }

    static func cString(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// An octal field, or a base-256 one (GNU, high bit set).
    static func number(_ header: ArraySlice<UInt8>, _ at: Int, _ length: Int) throws(Error) -> Int {
        let field = header[header.startIndex + at..<header.startIndex + at + length]
        if let first = field.first, first & 0x80 != 0 {
            var value = Int(first & 0x7f)
            for byte in field.dropFirst() {
                guard value < (Int.max >> 8) else { throw Error("tar size field overflows") }
                value = value << 8 | Int(byte)
            }
            return value
        }
        var value = 0
        var seen = false
        for byte in field {
            if byte == 0 || byte == 0x20 {
                if seen { break } else { continue }
            }
            guard (0x30...0x37).contains(byte), value < (Int.max >> 3) else {
                throw Error("tar header has a malformed number")
            }
            seen = true
            value = value << 3 | Int(byte - 0x30)
        }
        return value
    }

    static func checksumMatches(_ header: ArraySlice<UInt8>) -> Bool {
        guard let stored = try? number(header, 148, 8) else { return false }
        var unsigned = 0
        var signed = 0
        for (i, byte) in header.enumerated() {
            let b = (148..<156).contains(i) ? UInt8(0x20) : byte
            unsigned += Int(b)
            signed += Int(Int8(bitPattern: b))
        }
        return stored == unsigned || stored == signed
    }

    /// pax records: `LEN key=value\n` each.
    static func paxRecords(_ body: [UInt8]) throws(Error) -> [String: String] {
        var out: [String: String] = [:]
        var i = 0
        while i < body.count {
            guard let space = body[i...].firstIndex(of: 0x20), let length = Int(String(decoding: body[i..<space], as: UTF8.self)),
                  length > space - i, i + length <= body.count, body[i + length - 1] == 0x0a
            else { throw Error("tar pax header is malformed") }
            let record = body[(space + 1)..<(i + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                out[String(decoding: record[..<equals], as: UTF8.self)] = String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            i += length
        }
        return out
    }

    // MARK: - Writing

    /// An archive of `entries` as regular files (mode 0644, owner 0, time 0, so the same files give the same
    /// bytes); a name too long for ustar gets a pax `path` record, as Go's archive/tar writes it.
    public static func write(_ entries: [Entry]) -> [UInt8] {
        var out: [UInt8] = []
        for entry in entries {
            let name = Array(entry.path.utf8)
            if name.count > 100 {
                let pax = paxRecord("path", entry.path)
                out += header(name: Array("PaxHeaders.0/\(entry.path.split(separator: "/").last ?? "")".utf8.prefix(100)),
                              size: pax.count, type: UInt8(ascii: "x"))
                append(pax, to: &out)
                out += header(name: Array(name.prefix(100)), size: entry.bytes.count, type: UInt8(ascii: "0"))
            } else {
                out += header(name: name, size: entry.bytes.count, type: UInt8(ascii: "0"))
            }
            append(entry.bytes, to: &out)
        }
        out += [UInt8](repeating: 0, count: 2 * block)
        return out
    }

    static func append(_ bytes: [UInt8], to out: inout [UInt8]) {
        out += bytes
        let padding = (block - bytes.count % block) % block
        out += [UInt8](repeating: 0, count: padding)
    }

    static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let tail = " \(key)=\(value)\n".utf8.count
        var length = tail + 1
        while String(length).utf8.count + tail != length { length = String(length).utf8.count + tail }
        return Array("\(length) \(key)=\(value)\n".utf8)
    }

    static func header(name: [UInt8], size: Int, type: UInt8) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: block)
        func put(_ bytes: [UInt8], _ at: Int) { for (i, b) in bytes.enumerated() { h[at + i] = b } }
        func octal(_ value: Int, _ at: Int, _ width: Int) {
            let digits = String(value, radix: 8)
            put(Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8), at)
        }
        put(name, 0)
        octal(0o644, 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size, 124, 12)
        octal(0, 136, 12)
        h[156] = type
        put(Array("ustar\0".utf8), 257)
        put(Array("00".utf8), 263)
        put([UInt8](repeating: 0x20, count: 8), 148)
        let sum = h.reduce(0) { $0 + Int($1) }
        let digits = String(sum, radix: 8)
        put(Array((String(repeating: "0", count: max(0, 6 - digits.count)) + digits).utf8) + [0, 0x20], 148)
        return h
    }
}
