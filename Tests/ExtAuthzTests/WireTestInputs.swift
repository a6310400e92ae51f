import PolicyCore
import SwiftProtobuf

/// Inputs for the wire readers' differential tests (`CheckRequestDecodingTests`, `CheckResponseDecodingTests`).
enum WireTestInputs {
    /// A `Struct` holding a `Struct` `levels` deep (each level two messages: the `Struct` and its `Value`).
    static func nestedStruct(levels: Int) -> Google_Protobuf_Struct {
        var inner = Google_Protobuf_Struct()
        for _ in 0..<levels {
            var outer = Google_Protobuf_Struct()
            outer.fields["a"] = Google_Protobuf_Value(structValue: inner)
            inner = outer
        }
        return inner
    }

    /// Every truncation of `bytes`, then `count` copies with one to three bytes replaced at seeded random places.
    static func damaged(_ bytes: [UInt8], count: Int, seed: UInt64) -> [[UInt8]] {
        var generator = SplitMix64(seed: seed)
        var inputs = (0..<bytes.count).map { Array(bytes[..<$0]) }
        for _ in 0..<count {
            var damaged = bytes
            for _ in 0...(generator.next() % 3) {
                let index = Int(generator.next() % UInt64(damaged.count))
                damaged[index] = UInt8(truncatingIfNeeded: generator.next())
            }
            inputs.append(damaged)
        }
        return inputs
    }
}
