import Crypto
import Documents
import Foundation
import PolicyCore

/// The last good policy set of a list of policy paths, kept on disk so that a restart serves it when the paths do
/// not load (a broken file, left behind by a crash or written while the server was down).
///
/// The set is an OPA bundle (`.tar.gz`, as `warden build` writes one) of exactly the text the loader compiled,
/// each file at its path relative to the directory it was found in. Its `.manifest` revision is the SHA-256 of
/// that content (`sha256:` and 16 hex digits), and its metadata records when it was persisted and the absolute
/// paths it was loaded from: a persisted set is used only by a server given the same paths. The file is written
/// whole (a temporary file renamed over the old one), so a crash during the write leaves the previous set.
public struct PersistedPolicies: Sendable {
    /// `<persistence directory>/policies/policies.tar.gz`.
    public let file: String
    /// The policy paths, absolute and standardized, as recorded in and compared with the bundle's metadata.
    public let paths: [String]

    public static let metadataKey = "warden_policies"

    public init(directory: String, paths: [String]) {
        file = ((directory as NSString).appendingPathComponent("policies") as NSString).appendingPathComponent("policies.tar.gz")
        self.paths = paths.map(Self.absolute)
    }

    /// A persisted set as read back.
    public struct Restored: Sendable {
        public var bundle: OPABundle
        /// The content digest recorded as the bundle's revision.
        public var revision: String
        public var persistedAt: Date?
    }

    /// Writes the set the loader compiled (`contents`: every file it read, with its text) and returns its revision.
    @discardableResult
    public func write(_ contents: [(file: String, text: String)], originals: [String], at time: Date = Date()) throws(Diagnostic) -> String {
        let entries = try OPABundle.entries(contents.map { ($0.file, Array($0.text.utf8)) }, under: originals)
        var hash = SHA256()
        for entry in entries {
            hash.update(data: Array(entry.path.utf8) + [0] + Array(String(entry.bytes.count).utf8) + [0])
            hash.update(data: entry.bytes)
        }
        let revision = "sha256:" + hash.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
        let metadata: Value = .object([
            .string(Self.metadataKey): .object([
                "persisted_at": .string(Self.timestamp(time)),
                "paths": .array(paths.map(Value.string)),
            ]),
        ])
        let manifest = BundleManifest(revision: revision, regoVersion: 1, metadata: metadata)
        let bytes = OPABundle(manifest: manifest, files: entries, manifestBytes: manifest.encoded()).archive()
        let directory = (file as NSString).deletingLastPathComponent
        let temporary = file + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
                throw Diagnostic(code: Diagnostic.Code.io, message: "cannot write `\(temporary)`")
            }
            guard rename(temporary, file) == 0 else {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(atPath: temporary)
                throw Diagnostic(code: Diagnostic.Code.io, message: "cannot rename `\(temporary)` to `\(file)`: \(reason)")
            }
        } catch let error as Diagnostic {
            throw error
        } catch {
            throw Diagnostic(code: Diagnostic.Code.io, message: "cannot write `\(file)`: \(error.localizedDescription)")
        }
        return revision
    }

    /// Reads the persisted set back; nil when there is none. A set persisted for other paths is refused.
    public func read(limits: BundleLimits = BundleLimits()) throws(Diagnostic) -> Restored? {
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        let bundle = try OPABundle.read(Array(data), limits: limits)
        let recorded = bundle.manifest.metadata?.objectValue?[.string(Self.metadataKey)]?.objectValue
        let recordedPaths = recorded?["paths"]?.arrayValue?.compactMap(\.stringValue)
        guard recordedPaths == paths else {
            throw Diagnostic(
                code: OPABundle.Code.format,
                message: "persisted policies in `\(file)` were loaded from \(recordedPaths.map { "\($0)" } ?? "unknown paths"), not \(paths)",
                span: SourceSpan(file: file, line: 1, column: 1))
        }
        let at = recorded?["persisted_at"]?.stringValue.flatMap { ISO8601DateFormatter().date(from: $0) }
        return Restored(bundle: bundle, revision: bundle.manifest.revision, persistedAt: at)
    }

    static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        return (full as NSString).standardizingPath
    }

    static func timestamp(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}

extension OPABundle {
    /// Bundle entries for files read from `paths`: a file under a directory at its path relative to that
    /// directory, a file named directly by its name. Two files that would share a name are refused.
    public static func entries(_ files: [(file: String, bytes: [UInt8])], under paths: [String]) throws(Diagnostic) -> [TarArchive.Entry] {
        var origin: [String: String] = [:]
        var out: [TarArchive.Entry] = []
        for (file, bytes) in files {
            var name = (file as NSString).lastPathComponent
            for path in paths where DocumentFiles.isDirectory(path) {
                let root = path.hasSuffix("/") ? path : path + "/"
                if file.hasPrefix(root) {
                    name = String(file.dropFirst(root.count))
                    break
                }
            }
            if let earlier = origin[name] {
                throw Diagnostic(
                    code: Diagnostic.Code.invalidValue, message: "`\(file)` and `\(earlier)` would both be `/\(name)` in the bundle")
            }
            origin[name] = file
            out.append(TarArchive.Entry(path: name, bytes: bytes))
        }
        return out.sorted { $0.path < $1.path }
    }
}
