import ArgumentParser
import Documents
import Foundation
import JOSE
import PolicyCore
import PolicyLoading

/// `warden build`: an OPA bundle from policy directories, validated first as `warden check` validates them.
struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an OPA bundle (.tar.gz) from policy directories; nothing is written when any file is invalid.",
        discussion: """
            The bundle holds every .rego module, data.json/data.yaml file and AuthorizationPolicy document under \
            the given directories at its path relative to its directory, a .manifest (revision, roots, \
            rego_version 1) and, with --signing-key, OPA's .signatures.json (a JWT listing every file's SHA-256). \
            OPA (opa run -b, bundle service) reads its Rego and data; warden serve --bundle reads all of it.
            """
    )

    @Argument(help: "Directories (or files) of policies: .rego, .yaml, .yml, .json; data.json and data.yaml are data.")
    var paths: [String]

    @Option(name: .shortAndLong, help: "The bundle file to write.")
    var output: String

    @Option(help: "The revision recorded in .manifest.")
    var revision = ""

    @Option(name: .customLong("root"), help: "A root the bundle owns below data (repeatable; default: all of data).")
    var roots: [String] = []

    @Option(name: .customLong("signing-key"), help: "A PEM private key to sign the bundle with.")
    var signingKey: String?

    @Option(name: .customLong("signing-alg"), help: "RS256 or ES256 (default RS256).")
    var signingAlgorithm = "RS256"

    @Option(name: .customLong("signing-key-id"), help: "The key id written in the signature (default `default`, as OPA's).")
    var signingKeyID = BundleSigner.defaultKeyID

    @OptionGroup var policyOptions: PolicyOptions

    func run() throws {
        let loader = policyOptions.loader
        let checked = loader.read(paths)
        var renderer = DiagnosticRenderer()
        let problems = checked.diagnostics.filter { $0.severity != .note }
        if checked.hasErrors {
            writeError(renderer.render(problems))
            writeError("\(checked.diagnostics.filter(\.isError).count) errors; no bundle written")
            throw ExitCode(Warden.Status.failed)
        }
        if !problems.isEmpty { writeError(renderer.render(problems)) }

        // Exactly the text that was validated, each file at its path relative to its directory.
        let files: [TarArchive.Entry]
        do {
            files = try OPABundle.entries(checked.contents.map { ($0.file, Array($0.text.utf8)) }, under: paths)
        } catch {
            throw usage(error.message)
        }
        let manifest = BundleManifest(revision: revision, roots: roots.isEmpty ? nil : roots, regoVersion: 1)
        var bundle = OPABundle(manifest: manifest, files: files, manifestBytes: manifest.encoded())
        do {
            _ = try BundleManifest.decode(bundle.manifestBytes ?? [])
        } catch {
            throw usage(renderer.render([error]))
        }
        // The bundle as a server will read it: roots and data placement checked once more.
        let (snapshot, result) = loader.load(bundle: bundle)
        if snapshot == nil {
            writeError(renderer.render(result.diagnostics.filter(\.isError)))
            writeError("no bundle written")
            throw ExitCode(Warden.Status.failed)
        }
        if let signingKey {
            guard let algorithm = JWSAlgorithm(name: signingAlgorithm), [.rs256, .es256].contains(algorithm) else {
                throw usage("--signing-alg must be RS256 or ES256, found `\(signingAlgorithm)`")
            }
            guard let pem = try? String(contentsOfFile: signingKey, encoding: .utf8) else {
                throw usage(DocumentFiles.unreadable(signingKey).message)
            }
            do {
                let signer = try BundleSigner(pem: pem, algorithm: algorithm, keyID: signingKeyID)
                var signed = files.map { ($0.path, $0.bytes) }
                signed.append((OPABundle.manifestFile, bundle.manifestBytes ?? []))
                bundle.signatures = [try signer.sign(signed)]
            } catch {
                throw usage(renderer.render([error]))
            }
        }
        let bytes = bundle.archive()
        let temporary = output + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
            throw usage("cannot write `\(output)`")
        }
        if rename(temporary, output) != 0 {
            try? FileManager.default.removeItem(atPath: temporary)
            throw usage("cannot write `\(output)`")
        }
        let modules = files.filter { $0.path.hasSuffix(".rego") }.count
        writeOutput(
            "wrote \(output): \(files.count) \(plural(files.count, "file", "files")) (\(modules) Rego \(plural(modules, "module", "modules")), \(checked.policies.count) \(plural(checked.policies.count, "policy", "policies"))), revision `\(revision)`\(bundle.signatures == nil ? "" : ", signed")")
    }
}
