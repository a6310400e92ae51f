import Foundation
import PolicyCore
import WardenTesting

/// What the bundle tests share: a policy source whose every decision names its revision, keys, and the helper
/// processes (nginx, decision-log receivers) they run on 127.0.0.1.
struct BundleFixture {
    let dir: TemporaryDirectory

    init() async throws {
        dir = try TemporaryDirectory(prefix: "warden-bundle")
        for name in ["signing", "other"] {
            let out = try await ProcessRunner.run(
                try tool("openssl", package: "openssl"), ["genrsa", "-out", dir.path + "/\(name).pem", "2048"])
            guard out.status == 0 else { throw LaunchedProcess.StartError(description: out.stderr) }
            _ = try await ProcessRunner.run(
                try tool("openssl", package: "openssl"),
                ["rsa", "-in", dir.path + "/\(name).pem", "-pubout", "-out", dir.path + "/\(name).pub"])
        }
        try FileManager.default.createDirectory(atPath: dir.path + "/www", withIntermediateDirectories: true)
    }

    var key: String { dir.path + "/signing.pem" }
    var publicKey: String { dir.path + "/signing.pub" }
    var otherKey: String { dir.path + "/other.pem" }
    var published: String { dir.path + "/www/bundle.tar.gz" }

    /// Policy sources for one revision: a CUSTOM policy asking Rego about every request, and a Rego rule that
    /// allows GETs with an `x-rev` header read from the revision's data.
    func source(_ revision: String) throws -> String {
        let src = "src-\(revision)"
        try dir.write(src + "/custom.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: ext-authz, namespace: istio-system}
            spec:
              action: CUSTOM
              provider: {name: opa}
              rules: [{}]
            """)
        try dir.write(src + "/envoy/authz/policy.rego", """
            package envoy.authz

            default allow := {"allowed": false}

            allow := {"allowed": true, "headers": {"x-rev": data.meta.revision}} if {
            	input.attributes.request.http.method == "GET"
            }
            """)
        try dir.write(src + "/meta/data.json", #"{"revision": "\#(revision)"}"#)
        return dir.path + "/" + src
    }

    /// Builds a revision with `warden build` and publishes it with an atomic rename, as a deploy would.
    func publish(_ revision: String, key: String? = nil) async throws {
        let staged = dir.path + "/staged-\(revision).tar.gz"
        let out = try await ProcessRunner.warden(
            ["build", try source(revision), "-o", staged, "--revision", revision, "--signing-key", key ?? self.key])
        guard out.status == 0 else { throw LaunchedProcess.StartError(description: out.stderr) }
        try replace(with: staged)
    }

    func replace(with file: String) throws {
        guard rename(file, published) == 0 else { throw LaunchedProcess.StartError(description: "cannot publish \(file)") }
    }

    /// A copy of the published bundle with one byte of its Rego module changed (its signature kept).
    func publishTampered() async throws {
        let work = dir.path + "/tampered"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let tar = try tool("tar", package: "tar")
        _ = try await ProcessRunner.run(tar, ["xzf", published, "-C", work])
        let module = work + "/envoy/authz/policy.rego"
        var text = try String(contentsOfFile: module, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"GET\"", with: "\"PUT\"")
        try text.write(toFile: module, atomically: true, encoding: .utf8)
        let staged = dir.path + "/tampered.tar.gz"
        let out = try await ProcessRunner.run(tar, ["czf", staged, "-C", work, "."])
        guard out.status == 0 else { throw LaunchedProcess.StartError(description: out.stderr) }
        try replace(with: staged)
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func listening(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A program that is ready once it accepts connections on 127.0.0.1:`port` (nginx, a receiver).
func launch(_ name: String, _ executable: String, _ arguments: [String], waitForPort port: Int) async throws -> LaunchedProcess {
    try await LaunchedProcess(name, executable: executable, arguments, timeout: .seconds(20)) { _ in listening(port) }
}

/// nginx from Debian serving `root` on 127.0.0.1:`port`, as the invoking user, with every path under `prefix`.
func startNginx(root: String, prefix: String, port: Int) async throws -> LaunchedProcess {
    var binary: String?
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx"] where FileManager.default.isExecutableFile(atPath: candidate) {
        binary = candidate
    }
    guard let binary else {
        throw LaunchedProcess.StartError(description: "`nginx` is not installed: install Debian's `nginx-light` (scripts/test does)")
    }
    try FileManager.default.createDirectory(atPath: prefix + "/logs", withIntermediateDirectories: true)
    let user = geteuid() == 0 ? "user root;\n" : ""
    let config = """
        \(user)daemon off;
        worker_processes 1;
        pid \(prefix)/nginx.pid;
        error_log stderr;
        events { worker_connections 64; }
        http {
            access_log off;
            client_body_temp_path \(prefix)/body;
            proxy_temp_path \(prefix)/proxy;
            fastcgi_temp_path \(prefix)/fastcgi;
            uwsgi_temp_path \(prefix)/uwsgi;
            scgi_temp_path \(prefix)/scgi;
            server {
                listen 127.0.0.1:\(port);
                root \(root);
            }
        }
        """
    try config.write(toFile: prefix + "/nginx.conf", atomically: true, encoding: .utf8)
    return try await launch("nginx", binary, ["-p", prefix, "-e", "stderr", "-c", prefix + "/nginx.conf"], waitForPort: port)
}

/// The decision-log receiver in scripts/, on a free port; every upload it receives is one line of `output`.
func startReceiver(output: String, delay: Double = 0) async throws -> (LaunchedProcess, Int) {
    let port = try FreePort.allocate()
    var arguments = [Repository.path("scripts/decision-log-receiver.py"), String(port), output]
    if delay > 0 { arguments += ["--delay", String(delay)] }
    return (try await launch("decision-log receiver", "/usr/bin/env", ["python3"] + arguments, waitForPort: port), port)
}

/// `/v1/status` of a server, as a value.
func serverStatus(_ server: ServerProcess) async -> Value? {
    guard let out = try? await curl([server.adminBase + "/v1/status"]), out.status == 200 else { return nil }
    return (try? JSONReader.parse(out.body))?["result"]
}

/// One ext_authz HTTP check: the status, the `x-rev` header (the revision whose data decided) and the decision id.
struct BundleCheck: Sendable {
    var status: Int
    var revision: String?
    var decisionID: String?
    var duration: Duration
}

func bundleCheck(_ server: ServerProcess) async -> BundleCheck {
    let started = ContinuousClock.now
    guard let out = try? await curl([server.httpBase + "/ext_authz/probe"]) else {
        return BundleCheck(status: 0, duration: ContinuousClock.now - started)
    }
    func header(_ name: String) -> String? {
        out.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix(name + ":") }
            .map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
    }
    return BundleCheck(
        status: out.status, revision: header("x-rev"), decisionID: header("x-warden-decision-id"),
        duration: ContinuousClock.now - started)
}
