import PolicyCore

/// What a body needs to know about the module it is written in to resolve names.
struct ModuleContext {
    let module: Module
    /// Imported names: what each stands for (a reference rooted at `data` or `input`).
    let imports: [String: Term]
    /// The names of the rules of the module's package, in every module of that package.
    let ruleNames: Set<String>

    var file: String { module.file }
    var package: [String] { module.package }
}

/// The rule tree under construction: one node per package and per path a rule defines.
final class NodeBuilder {
    let id: Int
    let path: [Value]
    var children: [Value: NodeBuilder] = [:]
    /// Rules defined at exactly this path (their ground prefix ends here).
    var definitions: [Definition] = []
    /// The packages declared at exactly this path.
    var packageLocations: [Location] = []

    init(id: Int, path: [Value]) {
        self.id = id
        self.path = path
    }

    /// A rule as placed in the tree.
    struct Definition {
        enum Kind: Equatable {
            case complete
            case multiValue
            case function(arity: Int)
        }

        var rule: Rule
        var context: ModuleContext
        var kind: Kind
        /// The terms of the rule's reference after this node's path (variables and the like).
        var dynamicKeys: [Term]
        var location: Location { rule.location }
    }

    var hasRules: Bool { !definitions.isEmpty }
}

/// The rule tree: every node by id.
final class TreeBuilder {
    private(set) var nodes: [NodeBuilder] = []
    let root: NodeBuilder

    init() {
        root = NodeBuilder(id: 0, path: [])
        nodes.append(root)
    }

    func node(at path: [Value]) -> NodeBuilder {
        var node = root
        for key in path {
            if let child = node.children[key] {
                node = child
            } else {
                let child = NodeBuilder(id: nodes.count, path: node.path + [key])
                nodes.append(child)
                node.children[key] = child
                node = child
            }
        }
        return node
    }

    func existingNode(at path: [Value]) -> NodeBuilder? {
        var node = root
        for key in path {
            guard let child = node.children[key] else { return nil }
            node = child
        }
        return node
    }

    /// Every node below `node`, depth first.
    func descendants(of node: NodeBuilder) -> [NodeBuilder] {
        var out: [NodeBuilder] = []
        for key in node.children.keys.sorted() {
            let child = node.children[key]!
            out.append(child)
            out.append(contentsOf: descendants(of: child))
        }
        return out
    }
}
