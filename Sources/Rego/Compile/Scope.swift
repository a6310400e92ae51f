import PolicyCore

/// The variables of one body (a rule body, a comprehension, an `every` body, a query). Bodies nest: a name not
/// declared in a body refers to the enclosing body's variable of that name, if there is one.
final class Scope {
    let id: Int
    let parent: Scope?
    /// Variables by name.
    private(set) var names: [String: Int] = [:]
    /// For variables declared with `:=` or `some`: the position of the declaring expression in the body.
    var declaredAt: [String: Int] = [:]
    /// The position of the expression being lowered; bodies nested in it do not see variables declared later.
    var position = Int.max

    init(id: Int, parent: Scope?) {
        self.id = id
        self.parent = parent
    }

    func define(_ name: String, slot: Int) { names[name] = slot }

    func lookup(_ name: String) -> Int? {
        if let slot = names[name] { return slot }
        var scope = parent
        while let s = scope {
            if let slot = s.names[name], (s.declaredAt[name] ?? -1) < s.position { return slot }
            scope = s.parent
        }
        return nil
    }

    func lookupHere(_ name: String) -> Int? { names[name] }

    /// Whether `other` is this scope or one nested in it.
    func encloses(_ other: Scope) -> Bool {
        var scope: Scope? = other
        while let s = scope {
            if s === self { return true }
            scope = s.parent
        }
        return false
    }
}

/// What the compiler knows about one frame slot.
struct Slot {
    enum Kind: Equatable {
        /// A variable the user wrote.
        case user
        /// `_`: a new variable at each occurrence.
        case wildcard
        /// A value the compiler introduced (a nested call's result).
        case temporary
    }

    var name: String
    var kind: Kind
    var scope: Int
    var location: Location
    /// Declared with `some`, `:=`, or as a parameter, rather than introduced by use.
    var declared: Bool
    /// How many times the variable is referred to, besides its declaration.
    var uses: Int = 0
}
