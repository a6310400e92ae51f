import PolicyCore

/// A set of CIDR ranges compiled into sorted, merged address intervals per family: membership is one binary search.
struct IPSet: Sendable, Hashable {
    private var v4: [ClosedRange<UInt128>] = []
    private var v6: [ClosedRange<UInt128>] = []

    init(_ blocks: [CIDR]) {
        var v4: [ClosedRange<UInt128>] = [], v6: [ClosedRange<UInt128>] = []
        for block in blocks {
            let low = block.address.bits & block.mask
            let all: UInt128 = block.address.family == .v4 ? 0xFFFF_FFFF : ~0
            let high = low | (~block.mask & all)
            if block.address.family == .v4 { v4.append(low...high) } else { v6.append(low...high) }
        }
        self.v4 = Self.merged(v4)
        self.v6 = Self.merged(v6)
    }

    private static func merged(_ ranges: [ClosedRange<UInt128>]) -> [ClosedRange<UInt128>] {
        var out: [ClosedRange<UInt128>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, last.upperBound == .max || r.lowerBound <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    func contains(_ ip: IPAddress) -> Bool {
        let ranges = ip.family == .v4 ? v4 : v6
        var low = 0, high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < ip.bits {
                low = mid + 1
            } else {
                high = mid
            }
        }
        return low < ranges.count && ranges[low].contains(ip.bits)
    }
}
