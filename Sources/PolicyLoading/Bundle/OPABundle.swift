import Documents
import Foundation
import PolicyCore

/// An OPA bundle: a gzip'd tar of `.rego` modules, `data.json`/`data.yaml` files (placed below `data` at their
/// directory's path), a `.manifest`, an optional `.signatures.json`, and Warden's AuthorizationPolicy YAML and
/// JSON documents at their paths (OPA skips those; Warden loads them as it loads a policies directory).
public struct OPABundle: Sendable {
    public var manifest: BundleManifest
    /// Every file but `.manifest` and `.signatures.json`, in archive order, paths without a leading `/`.
    public var files: [TarArchive.Entry]
    /// The `.manifest` as it was in the archive (it is signed as written).
    public var manifestBytes: [UInt8]?
    /// The JWTs of `.signatures.json` (OPA accepts exactly one).
    public var signatures: [String]?

    public init(manifest: BundleManifest, files: [TarArchive.Entry], manifestBytes: [UInt8]? = nil, signatures: [String]? = nil) {
        self.manifest = manifest
        self.files = files
        self.manifestBytes = manifestBytes
        self.signatures = signatures
    }

    public static let manifestFile = ".manifest"
    public static let signaturesFile = ".signatures.json"

    /// Every code a bundle problem carries.
    public enum Code {
        public static let format = "bundle_error"
        public static let tooLarge = "bundle_too_large"
        public static let signature = "bundle_signature_error"
        public static let roots = "bundle_roots_error"
    }

    static func error(_ code: String, _ message: String, file: String? = nil) -> Diagnostic {
        Diagnostic(code: code, message: message, span: file.map { SourceSpan(file: $0, line: 1, column: 1) })
    }

    static func error(_ message: String, file: String? = nil) -> Diagnostic { error(Code.format, message, file: file) }

    /// Reads a `.tar.gz` bundle, enforcing every limit before the work it would cause: the compressed size first,
    /// then the decompressed size while inflating, then the file count and each file's size from its tar header.
    public static func read(_ compressed: [UInt8], limits: BundleLimits = BundleLimits()) throws(Diagnostic) -> OPABundle {
        guard compressed.count <= limits.maxCompressedBytes else {
            throw error(Code.tooLarge, "bundle is \(compressed.count) bytes; the limit is \(limits.maxCompressedBytes)")
        }
        let archive: [UInt8]
        do {
            archive = try Gzip.decompress(compressed, limit: limits.maxUncompressedBytes)
        } catch {
            let code = error.message.contains("limit") ? Code.tooLarge : Code.format
            throw Self.error(code, "bundle: \(error.message)")
        }
        let entries: [TarArchive.Entry]
        do {
            entries = try TarArchive.read(archive, limits: limits.tar)
        } catch {
            let code = error.message.contains("limit") || error.message.contains("more than") ? Code.tooLarge : Code.format
            throw Self.error(code, "bundle: \(error.message)")
        }
        var bundle = OPABundle(manifest: BundleManifest(), files: [])
        var seen = Set<String>()
        for entry in entries {
            guard seen.insert(entry.path).inserted else { throw error("bundle holds `\(entry.path)` twice", file: entry.path) }
            switch entry.path {
            case manifestFile:
                bundle.manifestBytes = entry.bytes
                bundle.manifest = try BundleManifest.decode(entry.bytes)
            case signaturesFile:
                bundle.signatures = try decodeSignatures(entry.bytes)
            default:
                bundle.files.append(entry)
            }
        }
        return bundle
    }

    static func decodeSignatures(_ bytes: [UInt8]) throws(Diagnostic) -> [String] {
        guard case .object(let top)? = try? JSONReader.parse(bytes) else {
            throw error(Code.signature, "`.signatures.json` is not a JSON object", file: signaturesFile)
        }
        guard let list = top[.string("signatures")] else { return [] }
        guard case .array(let items) = list else {
            throw error(Code.signature, "`.signatures.json`: `signatures` must be a list of JWTs", file: signaturesFile)
        }
        return try items.map { item throws(Diagnostic) in
            guard let token = item.stringValue else {
                throw error(Code.signature, "`.signatures.json`: `signatures` must be a list of JWTs", file: signaturesFile)
            }
            return token
        }
    }

    /// The bundle as a `.tar.gz`, in the order OPA writes one: `/data.json`, the other files, `/.signatures.json`,
    /// `/.manifest`.
    public func archive() -> [UInt8] {
        var entries: [TarArchive.Entry] = []
        let data = files.filter { $0.path == "data.json" }
        entries += data
        entries += files.filter { $0.path != "data.json" }
        if let signatures {
            let body = JSONWriter.string(["signatures": .array(signatures.map(Value.string))], pretty: true)
            entries.append(TarArchive.Entry(path: Self.signaturesFile, bytes: Array(body.utf8)))
        }
        if let manifestBytes { entries.append(TarArchive.Entry(path: Self.manifestFile, bytes: manifestBytes)) }
        let named = entries.map { TarArchive.Entry(path: "/" + $0.path, bytes: $0.bytes) }
        return Gzip.compress(TarArchive.write(named))
    }

    /// The bundle's files as a policy loader reads them: Rego modules, AuthorizationPolicy documents, and the data
    /// document assembled from the data files (each at its directory's path, as OPA places them).
    public func contents() throws(Diagnostic) -> BundleContents {
        var contents = BundleContents()
        for file in files {
            let name = "/" + file.path
            if let path = BundleData.dataPath(file.path) {
                let value = try BundleData.value(file.bytes, path: file.path)
                if path.isEmpty, value.objectValue == nil {
                    throw OPABundle.error("bundle data file `\(name)` must hold an object at the root", file: name)
                }
                contents.data = try BundleData.merge(contents.data, value, at: path[...], file: name)
                contents.dataFiles.append(name)
                continue
            }
            let ext = (file.path as NSString).pathExtension
            guard PolicyLoader.ruleExtensions.contains(ext) else { continue }
            guard let text = String(validating: file.bytes, as: UTF8.self) else {
                throw OPABundle.error("`\(name)` is not UTF-8 text", file: name)
            }
            contents.sources.append((name, text))
        }
        return contents
    }
}

/// What a bundle holds for the policy loader.
public struct BundleContents: Sendable {
    /// Rule files by bundle path (`/team/authz.rego`), text.
    public var sources: [(file: String, text: String)] = []
    public var data: Value = .object([Value: Value]())
    public var dataFiles: [String] = []
}

/// Bounds on a bundle, each enforced before the work it would cause.
public struct BundleLimits: Sendable, Hashable {
    public var maxCompressedBytes: Int
    public var maxUncompressedBytes: Int
    public var tar: TarArchive.Limits

    public init(
        maxCompressedBytes: Int = 64 << 20, maxUncompressedBytes: Int = 256 << 20,
        tar: TarArchive.Limits = TarArchive.Limits()
    ) {
        self.maxCompressedBytes = maxCompressedBytes
        self.maxUncompressedBytes = maxUncompressedBytes
        self.tar = tar
    }
}

/// `.manifest`: the revision, the roots the bundle owns below `data`, the Rego version and free metadata.
public struct BundleManifest: Sendable, Hashable {
    public var revision: String
    /// nil means OPA's default, `[""]`: the bundle owns all of `data`.
    public var roots: [String]?
    public var regoVersion: Int?
    public var metadata: Value?

    public init(revision: String = "", roots: [String]? = nil, regoVersion: Int? = nil, metadata: Value? = nil) {
        self.revision = revision
        self.roots = roots
        self.regoVersion = regoVersion
        self.metadata = metadata
    }

    /// The roots with OPA's default and without leading or trailing `/`.
    public var effectiveRoots: [String] {
        (roots ?? [""]).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "/")) }
    }

    public static func decode(_ bytes: [UInt8]) throws(Diagnostic) -> BundleManifest {
        let file = OPABundle.manifestFile
        guard case .object(let top)? = try? JSONReader.parse(bytes) else {
            throw OPABundle.error("`.manifest` is not a JSON object", file: file)
        }
        var manifest = BundleManifest()
        for (key, value) in top {
            switch key.stringValue {
            case "revision":
                guard let s = value.stringValue else { throw OPABundle.error("`.manifest`: `revision` must be a string", file: file) }
                manifest.revision = s
            case "roots":
                guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                    throw OPABundle.error("`.manifest`: `roots` must be a list of strings", file: file)
                }
                manifest.roots = items.compactMap(\.stringValue)
            case "rego_version":
                guard let v = value.numberValue?.intValue, v == 0 || v == 1 else {
                    throw OPABundle.error("`.manifest`: `rego_version` must be 0 or 1", file: file)
                }
                manifest.regoVersion = v
            case "metadata":
                guard value.objectValue != nil else { throw OPABundle.error("`.manifest`: `metadata` must be an object", file: file) }
                manifest.metadata = value
            default:
                break  // `wasm`, `file_rego_versions` and future keys: nothing Warden serves depends on them.
            }
        }
        let roots = manifest.effectiveRoots
        for i in roots.indices {
            for j in roots.indices where j > i && BundleRoots.overlap(roots[i], roots[j]) {
                throw OPABundle.error("`.manifest` has overlapping roots `\(roots[i])` and `\(roots[j])`", file: file)
            }
        }
        return manifest
    }

    /// The manifest as OPA's `json.Marshal` writes it: `revision`, `roots`, `rego_version`, `metadata`.
    public func encoded() -> [UInt8] {
        var out = "{\"revision\":"
        JSONWriter.writeString(revision, to: &out)
        let list = roots ?? [""]
        out += ",\"roots\":[" + list.map { root -> String in
            var s = ""
            JSONWriter.writeString(root, to: &s)
            return s
        }.joined(separator: ",") + "]"
        if let regoVersion { out += ",\"rego_version\":\(regoVersion)" }
        if let metadata { out += ",\"metadata\":" + JSONWriter.string(metadata) }
        out += "}"
        return Array(out.utf8)
    }
}

/// OPA's root semantics: a root owns its path and everything below it; `""` owns all of `data`.
public enum BundleRoots {
    static func segments(_ path: String) -> [Substring] { path.split(separator: "/", omittingEmptySubsequences: false) }

    static func contains(_ root: [Substring], _ other: [Substring]) -> Bool {
        if root.count == 1 && root[0].isEmpty { return true }
        guard root.count <= other.count else { return false }
        return zip(root, other).allSatisfy { $0 == $1 }
    }

    public static func overlap(_ a: String, _ b: String) -> Bool {
        contains(segments(a), segments(b)) || contains(segments(b), segments(a))
    }

    /// Whether some root owns `path` (`a/b`, slash-separated, below `data`).
    public static func permit(_ roots: [String], _ path: String) -> Bool {
        roots.contains { contains(segments($0), segments(path)) }
    }

    /// Paths in `data` that no root owns: a leaf (or an object no root lies under) outside every root.
    public static func dataOutside(_ roots: [String], _ data: Value, path: String = "") -> String? {
        if permit(roots, path) { return nil }
        if case .object(let members) = data {
            let here = path.isEmpty ? [] : segments(path)
            guard roots.contains(where: { contains(here, segments($0)) || here.isEmpty }) else { return "/" + path }
            for (key, value) in members {
                let child = path.isEmpty ? (key.stringValue ?? "") : path + "/" + (key.stringValue ?? "")
                if let bad = dataOutside(roots, value, path: child) { return bad }
            }
            return nil
        }
        return "/" + path
    }
}

/// Data files in bundles: where they go below `data`, and their values.
public enum BundleData {
    public static let names: Set<String> = ["data.json", "data.yaml", "data.yml"]

    /// The directory segments a data file is placed at, or nil for a file that is not a data file.
    public static func dataPath(_ path: String) -> [String]? {
        let parts = path.split(separator: "/").map(String.init)
        guard let last = parts.last, names.contains(last) else { return nil }
        return Array(parts.dropLast())
    }

    public static func value(_ bytes: [UInt8], path: String) throws(Diagnostic) -> Value {
        if path.hasSuffix(".json") {
            do {
                return try JSONReader.parse(bytes)
            } catch {
                throw Diagnostic(
                    code: Diagnostic.Code.jsonParse, message: error.message,
                    span: SourceSpan(file: "/" + path, line: error.line, column: error.column))
            }
        }
        return try yamlValue(bytes, path: path)
    }

    static func yamlValue(_ bytes: [UInt8], path: String) throws(Diagnostic) -> Value {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw OPABundle.error("`/\(path)` is not UTF-8 text", file: "/" + path)
        }
        let parsed = YAMLDocuments.parse(text, file: "/" + path)
        if let problem = parsed.diagnostics.first(where: \.isError) { throw problem }
        return parsed.documents.first?.value ?? .object([Value: Value]())
    }

    /// `base` with `addition` at `path`; objects merge member by member, and two files that set the same
    /// non-object value conflict, as OPA's merge refuses them.
    static func merge(_ base: Value, _ addition: Value, at path: ArraySlice<String>, file: String) throws(Diagnostic) -> Value {
        guard let key = path.first else {
            guard case .object(var left) = base, case .object(let right) = addition else {
                throw OPABundle.error("bundle data file `\(file)` conflicts with another data file", file: file)
            }
            for (k, v) in right {
                if let existing = left[k] {
                    left[k] = try merge(existing, v, at: [], file: file)
                } else {
                    left[k] = v
                }
            }
            return .object(left)
        }
        var object: [Value: Value] = [:]
        if case .object(let o) = base { object = o } else { throw OPABundle.error("bundle data file `\(file)` conflicts with another data file", file: file) }
        object[.string(key)] = try merge(object[.string(key)] ?? .object([Value: Value]()), addition, at: path.dropFirst(), file: file)
        return .object(object)
    }
}
