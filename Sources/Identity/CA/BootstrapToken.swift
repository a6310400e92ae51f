import Crypto
import Foundation
import JOSE
import PolicyCore
import X509
import _CryptoExtras

/// A one-time credential for a workload's first certificate: a JWT signed with the CA's key, naming the SPIFFE ID
/// (`sub`) and DNS names (`dns`) it entitles, with a unique id (`jti`) so the CA can refuse a second use, and an
/// expiry (`exp`). `iss` is the trust domain's SPIFFE ID, `aud` is `warden-ca`.
public struct BootstrapGrant: Sendable, Hashable {
    public let id: String
    public let spiffeID: SPIFFEID
    public let dnsNames: [String]
    public let expiresAt: Date

    public var entitlement: Entitlement { Entitlement(spiffeID: spiffeID, dnsNames: dnsNames) }
}

extension CertificateAuthority {
    public static let tokenAudience = "warden-ca"
    /// Tokens longer than this are refused before decoding.
    public static let maximumTokenSize = 4096
    /// The longest a bootstrap token may live.
    public static let maximumTokenLifetime: TimeInterval = 7 * 24 * 3600

    /// Mints a bootstrap token for `spiffeID` (which must be in this CA's trust domain).
    public func bootstrapToken(
        for spiffeID: SPIFFEID, dnsNames: [String] = [], lifetime: TimeInterval = 3600, now: Date = Date()
    ) throws(CAError) -> (token: String, grant: BootstrapGrant) {
        let request = try LeafRequest(spiffeID: spiffeID, dnsNames: dnsNames)
        guard spiffeID.isMember(of: trustDomain) else {
            throw CAError(.outsideTrustDomain, "`\(spiffeID)` is outside the trust domain `\(trustDomain)` of this CA")
        }
        guard lifetime > 0, lifetime <= Self.maximumTokenLifetime else {
            throw CAError(.badLifetime, "a bootstrap token lives more than 0 s and at most 168h")
        }
        let id = Base64URL.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
        let issuedAt = Int(now.timeIntervalSince1970)
        let expiresAt = issuedAt + Int(lifetime.rounded(.up))
        var claims: [Value: Value] = [
            .string("iss"): .string(SPIFFEID.scheme + trustDomain), .string("aud"): .string(Self.tokenAudience),
            .string("sub"): .string(spiffeID.uri), .string("jti"): .string(id),
            .string("iat"): .number(Number(issuedAt)), .string("exp"): .number(Number(expiresAt)),
        ]
        if !request.dnsNames.isEmpty { claims[.string("dns")] = .array(request.dnsNames.map { .string($0) }) }
        let header: Value = .object([.string("alg"): .string(key.jwsAlgorithm.rawValue), .string("typ"): .string("JWT")])
        let input = Base64URL.encode(JSONWriter.string(header)) + "." + Base64URL.encode(JSONWriter.string(.object(claims)))
        let token = input + "." + Base64URL.encode(try key.signJWS(Array(input.utf8)))
        let grant = BootstrapGrant(
            id: id, spiffeID: spiffeID, dnsNames: request.dnsNames,
            expiresAt: Date(timeIntervalSince1970: TimeInterval(expiresAt)))
        return (token, grant)
    }

    /// Verifies a bootstrap token signed by this CA's key: signature, issuer, audience, expiry (no skew: the CA
    /// made it), and a `sub` in this trust domain. Whether it was used before is the caller's to check with `id`.
    public func verifyBootstrapToken(_ token: String, now: Date = Date()) throws(CAError) -> BootstrapGrant {
        let validation = JWTValidation(
            issuer: SPIFFEID.scheme + trustDomain, audiences: [Self.tokenAudience], clockSkew: 0,
            maximumTokenSize: Self.maximumTokenSize)
        let publicKey = try verificationKey()
        let verified: (jws: JWS, claims: JWTClaims)
        do {
            verified = try JWTVerifier.decode(token, validation: validation)
            try verified.jws.verifySignature(using: publicKey, algorithm: key.jwsAlgorithm)
            try JWTVerifier.checkClaims(verified.claims, validation: validation, now: now.timeIntervalSince1970)
        } catch {
            throw CAError(.badToken, "the bootstrap token is refused: \(error.message)")
        }
        guard let subject = verified.claims.subject, let spiffeID = try? SPIFFEID(parsing: subject),
            spiffeID.isMember(of: trustDomain)
        else {
            throw CAError(.badToken, "the bootstrap token names no SPIFFE ID of `\(trustDomain)`")
        }
        guard case .string(let id)? = verified.claims.payload["jti"], !id.isEmpty, id.utf8.count <= 64 else {
            throw CAError(.badToken, "the bootstrap token has no id (`jti`)")
        }
        guard let expiresAt = verified.claims.expiresAt else {
            throw CAError(.badToken, "the bootstrap token has no expiry (`exp`)")
        }
        var dnsNames: [String] = []
        if case .array(let names)? = verified.claims.payload["dns"] {
            for case .string(let name) in names { dnsNames.append(name) }
        }
        return BootstrapGrant(
            id: id, spiffeID: spiffeID, dnsNames: dnsNames, expiresAt: Date(timeIntervalSince1970: expiresAt))
    }

    /// The CA key's public half as JOSE verifies with it.
    private func verificationKey() throws(CAError) -> VerificationKey {
        switch key.material {
        case .p256(let key):
            return VerificationKey(key.publicKey)
        case .rsa(let key):
            do {
                return try VerificationKey(key.publicKey)
            } catch {
                throw CAError(.badKey, "the CA key cannot verify tokens: \(error.message)")
            }
        }
    }
}
