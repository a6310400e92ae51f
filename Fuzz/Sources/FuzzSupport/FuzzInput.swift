/// The bytes libFuzzer hands a target, with the views the targets read them through.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer

    public init(_ start: UnsafeRawPointer, _ count: Int) {
        bytes = UnsafeRawBufferPointer(start: start, count: count)
    }

    /// The bytes as text; invalid UTF-8 becomes U+FFFD, as a reader of a file would see it after decoding.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public var array: [UInt8] { Array(bytes) }
}

/// Stops the fuzzer with a finding: an invariant the target checks did not hold.
public func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant failed: \(message())") }
}
