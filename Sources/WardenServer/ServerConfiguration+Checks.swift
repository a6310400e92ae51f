import Foundation
import PolicyCore

extension ServerConfiguration {
    /// What keeps these settings from starting a server (`errors`, each naming the keys and flags involved), and
    /// what an operator should know when it starts (`warnings`).
    public func startupChecks() -> (errors: [Diagnostic], warnings: [String]) {
        var errors: [Diagnostic] = []
        var warnings: [String] = []
        func error(_ path: String, _ message: String) {
            errors.append(Diagnostic(
                code: "invalid_configuration", message: message,
                path: FieldPath(path.split(separator: ".").map { .key(String($0)) })))
        }

        // The management API.
        if let listener = admin.listener {
            switch admin.authentication {
            case .token where admin.authorizationPolicy == nil:
                error("admin.authentication", "`token` authentication needs an authorization policy (--authorization-policy, "
                    + "`admin.authorization_policy`): a bearer token is only an identity; the policy decides what it may do")
            case .tls where listener.tls?.clientCA == nil:
                error("admin.authentication", "`tls` authentication needs `admin.tls` with `client_ca` (--admin-tls-cert, "
                    + "--admin-tls-key, --admin-tls-client-ca): clients are known by certificates from that CA")
            default:
                break
            }
            if admin.authentication == .token, listener.tls == nil, !listener.isLoopback {
                warnings.append("the admin API at \(listener.address) takes bearer tokens without TLS: they cross the "
                    + "network in the clear; give it a certificate (--admin-tls-cert, --admin-tls-key)")
            }
            if admin.policyWrites, admin.authentication == .off {
                if listener.isLoopback {
                    warnings.append("policy writes are on and the admin API at \(listener.address) does not authenticate "
                        + "its callers: any process on this machine can change the policies")
                } else {
                    error("admin.policy_writes", "policy writes without authentication are served only on a loopback admin "
                        + "address, and `\(listener.address)` is not one: set --authentication (token or tls) with "
                        + "--authorization-policy, or bind --admin-address to 127.0.0.1")
                }
            } else if admin.authentication == .off, !listener.isLoopback {
                warnings.append("the admin API at \(listener.address) does not authenticate its callers: anyone who reaches it "
                    + "can read the status, the metrics and the policies")
            }
        } else if admin.policyWrites {
            error("admin.policy_writes", "policy writes need the admin listener, which is off (`admin.address: off`)")
        }
        if let policy = admin.authorizationPolicy, let directory = policyPaths.first(where: { Self.contains($0, policy) }) {
            error("admin.authorization_policy", "the authorization policy `\(policy)` is inside the served policies "
                + "`\(directory)`, where a policy write could change it; keep it in a directory of its own")
        }

        // The data plane.
        for (name, listener) in [("grpc", grpc), ("http", http)] where !listener.allowedClients.isEmpty {
            if listener.tls?.clientCA == nil {
                error("\(name).allowed_clients", "an allow-list needs `\(name).tls` with `client_ca` (--\(name)-tls-cert, "
                    + "--\(name)-tls-key, --\(name)-tls-client-ca): clients are known by their verified certificates")
            }
        }
        if verifiedClaimsHeader != nil, grpc.allowedClients.isEmpty, http.allowedClients.isEmpty {
            error("request.verified_claims_header", "the verified-claims header is trusted only from authenticated "
                + "proxies on an allow-list: give --allowed-clients (`grpc.allowed_clients`, `http.allowed_clients`) "
                + "with client certificate verification on the listener")
        } else if !grpc.allowedClients.isEmpty || !http.allowedClients.isEmpty {
            for (name, listener) in [("gRPC", grpc), ("HTTP", http)] where listener.allowedClients.isEmpty {
                warnings.append("the \(name) listener at \(listener.address) has no allow-list: any client that reaches it "
                    + "may ask for decisions" + (verifiedClaimsHeader == nil ? "" : ", and the verified-claims header is ignored there"))
            }
        }
        return (errors, warnings)
    }

    /// Whether `file` is `directory` or below it, after resolving symbolic links.
    static func contains(_ directory: String, _ file: String) -> Bool {
        func resolved(_ path: String) -> String {
            URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        }
        let base = resolved(directory), target = resolved(file)
        return target == base || target.hasPrefix(base.hasSuffix("/") ? base : base + "/")
    }
}
