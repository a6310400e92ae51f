import Testing
@testable import WardenServer

@Suite struct DecisionIDTests {
    @Test func decisionIDsAreDistinctVersion4UUIDs() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = CheckHandler.newDecisionID()
            let bytes = Array(id.utf8)
            #expect(bytes.count == 36)
            #expect([8, 13, 18, 23].allSatisfy { bytes[$0] == UInt8(ascii: "-") }, "\(id)")
            #expect(bytes[14] == UInt8(ascii: "4"), "version 4: \(id)")
            #expect("89ab".utf8.contains(bytes[19]), "RFC 4122 variant: \(id)")
            #expect(bytes.enumerated().allSatisfy { i, b in [8, 13, 18, 23].contains(i) || "0123456789abcdef".utf8.contains(b) })
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }
}
