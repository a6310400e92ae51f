import Foundation
import NIOCore
import NIOSSL
import Synchronization

/// The PEM files a TLS endpoint is made of: its certificate chain (leaf first), the chain's private key, and the
/// CA certificates it trusts for its peers (several roots may sit in one bundle, for root rotation).
public struct TLSFiles: Sendable, Hashable {
    public var certificateChain: String?
    public var privateKey: String?
    public var trustBundle: String?

    public init(certificateChain: String? = nil, privateKey: String? = nil, trustBundle: String? = nil) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.trustBundle = trustBundle
    }

    var paths: [String] { [certificateChain, privateKey, trustBundle].compactMap { $0 } }
}

/// How a TLS endpoint speaks beyond its files.
public struct TLSSettings: Sendable, Hashable {
    public enum PeerCertificates: Sendable, Hashable {
        /// Not asked for (a server), or not verified (a client: never use it outside tests).
        case none
        /// Verified against the trust bundle when presented; a server also accepts a peer without one.
        case optional
        /// Required, and verified against the trust bundle (chain and validity; host names are the caller's
        /// business: SPIFFE peers have none).
        case required
    }

    public var minimumVersion: TLSVersion
    /// TLS 1.2 cipher suites offered; nil for BoringSSL's defaults. TLS 1.3 suites are not configurable.
    public var cipherSuites: [NIOTLSCipher]?
    /// ALPN protocols, most preferred first.
    public var applicationProtocols: [String]
    public var peerCertificates: PeerCertificates

    public init(
        minimumVersion: TLSVersion = .tlsv12, cipherSuites: [NIOTLSCipher]? = nil, applicationProtocols: [String] = [],
        peerCertificates: PeerCertificates = .none
    ) {
        self.minimumVersion = minimumVersion
        self.cipherSuites = cipherSuites
        self.applicationProtocols = applicationProtocols
        self.peerCertificates = peerCertificates
    }

    /// The TLS 1.2 suites the zero-trust seed lists (ECDHE with AES-GCM, and the two RSA key-exchange AES-GCM
    /// suites); TLS 1.3 is always offered.
    public static let meshCipherSuites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_RSA_WITH_AES_256_GCM_SHA384, .TLS_RSA_WITH_AES_128_GCM_SHA256,
    ]
}

/// Why TLS files could not be used: which file, and what is wrong with it.
public struct TLSFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "`\(path)`: \(message)" }
}

/// A TLS context made from files, made again when they change: new connections use the newest good context,
/// established ones keep theirs. A change that does not load (a half-written key, a key that does not match its
/// certificate) keeps the previous context and is reported. This is how certificates rotate without a restart.
public final class ReloadingTLSContext: Sendable {
    public enum Role: Sendable { case server, client }

    public let files: TLSFiles
    public let settings: TLSSettings
    public let role: Role

    private struct Loaded {
        var context: NIOSSLContext
        var fingerprint: [Data?]
        var generation: Int
    }
    private let loaded: Mutex<Loaded>

    /// Loads the files now; throws when they do not make a context.
    public init(files: TLSFiles, settings: TLSSettings, role: Role) throws(TLSFileError) {
        self.files = files
        self.settings = settings
        self.role = role
        let fingerprint = Self.read(files)
        loaded = Mutex(Loaded(context: try Self.context(files, settings, role), fingerprint: fingerprint, generation: 1))
    }

    /// The context for the next connection.
    public var current: NIOSSLContext { loaded.withLock { $0.context } }

    /// How many times the files were loaded (1 after start).
    public var generation: Int { loaded.withLock { $0.generation } }

    /// Loads the files again when their bytes changed. Returns whether a new context is in use; throws (keeping
    /// the old one) when the new files do not load.
    @discardableResult
    public func reloadIfChanged() throws(TLSFileError) -> Bool {
        let fingerprint = Self.read(files)
        guard fingerprint != loaded.withLock({ $0.fingerprint }) else { return false }
        let context = try Self.context(files, settings, role)
        loaded.withLock { loaded in
            loaded = Loaded(context: context, fingerprint: fingerprint, generation: loaded.generation + 1)
        }
        return true
    }

    /// Looks at the files every `interval` until cancelled, reporting each reload and each failure.
    public func watch(every interval: Duration, report: @Sendable (Result<Int, TLSFileError>) -> Void) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            do {
                if try reloadIfChanged() { report(.success(generation)) }
            } catch {
                report(.failure(error))
            }
        }
    }

    private static func read(_ files: TLSFiles) -> [Data?] {
        files.paths.map { FileManager.default.contents(atPath: $0) }
    }

    static func context(_ files: TLSFiles, _ settings: TLSSettings, _ role: Role) throws(TLSFileError) -> NIOSSLContext {
        var configuration: TLSConfiguration
        let chain = try files.certificateChain.map { path throws(TLSFileError) in try certificates(path) }
        let key = try files.privateKey.map { path throws(TLSFileError) in try privateKey(path) }
        switch role {
        case .server:
            guard let chain, let key else {
                throw TLSFileError(path: files.certificateChain ?? "", message: "a server needs a certificate and a key")
            }
            configuration = .makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        case .client:
            configuration = .makeClientConfiguration()
            if let chain, let key {
                configuration.certificateChain = chain.map { .certificate($0) }
                configuration.privateKey = .privateKey(key)
            }
        }
        configuration.minimumTLSVersion = settings.minimumVersion
        if let suites = settings.cipherSuites { configuration.cipherSuiteValues = suites }
        configuration.applicationProtocols = settings.applicationProtocols
        if let bundle = files.trustBundle {
            configuration.trustRoots = .certificates(try certificates(bundle))
        }
        switch (role, settings.peerCertificates) {
        case (.server, .none): configuration.certificateVerification = .none
        case (.server, .optional): configuration.certificateVerification = .optionalVerification
        case (.server, .required): configuration.certificateVerification = .noHostnameVerification
        case (.client, .none): configuration.certificateVerification = .none
        case (.client, .optional), (.client, .required): configuration.certificateVerification = .noHostnameVerification
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSFileError(
                path: files.privateKey ?? files.certificateChain ?? "", message: "does not make a TLS context: \(error)")
        }
    }

    static func certificates(_ path: String) throws(TLSFileError) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw TLSFileError(path: path, message: "is not a readable PEM certificate file: \(error)")
        }
        guard !certificates.isEmpty else { throw TLSFileError(path: path, message: "holds no certificate") }
        return certificates
    }

    static func privateKey(_ path: String) throws(TLSFileError) -> NIOSSLPrivateKey {
        do {
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            throw TLSFileError(path: path, message: "is not a readable PEM private key: \(error)")
        }
    }
}
