import Foundation
@testable import Identity
import PolicyCore
import SwiftASN1
import Testing
import WardenTesting
import X509

@Suite("Certificate authority")
struct CertificateAuthorityTests {
    static let sleep = try! SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/sleep")
    /// Now, in whole seconds as certificates keep times.
    static var now: Date { Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)) }

    @Test func aRootCarriesCAExtensionsAndItsTrustDomain() throws {
        let ca = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey())
        let root = ca.certificate
        #expect(root.issuer == root.subject)
        #expect(root.publicKey.isValidSignature(root.signature, for: root))
        let constraints = try #require(try root.extensions.basicConstraints)
        #expect(constraints == .isCertificateAuthority(maxPathLength: nil))
        #expect(root.extensions[oid: .X509ExtensionID.basicConstraints]?.critical == true)
        let usage = try #require(try root.extensions.keyUsage)
        #expect(usage.keyCertSign && usage.cRLSign)
        #expect(root.extensions[oid: .X509ExtensionID.keyUsage]?.critical == true)
        #expect(try root.extensions.subjectKeyIdentifier != nil)
        #expect(CertificateAuthority.trustDomain(of: root) == "cluster.local")
        let lifetime = root.notValidAfter.timeIntervalSince(Date())
        #expect(abs(lifetime - CertificateAuthority.defaultCALifetime) < 120)
    }

    @Test func aLeafNamesOneSPIFFEIDWithBothUsages() throws {
        let ca = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey())
        let key = try SigningKey()
        let now = Self.now
        let request = try LeafRequest(
            spiffeID: Self.sleep, dnsNames: ["Sleep.Default.svc"], ipAddresses: [IPAddressBytes("10.0.0.7")!])
        let issued = try ca.issue(request, publicKey: key.publicKey, now: now)
        let leaf = issued.certificate
        let names = try CertificateNames(leaf)
        #expect(names.uris == ["spiffe://cluster.local/ns/default/sa/sleep"])
        #expect(names.dnsNames == ["sleep.default.svc"])
        #expect(names.ipAddresses.map(\.description) == ["10.0.0.7"])
        let usages = try #require(try leaf.extensions.extendedKeyUsage)
        #expect(usages.contains(.serverAuth) && usages.contains(.clientAuth))
        let keyUsage = try #require(try leaf.extensions.keyUsage)
        #expect(keyUsage.digitalSignature && keyUsage.keyEncipherment && !keyUsage.keyCertSign)
        #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
        // 24 h by default, backdated by 60 s for clock skew.
        #expect(leaf.notValidBefore == now.addingTimeInterval(-60))
        #expect(leaf.notValidAfter == now.addingTimeInterval(CertificateAuthority.defaultLeafLifetime))
        #expect(issued.intermediates.isEmpty)
        #expect(issued.istioChain.count == 2)
        let other = try ca.issue(request, publicKey: key.publicKey, now: now)
        #expect(other.certificate.serialNumber != leaf.serialNumber)
    }

    @Test func aLeafNeverOutlivesItsCA() throws {
        let ca = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey(), lifetime: 3600)
        let issued = try ca.issue(LeafRequest(spiffeID: Self.sleep, lifetime: 24 * 3600), publicKey: SigningKey().publicKey)
        #expect(issued.certificate.notValidAfter == ca.certificate.notValidAfter)
        let expired = Date().addingTimeInterval(7200)
        #expect(throws: CAError(.expired, "the CA expired at \(CertificateText.time(ca.certificate.notValidAfter)): make a new one")) {
            try ca.issue(LeafRequest(spiffeID: Self.sleep), publicKey: SigningKey().publicKey, now: expired)
        }
    }

    @Test func aShortLeafIsBackdatedByATenthOfItsLifetime() throws {
        let ca = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey())
        let now = Self.now
        let issued = try ca.issue(LeafRequest(spiffeID: Self.sleep, lifetime: 20), publicKey: SigningKey().publicKey, now: now)
        #expect(issued.certificate.notValidBefore == now.addingTimeInterval(-2))
        #expect(issued.certificate.notValidAfter == now.addingTimeInterval(20))
    }

    @Test func anIDOutsideTheTrustDomainIsRefused() throws {
        let ca = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey())
        let other = try SPIFFEID(parsing: "spiffe://example.org/ns/default/sa/sleep")
        let error = #expect(throws: CAError.self) {
            try ca.issue(LeafRequest(spiffeID: other), publicKey: SigningKey().publicKey)
        }
        #expect(error?.code == .outsideTrustDomain)
        #expect(error?.message == "`spiffe://example.org/ns/default/sa/sleep` is outside the trust domain `cluster.local` of this CA")
        #expect(throws: CAError.self) { try ca.bootstrapToken(for: other) }
        #expect(throws: CAError.self) { try CertificateAuthority.root(trustDomain: "Not A Domain", key: SigningKey()) }
    }

    @Test func anIntermediateChainsToTheRootAndSignsNoCAs() async throws {
        let root = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey(.rsa2048))
        let intermediate = try root.intermediate(key: SigningKey(), lifetime: 3600)
        #expect(intermediate.chain.count == 2)
        #expect(intermediate.intermediates == [intermediate.certificate])
        #expect(try intermediate.certificate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(intermediate.certificate.notValidAfter <= root.certificate.notValidAfter)
        let issued = try intermediate.issue(LeafRequest(spiffeID: Self.sleep), publicKey: SigningKey().publicKey)
        #expect(issued.intermediates == [intermediate.certificate])
        #expect(issued.istioChain.count == 3)
        let peer = try await PeerCertificateVerifier(bundle: root.bundle, usage: .clientAuth)
            .verify([issued.certificate] + issued.intermediates)
        #expect(peer.spiffeID == Self.sleep)
        #expect(peer.chain.count == 3)
        // The CA's parts are checked when loaded: a key of another CA does not fit.
        #expect(throws: CAError.self) {
            try CertificateAuthority(certificate: intermediate.certificate, key: root.key, chain: intermediate.chain, bundle: root.bundle)
        }
    }

    @Test func keysReadBackFromPEM() throws {
        for algorithm in [KeyAlgorithm.ecdsaP256, .rsa2048] {
            let key = try SigningKey(algorithm)
            #expect(key.pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
            #expect(try SigningKey(pem: key.pem).publicKey == key.publicKey)
        }
        #expect(throws: CAError.self) { try SigningKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n") }
    }

    @Test func aBundleHoldsOnlyCACertificates() throws {
        let factory = try CertificateFactory()
        let leaf = try factory.leaf("spiffe://cluster.local/ns/a/sa/b")
        #expect(throws: CAError.self) { try TrustBundle(trustDomain: "cluster.local", roots: [leaf.certificate]) }
        #expect(throws: CAError.self) { try TrustBundle(trustDomain: "cluster.local", roots: []) }
        let twice = try TrustBundle(trustDomain: "cluster.local", pem: factory.bundle.pem + factory.bundle.pem)
        #expect(twice.roots.count == 1)
    }
}

@Suite("CSR signing")
struct CSRSigningTests {
    static let sleep = CertificateAuthorityTests.sleep
    let ca = try! CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey())

    @Test func theCertificateNamesTheCallerWhateverTheCSRAsks() throws {
        let key = try SigningKey()
        // No names asked: the caller's SPIFFE ID is given anyway.
        let bare = try CSRBuilder.pem(key: key, spiffeID: nil)
        let issued = try ca.sign(csrPEM: bare, for: Entitlement(spiffeID: Self.sleep))
        #expect(try CertificateNames(issued.certificate).uris == [Self.sleep.uri])
        #expect(issued.certificate.publicKey == key.publicKey)
        // Its own ID and an entitled DNS name: granted.
        let asked = try CSRBuilder.pem(key: key, spiffeID: Self.sleep, dnsNames: ["sleep.default.svc"])
        let entitled = Entitlement(spiffeID: Self.sleep, dnsNames: ["sleep.default.svc"])
        let named = try ca.sign(csrPEM: asked, for: entitled)
        #expect(try CertificateNames(named.certificate).dnsNames == ["sleep.default.svc"])
    }

    @Test func anotherIdentityOrAnUnentitledNameIsRefused() throws {
        let key = try SigningKey()
        let other = try SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/admin")
        let forOther = try CSRBuilder.pem(key: key, spiffeID: other)
        let mismatch = #expect(throws: CAError.self) { try ca.sign(csrPEM: forOther, for: Entitlement(spiffeID: Self.sleep)) }
        #expect(mismatch?.code == .identityMismatch)
        #expect(mismatch?.message == "the CSR asks for `spiffe://cluster.local/ns/default/sa/admin`, but the caller is `spiffe://cluster.local/ns/default/sa/sleep`")
        let withName = try CSRBuilder.pem(key: key, spiffeID: Self.sleep, dnsNames: ["db.internal"])
        let unentitled = #expect(throws: CAError.self) { try ca.sign(csrPEM: withName, for: Entitlement(spiffeID: Self.sleep)) }
        #expect(unentitled?.code == .nameNotEntitled)
    }

    @Test func aCSRWhoseSignatureFailsIsRefused() throws {
        let pem = try CSRBuilder.pem(key: SigningKey(), spiffeID: Self.sleep)
        var der = try PEMDocument(pemString: pem).derBytes
        der[der.count - 1] ^= 0x01
        let tampered = PEMDocument(type: "CERTIFICATE REQUEST", derBytes: der).pemString
        let error = #expect(throws: CAError.self) { try ca.sign(csrPEM: tampered, for: Entitlement(spiffeID: Self.sleep)) }
        #expect(error?.code == .csrSignature)
        let garbage = #expect(throws: CAError.self) { try ca.sign(csrPEM: "hello", for: Entitlement(spiffeID: Self.sleep)) }
        #expect(garbage?.code == .badCSR)
        let huge = String(repeating: "A", count: CertificateAuthority.maximumCSRSize + 1)
        #expect(throws: CAError.self) { try ca.sign(csrPEM: huge, for: Entitlement(spiffeID: Self.sleep)) }
    }

    @Test func theRequestedValidityIsCapped() throws {
        let csr = try CSRBuilder.pem(key: SigningKey(), spiffeID: Self.sleep)
        let policy = LifetimePolicy(defaultLifetime: 3600, maximumLifetime: 7200)
        let now = CertificateAuthorityTests.now
        func lifetime(_ requested: TimeInterval) throws -> TimeInterval {
            let issued = try ca.sign(csrPEM: csr, for: Entitlement(spiffeID: Self.sleep), requestedLifetime: requested,
                                     lifetimes: policy, now: now)
            return issued.certificate.notValidAfter.timeIntervalSince(now)
        }
        #expect(try lifetime(0) == 3600)
        #expect(try lifetime(600) == 600)
        #expect(try lifetime(1_000_000) == 7200)
        #expect(try lifetime(-5) == 3600)
    }
}

@Suite("Bootstrap tokens")
struct BootstrapTokenTests {
    static let sleep = CertificateAuthorityTests.sleep

    @Test func aTokenVerifiesWithItsCAOnlyAndUntilItExpires() throws {
        for algorithm in [KeyAlgorithm.ecdsaP256, .rsa2048] {
            let ca = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey(algorithm))
            let now = Date()
            let minted = try ca.bootstrapToken(for: Self.sleep, dnsNames: ["sleep.default.svc"], lifetime: 600, now: now)
            let grant = try ca.verifyBootstrapToken(minted.token, now: now)
            #expect(grant == minted.grant)
            #expect(grant.entitlement.dnsNames == ["sleep.default.svc"])
            let expired = #expect(throws: CAError.self) {
                try ca.verifyBootstrapToken(minted.token, now: now.addingTimeInterval(601))
            }
            #expect(expired?.message == "the bootstrap token is refused: jwt is expired")
            let other = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey(algorithm))
            let foreign = #expect(throws: CAError.self) { try other.verifyBootstrapToken(minted.token, now: now) }
            #expect(foreign?.code == .badToken)
        }
    }

    @Test func tamperedAndMalformedTokensAreRefused() throws {
        let ca = try CertificateAuthority.root(trustDomain: "cluster.local", key: SigningKey())
        let token = try ca.bootstrapToken(for: Self.sleep).token
        let admin = try ca.bootstrapToken(for: SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/admin")).token
        let parts = token.split(separator: ".")
        let forged = parts[0] + "." + admin.split(separator: ".")[1] + "." + parts[2]
        #expect(throws: CAError.self) { try ca.verifyBootstrapToken(String(forged)) }
        #expect(throws: CAError.self) { try ca.verifyBootstrapToken("not.a.token") }
        #expect(throws: CAError.self) { try ca.verifyBootstrapToken(String(repeating: "a", count: 5000)) }
        #expect(throws: CAError.self) { try ca.bootstrapToken(for: Self.sleep, lifetime: 8 * 24 * 3600) }
        let first = try ca.bootstrapToken(for: Self.sleep).grant.id
        #expect(try ca.bootstrapToken(for: Self.sleep).grant.id != first)
    }
}
