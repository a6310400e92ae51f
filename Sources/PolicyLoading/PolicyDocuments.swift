import Documents
import Foundation
import PolicyCore

/// The files of a policies directory as OPA's policy API names them: an id is the file's path relative to the
/// directory (`team/allow-get.yaml`); an id without an extension names the file with one of the rule
/// extensions (`team/allow-get` → `team/allow-get.yaml`).
public struct PolicyDocuments: Sendable {
    public let directory: String
    public let extensions: Set<String>

    public init(directory: String, extensions: Set<String> = PolicyLoader.ruleExtensions) {
        self.directory = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        self.extensions = extensions
    }

    public struct Document: Sendable, Hashable {
        public var id: String
        public var file: String
        public var text: String
    }

    /// Ids are relative paths: letters, digits, `-`, `_`, `.`, `/`; no empty, `.` or `..` segment, no hidden
    /// file. Anything else could escape the directory.
    public func isValid(id: String) -> Bool {
        guard !id.isEmpty, id.utf8.count <= 512 else { return false }
        let allowed = id.unicodeScalars.allSatisfy { c in
            CharacterSet.alphanumerics.contains(c) && c.isASCII || "-_./".unicodeScalars.contains(c)
        }
        guard allowed else { return false }
        return id.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { segment in
            !segment.isEmpty && segment != "." && segment != ".." && !segment.hasPrefix(".")
        }
    }

    /// The file an id names when it exists, or nil.
    public func existingFile(for id: String) -> String? {
        guard isValid(id: id) else { return nil }
        let base = directory + "/" + id
        if extensions.contains((id as NSString).pathExtension), FileManager.default.fileExists(atPath: base) { return base }
        return extensions.sorted().map { base + "." + $0 }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// The file a new document with this id is written to: the id as is when it has a rule extension, else
    /// with `defaultExtension` appended.
    public func file(for id: String, defaultExtension: String) -> String? {
        guard isValid(id: id) else { return nil }
        if let existing = existingFile(for: id) { return existing }
        if extensions.contains((id as NSString).pathExtension) { return directory + "/" + id }
        return directory + "/" + id + "." + defaultExtension
    }

    /// Every rule file in the directory, with its text.
    public func all() -> [Document] {
        DocumentFiles.files(under: directory, extensions: extensions).compactMap { file in
            guard case .success(let text) = DocumentFiles.read(file) else { return nil }
            return Document(id: id(of: file), file: file, text: text)
        }
    }

    public func document(id: String) -> Document? {
        guard let file = existingFile(for: id), case .success(let text) = DocumentFiles.read(file) else { return nil }
        return Document(id: self.id(of: file), file: file, text: text)
    }

    func id(of file: String) -> String {
        file.hasPrefix(directory + "/") ? String(file.dropFirst(directory.count + 1)) : file
    }
}
