import PolicyCore

/// The shape of the rule tree, all that name resolution needs: kept with a compiled policy so that queries
/// prepared later resolve `data` references the same way rules did.
struct TreeIndex: Sendable {
    var children: [[Value: Int]]
    var paths: [[Value]]
    /// The arity of the functions defined at a node.
    var functionArity: [Int: Int]

    init(_ tree: TreeBuilder) {
        children = tree.nodes.map { node in node.children.mapValues(\.id) }
        paths = tree.nodes.map(\.path)
        functionArity = [:]
        for node in tree.nodes {
            if case .function(let arity)? = node.definitions.first?.kind { functionArity[node.id] = arity }
        }
    }

    func node(at path: [Value]) -> Int? {
        var id = 0
        for key in path {
            guard let child = children[id][key] else { return nil }
            id = child
        }
        return id
    }
}
