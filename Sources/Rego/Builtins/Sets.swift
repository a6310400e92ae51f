import PolicyCore

/// Set union `|` (`or`), intersection `&` (`and`), and the n-ary `union` and `intersection` over a set of sets.
/// Set difference is `minus`, shared with numbers, in the arithmetic table.
extension Builtins {
    static let sets: [Builtin] = [
        Builtin("or", arity: 2, signature: .parse("(x: set[any], y: set[any]) -> z: set[any]")) { operands, _ throws(BuiltinError) in
            let a = try set(operands, 0)
            let b = try set(operands, 1)
            return .set(a.union(b))
        },
        Builtin("and", arity: 2, signature: .parse("(x: set[any], y: set[any]) -> z: set[any]")) { operands, _ throws(BuiltinError) in
            let a = try set(operands, 0)
            let b = try set(operands, 1)
            return .set(a.intersection(b))
        },
        Builtin("union", arity: 1, signature: .parse("(xs: set[set[any]]) -> y: set[any]")) { operands, _ throws(BuiltinError) in
            var result = Set<Value>()
            for member in try setOfSets(operands, 0) { result.formUnion(member) }
            return .set(result)
        },
        Builtin("intersection", arity: 1, signature: .parse("(xs: set[set[any]]) -> y: set[any]")) { operands, _ throws(BuiltinError) in
            let members = try setOfSets(operands, 0)
            guard var result = members.first else { return .set([]) }
            for member in members.dropFirst() { result.formIntersection(member) }
            return .set(result)
        },
    ]

    /// The member sets of a set-of-sets operand.
    private static func setOfSets(_ operands: [Value], _ index: Int) throws(BuiltinError) -> [Set<Value>] {
        let outer = try set(operands, index)
        var members: [Set<Value>] = []
        members.reserveCapacity(outer.count)
        for element in outer {
            // OPA names the element's type, not the container's, when a member is not a set.
            guard case .set(let s) = element else { throw .operand(index + 1, mustBe: "set", got: element) }
            members.append(s)
        }
        return members
    }
}
