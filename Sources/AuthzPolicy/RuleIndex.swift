import PolicyCore

/// The attributes a rule can be indexed by.
enum IndexAttribute: Hashable, Sendable {
    case path, sourcePrincipal, requestPrincipal, host, header(String), sourceNamespace, sni, port, method

    init?(_ attribute: Attribute) {
        switch attribute {
        case .path: self = .path
        case .sourcePrincipal: self = .sourcePrincipal
        case .requestPrincipal: self = .requestPrincipal
        case .host: self = .host
        case .requestHeader(let name): self = .header(name)
        case .sourceNamespace: self = .sourceNamespace
        case .connectionSNI: self = .sni
        case .destinationPort: self = .port
        case .method: self = .method
        default: return nil
        }
    }

    /// Runs `body` on the request's value of the attribute, as the bytes the index was built from.
    @inline(__always)
    func withKey(_ request: AuthzRequest, _ view: RequestView, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        let string: String?
        switch self {
        case .path: string = request.http.path
        case .sourcePrincipal: string = request.source.principal
        case .requestPrincipal: string = request.auth?.issuerSubjectKey
        case .host:
            _ = RequestView.withHostBytes(request, body)
            return
        case .header(let name): string = request.http.headers.value(lowercased: name)
        case .sourceNamespace: string = request.source.namespace
        case .sni: string = request.connectionSNI
        case .method: string = request.http.method
        case .port:
            guard let port = request.destination.port else { return }
            withUnsafeBytes(of: portKey(port)) { body($0.bindMemory(to: UInt8.self)) }
            return
        }
        if let string { withBytes(string, body) }
    }
}

/// A port as the two bytes it is indexed by.
@inline(__always)
func portKey(_ port: Int) -> (UInt8, UInt8) { (UInt8(truncatingIfNeeded: port >> 8), UInt8(truncatingIfNeeded: port)) }

/// How a predicate can be looked up: the exact values, prefixes and suffixes that can satisfy it.
struct IndexKeys {
    var exact: [[UInt8]] = []
    var prefixes: [[UInt8]] = []
    var suffixes: [[UInt8]] = []

    /// A cost model for choosing among a rule's predicates: every prefix or suffix length is one more lookup.
    var lookups: Int { (exact.isEmpty ? 0 : 1) + Set(prefixes.map(\.count)).count + Set(suffixes.map(\.count)).count }
}

extension Predicate {
    /// The keys under which a rule holding this predicate can be found, when every value the predicate accepts is
    /// an exact value, a prefix or a suffix of the indexed attribute (not for negated predicates, presence
    /// patterns, path templates, CIDRs or claims).
    var indexKeys: IndexKeys? {
        guard !negated, IndexAttribute(attribute) != nil else { return nil }
        switch self {
        case let p as StringPredicate:
            return p.table.indexKeys
        case let p as PathPredicate:
            return p.templates.isEmpty ? p.table.indexKeys : nil
        case let p as PortPredicate:
            return IndexKeys(exact: p.ports.map { let k = portKey($0); return [k.0, k.1] })
        case let p as NamespacePredicate:
            return p.patterns.allSatisfy({ $0.parts.count == 1 }) ? IndexKeys(exact: p.patterns.map { Array($0.parts[0].utf8) }) : nil
        case let p as RequestPrincipalPredicate:
            var keys = IndexKeys()
            for (issuer, subject) in p.patterns {
                guard case .exact(let i) = issuer, case .exact(let s) = subject else { return nil }
                keys.exact.append(Array((i + "/" + s).utf8))
            }
            return keys
        default:
            return nil
        }
    }
}

/// One indexed attribute: exact keys, prefixes and suffixes, each in one hash table mapping to a posting id. A
/// lookup probes the exact table once and the affix tables once per distinct affix length.
final class AttributeIndex: Sendable {
    let attribute: IndexAttribute
    let exact: StaticTable<Int32>
    let prefixes: StaticTable<Int32>
    let prefixLengths: Int32Table
    let suffixes: StaticTable<Int32>
    let suffixLengths: Int32Table

    init(attribute: IndexAttribute, exact: [([UInt8], Int32)], prefixes: [([UInt8], Int32)], suffixes: [([UInt8], Int32)]) {
        self.attribute = attribute
        self.exact = StaticTable(bytes: exact)
        self.prefixes = StaticTable(bytes: prefixes)
        prefixLengths = Int32Table.make(Set(prefixes.map { Int32($0.0.count) }).sorted())
        self.suffixes = StaticTable(bytes: suffixes)
        suffixLengths = Int32Table.make(Set(suffixes.map { Int32($0.0.count) }).sorted())
    }


    /// Appends the posting ids the request's value reaches.
    @inline(__always)
    func lookup(_ request: AuthzRequest, _ view: RequestView, into postings: inout SmallList) {
        attribute.withKey(request, view) { key in
            if let i = exact.index(of: key) { postings.append(exact.values[i]) }
            for l in 0..<prefixLengths.count {
                let length = Int(prefixLengths[l])
                if length > key.count { break }
                if let i = prefixes.index(of: UnsafeBufferPointer(rebasing: key[0..<length])) {
                    postings.append(prefixes.values[i])
                }
            }
            for l in 0..<suffixLengths.count {
                let length = Int(suffixLengths[l])
                if length > key.count { break }
                if let i = suffixes.index(of: UnsafeBufferPointer(rebasing: key[(key.count - length)...])) {
                    postings.append(suffixes.values[i])
                }
            }
        }
    }
}

/// The rule index of a namespace bucket: for each rule, one required predicate is chosen and the rule is posted
/// under each of that predicate's keys; a lookup yields, per stage, the candidate rules in evaluation order, as
/// ranges of one flat array. Rules with no indexable required predicate are always candidates.
struct RuleIndex: Sendable {
    let attributes: [AttributeIndex]
    /// Posting `p`, stage `s`: `positions[ranges[2(p·stages + s)] ..< ranges[2(p·stages + s) + 1]]`.
    let ranges: Int32Table
    let unindexedRanges: Int32Table
    let positions: Int32Table

    init(rules: [CompiledRule], stages: [Stage]) {
        enum Kind: Hashable { case exact, prefix, suffix }
        struct Slot: Hashable {
            let attribute: IndexAttribute
            let kind: Kind
            let key: [UInt8]
        }
        func slots(_ attribute: IndexAttribute, _ keys: IndexKeys) -> [Slot] {
            keys.exact.map { Slot(attribute: attribute, kind: .exact, key: $0) }
                + keys.prefixes.map { Slot(attribute: attribute, kind: .prefix, key: $0) }
                + keys.suffixes.map { Slot(attribute: attribute, kind: .suffix, key: $0) }
        }
        // How many rules could be posted under each key: a rule prefers the predicate whose busiest key is
        // shared by the fewest other rules, so lookups return short candidate lists.
        let choices: [[(IndexAttribute, IndexKeys)]] = rules.map { rule in
            rule.requiredPredicates.compactMap { p in
                guard let attribute = IndexAttribute(p.attribute), let keys = p.indexKeys else { return nil }
                return (attribute, keys)
            }
        }
        var load: [Slot: Int] = [:]
        for options in choices {
            for (attribute, keys) in options {
                for slot in Set(slots(attribute, keys)) { load[slot, default: 0] += 1 }
            }
        }
        var posted: [Slot: [[Int32]]] = [:]
        var unindexed = [[Int32]](repeating: [], count: Stage.count)
        for (position, options) in choices.enumerated() {
            let stage = stages[position].rawValue
            let best = options.min { a, b in
                let ca = slots(a.0, a.1).map { load[$0]! }.max()! + a.1.lookups
                let cb = slots(b.0, b.1).map { load[$0]! }.max()! + b.1.lookups
                return ca < cb
            }
            guard let (attribute, keys) = best else {
                unindexed[stage].append(Int32(position))
                continue
            }
            for slot in Set(slots(attribute, keys)) {
                posted[slot, default: [[Int32]](repeating: [], count: Stage.count)][stage].append(Int32(position))
            }
        }
        // Lay the postings out flat, grouped by attribute and kind.
        var flat: [Int32] = [], ranges: [Int32] = [], unindexedRanges: [Int32] = []
        func append(_ list: [Int32], to table: inout [Int32]) {
            table.append(Int32(flat.count))
            flat += list.sorted()
            table.append(Int32(flat.count))
        }
        var attributeIndexes: [AttributeIndex] = []
        let attributes = Array(Set(posted.keys.map(\.attribute))).sorted { "\($0)" < "\($1)" }
        for attribute in attributes {
            var exact: [([UInt8], Int32)] = [], prefixes: [([UInt8], Int32)] = [], suffixes: [([UInt8], Int32)] = []
            for (slot, lists) in posted where slot.attribute == attribute {
                let id = Int32(ranges.count / (2 * Stage.count))
                for list in lists { append(list, to: &ranges) }
                switch slot.kind {
                case .exact: exact.append((slot.key, id))
                case .prefix: prefixes.append((slot.key, id))
                case .suffix: suffixes.append((slot.key, id))
                }
            }
            attributeIndexes.append(AttributeIndex(attribute: attribute, exact: exact, prefixes: prefixes, suffixes: suffixes))
        }
        for list in unindexed { append(list, to: &unindexedRanges) }
        self.attributes = attributeIndexes
        self.ranges = Int32Table.make(ranges)
        self.unindexedRanges = Int32Table.make(unindexedRanges)
        positions = Int32Table.make(flat)
    }
}

extension StringMatchSet {
    /// The keys of a set with no `*` value: a rule using it can be found through any of them.
    var indexKeys: IndexKeys? {
        presence ? nil : IndexKeys(exact: exactBytes, prefixes: prefixBytes, suffixes: suffixBytes)
    }
}
