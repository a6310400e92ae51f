import Documents
import FuzzSupport
import PolicyCore

/// The YAML (and JSON) document reader on any text: documents with places, or one diagnostic; aliases, nesting
/// and size are held to `InputLimits` before anything is expanded.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzYAMLDocuments(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let parsed = YAMLDocuments.parse(FuzzInput(start, count).text, file: "fuzz.yaml")
    fuzzCheck(parsed.diagnostics.count <= 1, "more than one syntax error")
    for document in parsed.documents {
        // Every node's value, as the engines read documents.
        _ = JSONWriter.string(document.value)
    }
    return 0
}
