import Foundation
import PolicyCore
import SwiftASN1
import X509

/// A TLS client's leaf certificate that the TLS library has already verified against a listener's CA certificates
/// (chain, validity, the client usage): who it names, by the rules `PeerCertificateVerifier` applies to a leaf,
/// and the document OPA's `system.authz` policies read as `input.client_certificates[i]`.
public struct ClientCertificate: Sendable {
    public let certificate: Certificate
    /// The certificate as it came (DER).
    public let der: [UInt8]

    public init(derEncoded der: [UInt8]) throws {
        certificate = try Certificate(derEncoded: der)
        self.der = der
    }

    /// The client's SPIFFE ID, or why it has none: the leaf is not a CA, allows `clientAuth`, and carries exactly
    /// one URI SAN, a SPIFFE ID naming a workload. Any trust domain: the CA the chain verified against, and the
    /// exact IDs an allow-list or a policy names, decide which are accepted.
    public var spiffeID: Result<SPIFFEID, PeerCertificateError> {
        SVIDPolicy.leafIdentity(certificate, usage: .clientAuth, trustDomain: nil)
    }

    /// The client's name: its SPIFFE ID (`spiffe://…`) when it has one, else its subject in RFC 4514 form
    /// (`CN=ops,O=Example`), as OPA names a TLS client.
    public var identity: String {
        if case .success(let id) = spiffeID { return id.uri }
        return certificate.subject.description
    }

    /// The certificate as OPA gives it to `system.authz` (Go's `x509.Certificate` marshalled as JSON), with the
    /// members policies read: `Subject` and `Issuer` (`CommonName`, `Organization`, …), `SerialNumber`,
    /// `NotBefore`, `NotAfter`, `IsCA`, `DNSNames`, `EmailAddresses`, `IPAddresses`, `URIs` (`Scheme`, `Host`,
    /// `Path`, …), `Version` and `Raw` (the DER, base64).
    public var opaDocument: Value {
        let names = (try? CertificateNames(certificate)) ?? CertificateNames()
        var emails: [String] = []
        if let alternatives = try? certificate.extensions.subjectAlternativeNames {
            for case .rfc822Name(let email) in alternatives { emails.append(email) }
        }
        var serial = BigInteger(0)
        for byte in certificate.serialNumber.bytes { serial = (serial << 8) + BigInteger(Int(byte)) }
        return .object([
            "Raw": .string(Data(der).base64EncodedString()),
            "Version": .int(certificate.version == .v3 ? 3 : certificate.version == .v1 ? 1 : 2),
            "SerialNumber": .number(Number(serial)),
            "Subject": Self.name(certificate.subject),
            "Issuer": Self.name(certificate.issuer),
            "NotBefore": .string(CertificateText.time(certificate.notValidBefore)),
            "NotAfter": .string(CertificateText.time(certificate.notValidAfter)),
            "IsCA": .bool(CertificateProfile.isCA(certificate)),
            "DNSNames": Self.list(names.dnsNames),
            "EmailAddresses": Self.list(emails),
            "IPAddresses": Self.list(names.ipAddresses.map(\.description)),
            "URIs": names.uris.isEmpty ? .null : .array(names.uris.map(Self.uri)),
        ])
    }

    /// Go's `pkix.Name`: the attributes as lists (null when absent, as Go marshals an empty slice), the serial
    /// number and common name as strings.
    static func name(_ name: DistinguishedName) -> Value {
        var lists: [String: [String]] = [:]
        var single: [String: String] = ["CommonName": "", "SerialNumber": ""]
        for rdn in name {
            for attribute in rdn {
                let value = String(attribute.value) ?? String(describing: attribute.value)
                switch attribute.type {
                case .RDNAttributeType.commonName: single["CommonName"] = value
                case Self.serialNumberAttribute: single["SerialNumber"] = value
                case .RDNAttributeType.countryName: lists["Country", default: []].append(value)
                case .RDNAttributeType.organizationName: lists["Organization", default: []].append(value)
                case .RDNAttributeType.organizationalUnitName: lists["OrganizationalUnit", default: []].append(value)
                case .RDNAttributeType.localityName: lists["Locality", default: []].append(value)
                case .RDNAttributeType.stateOrProvinceName: lists["Province", default: []].append(value)
                case .RDNAttributeType.streetAddress: lists["StreetAddress", default: []].append(value)
                case Self.postalCodeAttribute: lists["PostalCode", default: []].append(value)
                default: break
                }
            }
        }
        var out: [String: Value] = single.mapValues(Value.string)
        for key in ["Country", "Organization", "OrganizationalUnit", "Locality", "Province", "StreetAddress", "PostalCode"] {
            out[key] = list(lists[key] ?? [])
        }
        return .object(out)
    }

    static let serialNumberAttribute: ASN1ObjectIdentifier = [2, 5, 4, 5]
    static let postalCodeAttribute: ASN1ObjectIdentifier = [2, 5, 4, 17]

    static func list(_ items: [String]) -> Value {
        items.isEmpty ? .null : .array(items.map(Value.string))
    }

    /// Go's `url.URL` for a URI SAN: `spiffe://cluster.local/ns/a/sa/b` is `{"Scheme": "spiffe", "Host":
    /// "cluster.local", "Path": "/ns/a/sa/b", …}`.
    static func uri(_ text: String) -> Value {
        let parts = URLComponents(string: text)
        return .object([
            "Scheme": .string(parts?.scheme ?? ""),
            "Opaque": .string(""),
            "User": .null,
            "Host": .string(parts?.percentEncodedHost ?? ""),
            "Path": .string(parts?.path ?? text),
            "RawPath": .string(""),
            "OmitHost": .bool(false),
            "ForceQuery": .bool(false),
            "RawQuery": .string(parts?.percentEncodedQuery ?? ""),
            "Fragment": .string(parts?.fragment ?? ""),
            "RawFragment": .string(""),
        ])
    }
}
