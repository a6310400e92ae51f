import Crypto
import Foundation
import Identity
import NIOCore
import NIOSSL
import PolicyCore
import SwiftASN1
import Synchronization
import X509

/// Verifies TLS peers' certificate chains with Identity's `PeerCertificateVerifier` (a chain to a root of the trust
/// bundle, validity, the extended key usage, exactly one SPIFFE URI of the trust domain), from inside the TLS
/// handshake: a chain that fails ends the handshake with an alert, and the reason is counted. The trust bundle file
/// is read again when it changes, with the certificates.
public final class PeerVerification: Sendable {
    public let trustBundlePath: String
    public let trustDomain: String
    public let usage: PeerCertificateVerifier.Usage
    private struct Loaded {
        var verifier: PeerCertificateVerifier
        var bytes: Data
    }
    private let loaded: Mutex<Loaded>

    public struct LoadError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(trustBundlePath: String, trustDomain: String, usage: PeerCertificateVerifier.Usage) throws(LoadError) {
        self.trustBundlePath = trustBundlePath
        self.trustDomain = trustDomain
        self.usage = usage
        let (verifier, bytes) = try Self.load(trustBundlePath, trustDomain: trustDomain, usage: usage)
        loaded = Mutex(Loaded(verifier: verifier, bytes: bytes))
    }

    private static func load(
        _ path: String, trustDomain: String, usage: PeerCertificateVerifier.Usage
    ) throws(LoadError) -> (PeerCertificateVerifier, Data) {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw LoadError(description: "cannot read the trust bundle `\(path)`")
        }
        do {
            let bundle = try TrustBundle(trustDomain: trustDomain, pem: String(decoding: bytes, as: UTF8.self))
            return (PeerCertificateVerifier(bundle: bundle, usage: usage), bytes)
        } catch {
            throw LoadError(description: "the trust bundle `\(path)`: \(error)")
        }
    }

    /// Reads the bundle again when its bytes changed; returns whether a new one is in use.
    @discardableResult
    public func reloadIfChanged() throws(LoadError) -> Bool {
        guard let bytes = FileManager.default.contents(atPath: trustBundlePath),
            bytes != loaded.withLock({ $0.bytes })
        else { return false }
        let (verifier, read) = try Self.load(trustBundlePath, trustDomain: trustDomain, usage: usage)
        loaded.withLock { $0 = Loaded(verifier: verifier, bytes: read) }
        return true
    }

    public var verifier: PeerCertificateVerifier { loaded.withLock { $0.verifier } }

    /// Verifies a chain as a TLS peer presented it (leaf first).
    public func verify(_ presented: [NIOSSLCertificate], on eventLoop: any EventLoop) -> EventLoopFuture<VerifiedPeer> {
        let certificates: [Certificate]
        do {
            certificates = try presented.map { try Certificate(derEncoded: $0.toDERBytes()) }
        } catch {
            return eventLoop.makeFailedFuture(PeerCertificateError(.invalidChain("a certificate cannot be decoded")))
        }
        let verifier = self.verifier
        return eventLoop.makeFutureWithTask {
            try await verifier.verify(certificates) as VerifiedPeer
        }
    }

    /// Verifies a TLS server's chain (leaf first) and that it names `expected` — with nil, any SPIFFE ID of the trust
    /// domain, which the verifier requires of every peer. A server naming another identity fails with
    /// `ServerIdentityMismatch`.
    public func verifyServer(
        _ presented: [NIOSSLCertificate], expected: SPIFFEID?, on eventLoop: any EventLoop
    ) -> EventLoopFuture<VerifiedPeer> {
        verify(presented, on: eventLoop).flatMapThrowing { peer in
            if let expected, peer.spiffeID != expected {
                throw ServerIdentityMismatch(found: peer.spiffeID, expected: expected)
            }
            return peer
        }
    }

    /// Lowercase hex SHA-256 of a certificate's DER bytes (the `Hash` of `x-forwarded-client-cert`).
    public static func hash(_ certificate: Certificate) -> String {
        var serializer = DER.Serializer()
        guard (try? serializer.serialize(certificate)) != nil else { return "" }
        return LowercaseHex.encode(SHA256.hash(data: serializer.serializedBytes))
    }
}

/// Where one connection keeps what its handshake's verification found.
final class VerifiedPeerBox: @unchecked Sendable {
    var peer: VerifiedPeer?
    var failure: PeerCertificateError?
}

/// A TLS server proved an identity other than the one expected of it.
public struct ServerIdentityMismatch: Error, Sendable, CustomStringConvertible {
    public var found: SPIFFEID
    public var expected: SPIFFEID

    public var description: String { "the server is `\(found.uri)`, not the expected `\(expected.uri)`" }
}

