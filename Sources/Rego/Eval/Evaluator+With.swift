import PolicyCore

/// `with`: literals evaluated with `input`, parts of `data`, or functions replaced. Values computed inside a
/// `with` scope are kept apart from those outside it.
extension Evaluator {
    func evalWith(_ bindings: [WithBinding], _ inner: [Literal], _ k: Continuation) throws(EvalSignal) {
        guard var saved = try scope(with: bindings) else { return }
        swapScope(&saved)
        defer {
            swapScope(&saved)
            recycle(&saved.cache)
        }
        try evalBody(inner, 0) { () throws(EvalSignal) in
            // The rest of the query runs outside the `with`.
            self.swapScope(&saved)
            defer { self.swapScope(&saved) }
            try k()
        }
    }

    /// `with` over direct literals: whether they hold under the replacements (their variables stay bound).
    func withDirect(_ bindings: [WithBinding], _ inner: [Literal]) throws(EvalSignal) -> Bool {
        guard var saved = try scope(with: bindings) else { return false }
        swapScope(&saved)
        defer {
            swapScope(&saved)
            recycle(&saved.cache)
        }
        for literal in inner {
            guard let direct = literal.direct, try run(direct, literal) else { return false }
        }
        return true
    }

    /// The scope the replacements make, with an empty rule cache; nil when a replacement is undefined (the
    /// expression is then undefined).
    private func scope(with bindings: [WithBinding]) throws(EvalSignal) -> WithScope? {
        var newInput = input
        var newData = dataOverrides
        var newFunctions = functionOverrides
        for binding in bindings {
            switch binding.replacement {
            case .value(let op):
                var replacement: Value?
                if case .local(let slot) = op {
                    replacement = local(slot)
                } else {
                    try eval(op) { (v) throws(EvalSignal) in
                        if replacement == nil { replacement = v }
                    }
                }
                guard let replacement else { return nil }
                switch binding.target {
                case .input(let path):
                    newInput = path.isEmpty ? replacement : Evaluator.upsert(newInput ?? Value.emptyObject, path[...], replacement)
                case .data(let path):
                    newData[path] = replacement
                case .function(let key):
                    newFunctions[key] = .value(replacement)
                }
            case .function(let target):
                if case .function(let key) = binding.target { newFunctions[key] = .target(target) }
            }
        }
        // The storage of a finished scope is reused: a new generation makes its entries absent.
        let cache = cachePool.popLast() ?? ContiguousArray(repeating: CacheEntry(), count: nodes.count)
        defer { nextGeneration += 1 }
        return WithScope(
            input: newInput, data: newData, functions: newFunctions, cache: cache, generation: nextGeneration)
    }

    /// Keeps a finished scope's rule cache for the next scope.
    private func recycle(_ cache: inout ContiguousArray<CacheEntry>) {
        cachePool.append(cache)
        cache = []
    }

    struct WithScope {
        var input: Value?
        var data: [[Value]: Value]
        var functions: [FunctionKey: FunctionReplacement]
        var cache: ContiguousArray<CacheEntry>
        var generation: Int
    }

    private func swapScope(_ other: inout WithScope) {
        swap(&input, &other.input)
        swap(&dataOverrides, &other.data)
        swap(&functionOverrides, &other.functions)
        swap(&cache, &other.cache)
        swap(&generation, &other.generation)
    }

    /// The replacement that covers `path` (the deepest one at or above it), if any: `.some(nil)` when it
    /// makes the path undefined.
    func overriddenValue(at path: [Value]) -> Value?? {
        var best: (length: Int, value: Value)?
        for (target, value) in dataOverrides where target.count <= path.count && path.starts(with: target) {
            if best == nil || target.count > best!.length { best = (target.count, value) }
        }
        guard let best else { return nil }
        var current = best.value
        for key in path[best.length...] {
            guard let child = Evaluator.lookup(current, key) else { return .some(nil) }
            current = child
        }
        return .some(current)
    }

    /// Applies replacements below a node that its child nodes do not cover (paths into rule values or base
    /// documents).
    func patchOverridesBelow(_ node: RuleNode, _ value: Value?) -> Value? {
        var result = value
        let depth = node.path.count
        for (target, replacement) in dataOverrides
        where target.count > depth && target.starts(with: node.path) && node.children[target[depth]] == nil {
            result = Evaluator.upsert(result ?? Value.emptyObject, target[depth...], replacement)
        }
        return result
    }

    /// A base document at `path` with the replacements below it applied.
    func patchOverrides(below path: [Value], _ value: Value?) -> Value? {
        var result = value
        for (target, replacement) in dataOverrides where target.starts(with: path) {
            result = Evaluator.upsert(result ?? Value.emptyObject, target[path.count...], replacement)
        }
        return result
    }

    /// `value` with `replacement` put at `path`, creating objects along the way.
    static func upsert(_ value: Value, _ path: ArraySlice<Value>, _ replacement: Value) -> Value {
        guard let key = path.first else { return replacement }
        var object: [Value: Value]
        if case .object(let o) = value { object = o } else { object = [:] }
        let child = object[key] ?? Value.emptyObject
        object[key] = upsert(child, path.dropFirst(), replacement)
        return .object(object)
    }
}
