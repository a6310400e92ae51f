import PolicyCore

/// The rules of a namespace bucket laid out as flat tables, so that evaluating a rule reads integers and
/// predicate references from memory owned here, without reference counting.
///
/// A rule is three parts: its `when` conditions (one run of predicates that must all match), its `from` entries
/// and its `to` entries (lists of runs, one of which must match when the list is not empty). A run is a range of
/// `predicates`.
final class RuleProgram: @unchecked Sendable {
    private let retained: [Predicate]
    private let predicates: UnsafeMutableBufferPointer<Unmanaged<Predicate>>
    /// Run `i` is `predicates[runs[2i] ..< runs[2i+1]]`.
    private let runs: UnsafeMutableBufferPointer<Int32>
    /// Rule `r`: its `when` run, then the range of its `from` runs and of its `to` runs, in `runs` numbering.
    private let table: UnsafeMutableBufferPointer<Int32>
    private static let width = 5

    init(_ rules: [CompiledRule]) {
        var retained: [Predicate] = []
        var runs: [Int32] = []
        var table: [Int32] = []
        func run(_ list: [Predicate]) -> Int32 {
            runs.append(Int32(retained.count))
            retained += list
            runs.append(Int32(retained.count))
            return Int32(runs.count / 2 - 1)
        }
        for rule in rules {
            table.append(run(rule.when))
            for entries in [rule.from, rule.to] {
                let first = Int32(runs.count / 2)
                for entry in entries { _ = run(entry) }
                table.append(first)
                table.append(Int32(runs.count / 2))
            }
        }
        self.retained = retained
        predicates = .allocate(capacity: max(1, retained.count))
        _ = predicates.initialize(from: retained.map { Unmanaged.passUnretained($0) })
        self.runs = .allocate(capacity: max(1, runs.count))
        _ = self.runs.initialize(from: runs)
        self.table = .allocate(capacity: max(1, table.count))
        _ = self.table.initialize(from: table)
    }

    deinit {
        predicates.deallocate()
        runs.deallocate()
        table.deallocate()
    }

    @inline(__always)
    func matches(_ rule: Int, _ request: AuthzRequest, _ view: RequestView) -> Bool {
        let base = rule * Self.width
        guard runMatches(Int(table[base]), request, view) else { return false }
        return anyRunMatches(Int(table[base + 1]), Int(table[base + 2]), request, view)
            && anyRunMatches(Int(table[base + 3]), Int(table[base + 4]), request, view)
    }

    /// True for an empty list (no constraint), else whether one of the runs matches.
    @inline(__always)
    private func anyRunMatches(_ first: Int, _ end: Int, _ request: AuthzRequest, _ view: RequestView) -> Bool {
        if first == end { return true }
        for r in first..<end where runMatches(r, request, view) { return true }
        return false
    }

    @inline(__always)
    private func runMatches(_ run: Int, _ request: AuthzRequest, _ view: RequestView) -> Bool {
        var p = Int(runs[2 * run])
        let end = Int(runs[2 * run + 1])
        while p < end {
            // The predicates are kept alive by `retained` for the program's lifetime.
            let matched = predicates[p]._withUnsafeGuaranteedRef { $0.matches(request, view) }
            if !matched { return false }
            p += 1
        }
        return true
    }
}

/// An immutable array of `Int32` held in one allocation with its count, so reading it touches one place in memory
/// (a decision reads several of these, and each further allocation is a further cache miss when policies are many),
/// read without bounds or reference checks on the decision path (indexes come from the tables built alongside it).
struct Int32Table: @unchecked Sendable {
    /// The count (read through its pointer: reading `header` is an exclusivity-checked access), then the
    /// values; never changed after `make`.
    private final class Storage: ManagedBuffer<Int, Int32> {}
    private let storage: Storage

    private init(_ storage: Storage) { self.storage = storage }

    @inline(__always)
    var count: Int { storage.withUnsafeMutablePointerToHeader { $0.pointee } }

    @inline(__always)
    subscript(_ i: Int) -> Int32 { storage.withUnsafeMutablePointerToElements { $0[i] } }

    /// Makes a table holding `values`.
    static func make(_ values: [Int32]) -> Int32Table {
        let storage = unsafeDowncast(
            Storage.create(minimumCapacity: max(1, values.count)) { _ in values.count }, to: Storage.self)
        storage.withUnsafeMutablePointerToElements { elements in
            values.withUnsafeBufferPointer { source in
                if let base = source.baseAddress { elements.initialize(from: base, count: source.count) }
            }
        }
        return Int32Table(storage)
    }
}
