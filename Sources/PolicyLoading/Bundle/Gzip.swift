import CZlib

/// gzip (RFC 1952) over the system zlib: the compression of OPA bundles and of decision-log uploads.
public enum Gzip {
    public struct Error: Swift.Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Decompresses `data`, refusing (before producing more) any output beyond `limit` bytes: a gzip bomb stops at
    /// the limit, not at the memory's end. Concatenated members are read as one stream, as `gunzip` reads them.
    public static func decompress(_ data: [UInt8], limit: Int) throws(Error) -> [UInt8] {
        guard !data.isEmpty else { throw Error(message: "gzip data is empty") }
        var stream = z_stream()
        guard warden_inflate_init(&stream, 15 + 16) == Z_OK else { throw Error(message: "cannot start gzip decoder") }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        output.reserveCapacity(min(limit, max(data.count * 4, 4096)))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var consumed = 0
        var result = Z_OK
        repeat {
            let status: Int32 = data.withUnsafeBufferPointer { input in
                chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.advanced(by: consumed))
                    stream.avail_in = UInt32(input.count - consumed)
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    consumed = input.count - Int(stream.avail_in)
                    return status
                }
            }
            let produced = chunk.count - Int(stream.avail_out)
            if output.count + produced > limit {
                throw Error(message: "decompressed size exceeds the limit of \(limit) bytes")
            }
            output.append(contentsOf: chunk[..<produced])
            result = status
            if result == Z_STREAM_END, consumed < data.count {
                // Another member follows (skip trailing zero padding, as gzip does).
                if data[consumed...].allSatisfy({ $0 == 0 }) { break }
                guard inflateReset(&stream) == Z_OK else { throw Error(message: "cannot restart gzip decoder") }
                result = Z_OK
                continue
            }
            if result == Z_BUF_ERROR && stream.avail_in == 0 { throw Error(message: "gzip data is truncated") }
            guard result == Z_OK || result == Z_STREAM_END else {
                let reason = stream.msg.map { String(cString: $0) } ?? "code \(result)"
                throw Error(message: "gzip data is corrupt: \(reason)")
            }
        } while result != Z_STREAM_END
        return output
    }

    /// Compresses `data` into one gzip member.
    public static func compress(_ data: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        precondition(warden_deflate_init(&stream, level, 15 + 16) == Z_OK, "zlib deflateInit2 failed")
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(data.count))) + 32)
        let written: Int = data.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                stream.avail_in = UInt32(input.count)
                stream.next_out = out.baseAddress
                stream.avail_out = UInt32(out.count)
                let status = deflate(&stream, Z_FINISH)
                precondition(status == Z_STREAM_END, "zlib deflate did not finish")
                return out.count - Int(stream.avail_out)
            }
        }
        output.removeSubrange(written...)
        return output
    }
}
