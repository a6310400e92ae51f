import Synchronization

/// What a namespace bucket resolved for one workload's labels: the selector groups that apply, what they hold, and,
/// when few rules apply, each stage's rules of those groups merged in evaluation order. A decision for a workload
/// already seen then reads its lists instead of looking its labels up again.
final class WorkloadPlan: Sendable {
    /// The labels it was resolved for. Holding them keeps their storage shared, so it can neither be freed (and its
    /// address reused) nor changed in place while the plan is remembered (see `WorkloadPlans`).
    let labels: [String: String]
    let groups: GroupSet
    let kinds: NamespaceBucket.GroupKinds
    /// The applicable rules are checked from `stageLists`, without the rule index.
    let direct: Bool
    /// When `direct`: stage `s`'s rules, in evaluation order, are `stageLists[stageLists[s] ..< stageLists[s + 1]]`
    /// (the stages' bounds first, then the rules: one table, so a decision reads one place in memory for them).
    let stageLists: Int32Table

    init(labels: [String: String], groups: GroupSet, kinds: NamespaceBucket.GroupKinds, direct: Bool, stageLists: [[Int32]]) {
        self.labels = labels
        self.groups = groups
        self.kinds = kinds
        self.direct = direct
        let start = stageLists.count + 1
        var ranges: [Int32] = [Int32(start)]
        var flat: [Int32] = []
        for list in stageLists {
            flat += list
            ranges.append(Int32(start + flat.count))
        }
        self.stageLists = Int32Table.make(ranges + flat)
    }
}

/// A bucket's plans, remembered by the identity of the labels' storage: a server keeps one labels dictionary per
/// workload it has seen (the check mapper caches them by their text), so every check of a workload hands over the
/// same storage and finds its plan with one probe, without hashing a label. Labels built anew for each request
/// (another storage every time) still decide correctly; they only miss and resolve again.
///
/// Bounded: when `capacity` plans are held it starts over.
final class WorkloadPlans: Sendable {
    static let capacity = 256
    private let table = Mutex(Table())

    /// The storage's identity: a native dictionary is one reference to its storage (empty ones share a singleton).
    @inline(__always)
    static func key(_ labels: [String: String]) -> UInt {
        unsafeBitCast(labels, to: UInt.self)
    }

    /// Whether `key` can name a dictionary's storage on this platform; otherwise plans are never remembered.
    static let usable = MemoryLayout<[String: String]>.size == MemoryLayout<UInt>.size

    @inline(__always)
    func plan(for labels: [String: String], resolve: ([String: String]) -> WorkloadPlan) -> WorkloadPlan {
        guard Self.usable else { return resolve(labels) }
        let key = Self.key(labels)
        if let hit = table.withLock({ $0.find(key) }) { return hit }
        let made = resolve(labels)
        table.withLock { $0.insert(key, made) }
        return made
    }

    /// Open addressing with linear probing over a power-of-two number of slots, at most half full; each slot holds
    /// its key beside its plan, so a hit reads one place in memory.
    struct Table {
        private struct Slot {
            var key: UInt = 0
            var plan: WorkloadPlan? = nil
        }
        private var slots = [Slot](repeating: Slot(), count: WorkloadPlans.capacity * 2)
        private var count = 0

        @inline(__always)
        private static func slot(_ key: UInt) -> Int {
            // Storage addresses are aligned: mix the bits before taking the top ones.
            Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> UInt(UInt.bitWidth - (WorkloadPlans.capacity * 2).trailingZeroBitCount))
        }

        @inline(__always)
        func find(_ key: UInt) -> WorkloadPlan? {
            let mask = slots.count - 1
            var i = Self.slot(key)
            while true {
                let k = slots[i].key
                if k == key { return slots[i].plan }
                if k == 0 { return nil }
                i = (i + 1) & mask
            }
        }

        mutating func insert(_ key: UInt, _ plan: WorkloadPlan) {
            if find(key) != nil { return }
            if count >= WorkloadPlans.capacity {
                for i in slots.indices { slots[i] = Slot() }
                count = 0
            }
            let mask = slots.count - 1
            var i = Self.slot(key)
            while slots[i].key != 0 { i = (i + 1) & mask }
            slots[i] = Slot(key: key, plan: plan)
            count += 1
        }
    }
}
