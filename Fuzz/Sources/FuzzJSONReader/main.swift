import FuzzSupport
import PolicyCore

/// PolicyCore's JSON reader on any bytes (request bodies, token segments, data files): a value or an error with
/// its place; a value read back from its own JSON text is the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONReader(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    let value: Value
    do {
        value = try JSONReader.parse(input.array)
    } catch {
        fuzzCheck(error.line >= 1 && error.column >= 1, "an error without a place: \(error)")
        return 0
    }
    let written = JSONWriter.string(value)
    guard let again = try? JSONReader.parse(written) else {
        fuzzCheck(false, "its own output does not read back: \(written)")
        return 0
    }
    fuzzCheck(again == value, "\(written) reads back as another value")
    return 0
}
