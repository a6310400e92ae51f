import Foundation
import JOSE
import Networking
import PolicyCore
import PolicyLoading

/// OPA's configuration keys for bundles and remote decision logs, read from the same file as the rest:
///
/// ```yaml
/// services:
///   acme: {url: https://bundles.example.com, headers: {x-team: authz}, credentials: {bearer: {token: T}}}
/// bundles:
///   authz:
///     service: acme
///     resource: bundles/authz.tar.gz
///     persist: true
///     polling: {min_delay_seconds: 5, max_delay_seconds: 10, long_polling_timeout_seconds: 30}
///     signing: {keyid: global_key, scope: write}
/// keys:
///   global_key: {algorithm: RS256, key: "-----BEGIN PUBLIC KEY----- ..."}   # or key_file: pub.pem
/// persistence_directory: /var/lib/warden
/// decision_logs:
///   service: acme
///   resource: /logs
///   reporting: {min_delay_seconds: 1, max_delay_seconds: 2, upload_size_limit_bytes: 32768,
///               buffer_size_limit_bytes: 16777216}
/// labels: {region: eu-1}
/// ```
extension ServerConfiguration {
    static let opaKeys = ["services", "bundles", "keys", "persistence_directory", "decision_logs", "labels"]

    struct Service {
        var url: String
        var headers: [String: String]
    }

    static func decodeOPA(
        _ top: DocumentDecoder.Fields, _ d: DocumentDecoder, into config: inout ServerConfiguration,
        relative: (String) -> String
    ) {
        func seconds(_ node: DocumentNode?, _ path: FieldPath, range: ClosedRange<Double>) -> Duration? {
            guard let node else { return nil }
            guard let n = node.value.numberValue?.doubleValue else {
                d.mismatch(node, path, expected: "a number of seconds")
                return nil
            }
            guard range.contains(n) else {
                d.invalid("must be from \(range.lowerBound) to \(range.upperBound) seconds, found \(n)", at: node, path)
                return nil
            }
            return .milliseconds(n * 1000)
        }
        func bytes(_ node: DocumentNode?, _ path: FieldPath) -> Int? {
            guard let node else { return nil }
            guard let n = node.value.numberValue?.intValue, n >= 1024, n <= 1 << 30 else {
                d.invalid("must be a number of bytes from 1024 to 1073741824", at: node, path)
                return nil
            }
            return n
        }

        var services: [String: Service] = [:]
        if let n = top["services"] {
            if case .mapping(let entries) = n.content {
                for entry in entries {
                    let path = top.path("services") / entry.key
                    guard let f = d.fields(entry.value, at: path, known: ["url", "headers", "credentials", "response_header_timeout_seconds"]) else { continue }
                    guard let url = f["url"].flatMap({ d.string($0, at: f.path("url")) }) else {
                        d.report(Diagnostic.Code.missingField, "a service needs `url`", span: entry.value.span, path: path)
                        continue
                    }
                    guard url.value.hasPrefix("http://") || url.value.hasPrefix("https://") else {
                        d.invalid("expected an http or https URL, found `\(url.value)`", at: url)
                        continue
                    }
                    var headers = f["headers"].flatMap { d.stringMap($0, at: f.path("headers")) }?.mapValues(\.value) ?? [:]
                    if let c = f["credentials"], let cf = d.fields(c, at: f.path("credentials"), known: ["bearer"]),
                       let b = cf["bearer"], let bf = d.fields(b, at: cf.path("bearer"), known: ["token", "scheme"]),
                       let token = bf["token"].flatMap({ d.string($0, at: bf.path("token")) })
                    {
                        let scheme = bf["scheme"].flatMap { d.string($0, at: bf.path("scheme"))?.value } ?? "Bearer"
                        headers["Authorization"] = "\(scheme) \(token.value)"
                    }
                    services[entry.key] = Service(url: url.value, headers: headers)
                }
            } else {
                d.mismatch(n, top.path("services"), expected: "an object of services")
            }
        }
        func service(_ node: DocumentNode?, _ path: FieldPath, owner: DocumentNode) -> Service? {
            if let node {
                guard let name = d.string(node, at: path) else { return nil }
                guard let s = services[name.value] else {
                    d.invalid("no service `\(name.value)` under `services`", at: name)
                    return nil
                }
                return s
            }
            if services.count == 1 { return services.values.first }
            d.report(Diagnostic.Code.missingField, "name the `service` (one of `services`)", span: owner.span, path: path)
            return nil
        }

        var keys: [String: BundleVerification.Key] = [:]
        if let n = top["keys"] {
            if case .mapping(let entries) = n.content {
                for entry in entries {
                    let path = top.path("keys") / entry.key
                    guard let f = d.fields(entry.value, at: path, known: ["algorithm", "key", "key_file", "scope"]) else { continue }
                    var pem: String?
                    if let k = f["key"].flatMap({ d.string($0, at: f.path("key")) }) { pem = k.value }
                    if let file = f["key_file"].flatMap({ d.string($0, at: f.path("key_file")) }) {
                        pem = try? String(contentsOfFile: relative(file.value), encoding: .utf8)
                        if pem == nil { d.invalid("cannot read `\(file.value)`", at: file) }
                    }
                    guard let pem else {
                        if !f.has("key_file") {
                            d.report(Diagnostic.Code.missingField, "a key needs `key` (PEM) or `key_file`", span: entry.value.span, path: path)
                        }
                        continue
                    }
                    var algorithm: JWSAlgorithm?
                    if let a = f["algorithm"].flatMap({ d.string($0, at: f.path("algorithm")) }) {
                        algorithm = JWSAlgorithm(name: a.value)
                        if algorithm == nil || algorithm!.isSymmetric {
                            d.invalid("unsupported algorithm `\(a.value)`; use RS256, PS256, ES256 and the like", at: a)
                            continue
                        }
                    }
                    do {
                        let single = try BundleVerification.single(pem: pem, algorithm: algorithm ?? .rs256, keyID: entry.key)
                        var key = single.keys[entry.key]!
                        key.scope = f["scope"].flatMap { d.string($0, at: f.path("scope"))?.value }
                        keys[entry.key] = key
                    } catch {
                        d.report(error.code, error.message, span: entry.value.span, path: path)
                    }
                }
            } else {
                d.mismatch(n, top.path("keys"), expected: "an object of keys")
            }
        }

        if let s = top["persistence_directory"].flatMap({ d.string($0, at: top.path("persistence_directory")) }) {
            config.persistenceDirectory = relative(s.value)
        }
        if let m = top["labels"].flatMap({ d.stringMap($0, at: top.path("labels")) }) { config.labels = m.mapValues(\.value) }

        if let n = top["bundles"] {
            if case .mapping(let entries) = n.content {
                if entries.count > 1 {
                    d.invalid("Warden serves one bundle; found \(entries.count)", at: n, top.path("bundles"))
                }
                for entry in entries.prefix(1) {
                    let path = top.path("bundles") / entry.key
                    guard let f = d.fields(entry.value, at: path, known: ["service", "resource", "persist", "polling", "signing", "size_limit_bytes"]),
                          let svc = service(f["service"], f.path("service"), owner: entry.value)
                    else { continue }
                    let resource = f["resource"].flatMap { d.string($0, at: f.path("resource"))?.value } ?? "bundles/\(entry.key)"
                    var settings = BundleSettings(name: entry.key, url: BundleSettings.join(svc.url, resource), headers: svc.headers)
                    if let p = f["persist"], let v = d.bool(p, at: f.path("persist")) { settings.persist = v }
                    if let size = bytes(f["size_limit_bytes"], f.path("size_limit_bytes")) { settings.limits.maxCompressedBytes = size }
                    if let p = f["polling"],
                       let pf = d.fields(p, at: f.path("polling"), known: ["min_delay_seconds", "max_delay_seconds", "long_polling_timeout_seconds"])
                    {
                        if let v = seconds(pf["min_delay_seconds"], pf.path("min_delay_seconds"), range: 0.1...86_400) { settings.minDelay = v }
                        if let v = seconds(pf["max_delay_seconds"], pf.path("max_delay_seconds"), range: 0.1...86_400) { settings.maxDelay = v }
                        if settings.minDelay > settings.maxDelay {
                            d.invalid("`min_delay_seconds` must not exceed `max_delay_seconds`", at: p, f.path("polling"))
                        }
                        settings.longPollingTimeout = seconds(
                            pf["long_polling_timeout_seconds"], pf.path("long_polling_timeout_seconds"), range: 1...3600)
                    }
                    if let s = f["signing"], let sf = d.fields(s, at: f.path("signing"), known: ["keyid", "scope", "exclude_files"]) {
                        let keyID = sf["keyid"].flatMap { d.string($0, at: sf.path("keyid"))?.value }
                        if let keyID, keys[keyID] == nil {
                            d.invalid("no key `\(keyID)` under `keys`", at: sf["keyid"]!, sf.path("keyid"))
                        }
                        if sf.has("exclude_files") {
                            d.invalid("`exclude_files` is not supported: every file of a signed bundle is verified", at: s, f.path("signing"))
                        }
                        settings.verification = BundleVerification(
                            keys: keys, keyID: keyID, scope: sf["scope"].flatMap { d.string($0, at: sf.path("scope"))?.value })
                    } else if !keys.isEmpty {
                        // Keys configured without `signing`: signed bundles are checked with them by the token's kid.
                        settings.verification = BundleVerification(keys: keys)
                    }
                    config.bundle = settings
                }
            } else {
                d.mismatch(n, top.path("bundles"), expected: "an object of bundles")
            }
        }

        if let n = top["decision_logs"],
           let f = d.fields(n, at: top.path("decision_logs"), known: ["service", "resource", "reporting", "console"])
        {
            if let c = f["console"], d.bool(c, at: f.path("console")) == true, config.decisionLog == nil {
                config.decisionLog = .standardOutput
            }
            if f.has("service") || !services.isEmpty, let svc = service(f["service"], f.path("service"), owner: n) {
                let resource = f["resource"].flatMap { d.string($0, at: f.path("resource"))?.value } ?? "/logs"
                var settings = DecisionLogUploadSettings(url: BundleSettings.join(svc.url, resource), headers: svc.headers)
                if let r = f["reporting"],
                   let rf = d.fields(r, at: f.path("reporting"), known: [
                       "min_delay_seconds", "max_delay_seconds", "upload_size_limit_bytes", "buffer_size_limit_bytes",
                   ])
                {
                    if let v = seconds(rf["min_delay_seconds"], rf.path("min_delay_seconds"), range: 0.05...86_400) { settings.minDelay = v }
                    if let v = seconds(rf["max_delay_seconds"], rf.path("max_delay_seconds"), range: 0.05...86_400) { settings.maxDelay = v }
                    if settings.minDelay > settings.maxDelay {
                        d.invalid("`min_delay_seconds` must not exceed `max_delay_seconds`", at: r, f.path("reporting"))
                    }
                    if let v = bytes(rf["upload_size_limit_bytes"], rf.path("upload_size_limit_bytes")) { settings.uploadSizeLimitBytes = v }
                    if let v = bytes(rf["buffer_size_limit_bytes"], rf.path("buffer_size_limit_bytes")) { settings.bufferSizeLimitBytes = v }
                }
                config.decisionLogUpload = settings
            }
        }
    }
}
