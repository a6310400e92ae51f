import Foundation
import Identity
import PolicyCore
import Testing
import WardenTesting
import X509

@Suite("Peer certificate verification")
struct PeerCertificateVerifierTests {
    static let sleep = "spiffe://cluster.local/ns/default/sa/sleep"
    let factory = try! CertificateFactory()

    func reason(
        _ variant: CertificateFactory.Variant, usage: PeerCertificateVerifier.Usage = .clientAuth
    ) async throws -> PeerCertificateError.Reason? {
        let leaf = try factory.leaf(Self.sleep, variant: variant)
        do {
            _ = try await PeerCertificateVerifier(bundle: factory.bundle, usage: usage).verify(leaf.chain)
            return nil
        } catch {
            return error.reason
        }
    }

    @Test func aValidLeafGivesItsSPIFFEID() async throws {
        let leaf = try factory.leaf(Self.sleep)
        for usage in [PeerCertificateVerifier.Usage.clientAuth, .serverAuth] {
            let peer = try await PeerCertificateVerifier(bundle: factory.bundle, usage: usage).verify(leaf.chain)
            #expect(peer.spiffeID.uri == Self.sleep)
            #expect(peer.spiffeID.principal == "cluster.local/ns/default/sa/sleep")
            #expect(peer.chain == [leaf.certificate, factory.ca.certificate])
        }
    }

    @Test func eachBrokenLeafIsRefusedWithItsReason() async throws {
        guard case .expired(_, let notAfter)? = try await reason(.expired) else {
            Issue.record("an expired leaf was not refused as expired")
            return
        }
        #expect(notAfter < Date())
        guard case .notYetValid? = try await reason(.notYetValid) else {
            Issue.record("a not-yet-valid leaf was not refused as such")
            return
        }
        #expect(try await reason(.serverAuthOnly, usage: .clientAuth) == .wrongUsage(.clientAuth))
        #expect(try await reason(.serverAuthOnly, usage: .serverAuth) == nil)
        #expect(try await reason(.clientAuthOnly, usage: .serverAuth) == .wrongUsage(.serverAuth))
        #expect(try await reason(.noExtendedKeyUsage) == .wrongUsage(.clientAuth))
        #expect(try await reason(.noURI) == .noSPIFFEID)
        let two = [Self.sleep, "spiffe://cluster.local/ns/default/sa/admin"]
        #expect(try await reason(.uris(two)) == .severalURIs(two))
        #expect(try await reason(.uris([Self.sleep, "https://example.com/"])) == .severalURIs([Self.sleep, "https://example.com/"]))
        guard case .invalidSPIFFEID? = try await reason(.uris(["https://example.com/"])) else {
            Issue.record("a non-SPIFFE URI was not refused as an invalid SPIFFE ID")
            return
        }
        let outside = try SPIFFEID(parsing: "spiffe://example.org/ns/default/sa/sleep")
        #expect(try await reason(.uris([outside.uri])) == .outsideTrustDomain(outside, trustDomain: "cluster.local"))
        #expect(try await reason(.certificateAuthority) == .leafIsCA)
    }

    @Test func aLeafOfAnotherCAIsAnUnknownAuthority() async throws {
        let other = try CertificateFactory()
        let leaf = try other.leaf(Self.sleep)
        let error = await #expect(throws: PeerCertificateError.self) {
            try await PeerCertificateVerifier(bundle: factory.bundle, usage: .clientAuth).verify(leaf.chain)
        }
        #expect(error?.reason == .unknownAuthority)
        #expect(error?.code == "peer_unknown_authority")
        #expect(error?.message == "the certificate is not issued by a CA of the trust bundle")
        let none = await #expect(throws: PeerCertificateError.self) {
            try await PeerCertificateVerifier(bundle: factory.bundle, usage: .clientAuth).verify([])
        }
        #expect(none?.reason == .noCertificate)
    }

    @Test func anIntermediateLeafNeedsItsIntermediate() async throws {
        let intermediate = try factory.intermediate()
        let leaf = try intermediate.leaf(Self.sleep)
        let verifier = PeerCertificateVerifier(bundle: factory.bundle, usage: .clientAuth)
        #expect(try await verifier.verify(leaf.chain).chain.count == 3)
        let error = await #expect(throws: PeerCertificateError.self) { try await verifier.verify([leaf.certificate]) }
        #expect(error?.reason == .unknownAuthority)
        let expired = try intermediate.leaf(Self.sleep, variant: .expired)
        let late = await #expect(throws: PeerCertificateError.self) { try await verifier.verify(expired.chain) }
        guard case .expired? = late?.reason else {
            Issue.record("an expired leaf under an intermediate was refused as \(String(describing: late))")
            return
        }
    }

    @Test func aBundleOfTwoRootsVerifiesChainsToEither() async throws {
        let old = factory
        let new = try CertificateFactory()
        let bundle = try old.bundle.adding(new.bundle.roots)
        #expect(bundle.roots.count == 2)
        let verifier = PeerCertificateVerifier(bundle: bundle, usage: .clientAuth)
        #expect(try await verifier.verify(old.leaf(Self.sleep).chain).spiffeID.uri == Self.sleep)
        #expect(try await verifier.verify(new.leaf(Self.sleep).chain).spiffeID.uri == Self.sleep)
        #expect(try await verifier.verify(new.intermediate().leaf(Self.sleep).chain).chain.count == 3)
        let stranger = try CertificateFactory().leaf(Self.sleep)
        await #expect(throws: PeerCertificateError(.unknownAuthority)) { try await verifier.verify(stranger.chain) }
    }

    @Test func theVerificationTimeIsTheCallers() async throws {
        let leaf = try factory.leaf(Self.sleep, lifetime: 600)
        let verifier = PeerCertificateVerifier(bundle: factory.bundle, usage: .clientAuth)
        #expect(try await verifier.verify(leaf.chain, now: Date().addingTimeInterval(300)).spiffeID.uri == Self.sleep)
        let error = await #expect(throws: PeerCertificateError.self) {
            try await verifier.verify(leaf.chain, now: Date().addingTimeInterval(900))
        }
        guard case .expired? = error?.reason else {
            Issue.record("verifying after the leaf's expiry gave \(String(describing: error))")
            return
        }
    }
}

/// A client leaf the TLS library already verified: the leaf's own rules decide its SPIFFE ID, and the subject names
/// a client without one.
@Suite struct ClientCertificateTests {
    let factory = try! CertificateFactory(trustDomain: "example.org")

    func client(_ variant: CertificateFactory.Variant) throws -> ClientCertificate {
        let leaf = try factory.leaf("spiffe://example.org/ns/ops/sa/deployer", variant: variant)
        return try ClientCertificate(derEncoded: PEMCertificates.der(leaf.certificate))
    }

    @Test func aSPIFFELeafOfAnyTrustDomainIsItsID() throws {
        let certificate = try client(.valid)
        #expect(try certificate.spiffeID.get().uri == "spiffe://example.org/ns/ops/sa/deployer")
        #expect(certificate.identity == "spiffe://example.org/ns/ops/sa/deployer")
    }

    @Test func aLeafBreakingTheRulesHasNoSPIFFEIDAndIsNamedByItsSubject() throws {
        for (variant, code) in [
            (CertificateFactory.Variant.serverAuthOnly, "peer_wrong_usage"), (.certificateAuthority, "peer_leaf_is_ca"),
            (.noURI, "peer_no_spiffe_id"), (.uris(["spiffe://a/x", "spiffe://b/y"]), "peer_several_uris"),
        ] {
            let certificate = try client(variant)
            guard case .failure(let error) = certificate.spiffeID else {
                Issue.record("\(variant) gave a SPIFFE ID")
                continue
            }
            #expect(error.code == code, "\(variant)")
            #expect(certificate.identity == certificate.certificate.subject.description)
        }
        #expect(try client(.noURI).identity == "CN=no names")
    }
}
