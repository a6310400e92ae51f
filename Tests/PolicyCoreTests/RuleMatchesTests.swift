import PolicyCore
import Testing

@Suite struct RuleMatchesTests {
    let table = (0..<10).map { RuleMatch(policy: PolicyID(namespace: "ns", name: "p\($0)"), action: .audit, rule: $0 % 3) }

    @Test func positionsInATableReadAsTheMatchesTheyName() {
        // Seven positions: four inline, three beyond.
        let positions = [9, 0, 4, 5, 1, 7, 2]
        var matches = RuleMatches(table: table)
        #expect(matches.isEmpty)
        for p in positions { matches.append(position: p) }
        #expect(matches.count == positions.count)
        #expect(Array(matches) == positions.map { table[$0] })
        #expect(matches == RuleMatches(positions.map { table[$0] }))
        #expect(matches.hashValue == RuleMatches(positions.map { table[$0] }).hashValue)
        #expect(matches.first?.policy.name == "p9")
        #expect(matches.last?.rule == 2)
    }

    @Test func listsDifferingInOneMatchAreUnequal() {
        var a = RuleMatches(table: table), b = RuleMatches(table: table)
        for p in [1, 2, 3, 4, 5] { a.append(position: p) }
        for p in [1, 2, 3, 4, 6] { b.append(position: p) }
        #expect(a != b)
        #expect(RuleMatches() == [])
        #expect(RuleMatches(table: table) == RuleMatches())
        #expect(RuleMatches([table[3]]) == [table[3]])
    }
}
