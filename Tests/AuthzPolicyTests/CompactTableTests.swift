@testable import AuthzPolicy
import Testing

/// The single-allocation tables the decision path reads: what goes in comes out, at every size and edge.
@Suite struct CompactTableTests {
    @Test(arguments: [0, 1, 2, 7, 300])
    func byteStoreHoldsEveryStringWithItsLength(count: Int) {
        // Empty strings, multi-byte UTF-8 and lengths that are not multiples of four (the bounds precede the bytes).
        let strings = (0..<count).map { i in i % 5 == 0 ? "" : String(repeating: "é", count: i % 7) + "x\(i)" }
        let store = ByteStore(strings)
        #expect(store.count == count)
        for (i, s) in strings.enumerated() {
            #expect(Array(store[i]) == Array(s.utf8))
            #expect(store[i].count == s.utf8.count)
        }
    }

    @Test(arguments: [0, 1, 3, 1000])
    func int32TableHoldsItsValues(count: Int) {
        let values = (0..<count).map { Int32($0 * 7 - 500) }
        let table = Int32Table.make(values)
        #expect(table.count == count)
        #expect((0..<count).map { table[$0] } == values)
    }

    @Test func staticTableFindsKeysThroughTheStore() {
        let keys = (0..<100).map { "key-\($0)" } + ["", "a"]
        let table = StaticTable(keys.enumerated().map { ($1, $0) })
        for (i, key) in keys.enumerated() { #expect(table[key] == i) }
        #expect(table["key-100"] == nil)
        #expect(table["b"] == nil)
    }
}
