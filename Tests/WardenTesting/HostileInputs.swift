/// Inputs built to exhaust or fool a reader, and the policy files the reload tests rewrite, shared by the tests
/// that feed them to the readers in-process and to the real `warden serve`.
public enum HostileInputs {
    /// The classic billion laughs: nine aliases of nine aliases, eight levels deep (9^9 strings in ~340 bytes).
    /// The first `*e` alias, on line 6 column 8, is where the aliases would add more than 100,000 nodes.
    public static let billionLaughs: String = {
        var lines = [#"a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]"#]
        let names = Array("abcdefghi").map(String.init)
        for (previous, name) in zip(names, names.dropFirst()) {
            lines.append("\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]")
        }
        return lines.joined(separator: "\n") + "\n"
    }()

    /// A Rego module whose rule `x` (on line 3) is `open` × `count`, `1`, `close` × `count`: 3,000 parentheses
    /// are `deepRego(open: "(", close: ")", count: 3_000)`.
    public static func deepRego(package name: String = "deep", open: String, close: String, count: Int) -> String {
        "package \(name)\n\nx := " + String(repeating: open, count: count) + "1" + String(repeating: close, count: count)
            + "\n"
    }

    /// Policies in one file whose DENY comes after an ALLOW-all, so a file cut between its documents opens
    /// `/admin`; with a version, a third policy denies `/v<version>` (to see which version serves).
    public static func allowAllThenDenyAdmin(namespace: String, version: Int? = nil) -> String {
        var text = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-all, namespace: \(namespace)}
            spec: {rules: [{}]}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-admin, namespace: \(namespace)}
            spec:
              action: DENY
              rules: [{to: [{operation: {paths: ["/admin"]}}]}]

            """
        if let version {
            text += """
                ---
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: deny-v\(version), namespace: \(namespace)}
                spec:
                  action: DENY
                  rules: [{to: [{operation: {paths: ["/v\(version)"]}}]}]

                """
        }
        return text
    }
}
