import PolicyCore
import SwiftASN1
import X509

/// Certificates in PEM, as the CA's files and Istio's certificate API carry them.
public enum PEMCertificates {
    /// At most this many certificates are read from one PEM text (a chain or a bundle).
    public static let maximumCount = 32
    /// PEM texts longer than this are refused before parsing.
    public static let maximumSize = 256 * 1024

    /// Every `CERTIFICATE` block of `text`, in order. Other blocks are refused, so a key never passes for a
    /// certificate; an empty text is an error.
    public static func parse(_ text: String, what: String = "PEM text") throws(CAError) -> [Certificate] {
        guard text.utf8.count <= maximumSize else {
            throw CAError(.badPEM, "\(what) is larger than \(maximumSize) bytes")
        }
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw CAError(.badPEM, "\(what) is not PEM: \(error)")
        }
        guard !documents.isEmpty else { throw CAError(.badPEM, "\(what) holds no certificate") }
        guard documents.count <= maximumCount else {
            throw CAError(.badPEM, "\(what) holds more than \(maximumCount) PEM blocks")
        }
        var certificates: [Certificate] = []
        for (index, document) in documents.enumerated() {
            guard document.discriminator == "CERTIFICATE" else {
                throw CAError(.badPEM, "\(what): block \(index + 1) is `\(document.discriminator)`, not `CERTIFICATE`")
            }
            do {
                certificates.append(try Certificate(derEncoded: document.derBytes))
            } catch {
                throw CAError(.badPEM, "\(what): certificate \(index + 1) cannot be read: \(error)")
            }
        }
        return certificates
    }

    /// The certificates as consecutive PEM blocks, each ending with a newline.
    public static func pem(_ certificates: [Certificate]) -> String {
        certificates.map(pem).joined()
    }

    /// The certificate's DER bytes.
    public static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    public static func pem(_ certificate: Certificate) -> String {
        // Serializing a parsed or freshly signed certificate cannot fail; an empty string would fail every reader.
        guard let document = try? certificate.serializeAsPEM() else { return "" }
        return document.pemString + "\n"
    }
}

/// The names a certificate carries in its subject alternative names, read once.
public struct CertificateNames: Sendable, Hashable {
    public var uris: [String] = []
    public var dnsNames: [String] = []
    public var ipAddresses: [IPAddressBytes] = []
    /// Names of other kinds (email, directory names, other names): a workload is never entitled to these.
    public var others: [String] = []

    public init() {}

    public init(_ certificate: Certificate) throws(CAError) {
        let names: SubjectAlternativeNames?
        do {
            names = try certificate.extensions.subjectAlternativeNames
        } catch {
            throw CAError(.badCSR, "the subject alternative names cannot be read: \(error)")
        }
        self.init(names.map { Array($0) } ?? [])
    }

    public init(_ names: [GeneralName]) {
        for name in names {
            switch name {
            case .uniformResourceIdentifier(let uri): uris.append(uri)
            case .dnsName(let dns): dnsNames.append(dns)
            case .ipAddress(let octets): ipAddresses.append(IPAddressBytes(Array(octets.bytes)))
            default: others.append(String(describing: name))
            }
        }
    }

    public var isEmpty: Bool { uris.isEmpty && dnsNames.isEmpty && ipAddresses.isEmpty && others.isEmpty }
}

/// An IP address as certificates hold it: 4 or 16 bytes in network order.
public struct IPAddressBytes: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The address of dotted-quad or IPv6 text; nil for anything else.
    public init?(_ text: String) {
        guard let address = IPAddressText.parse(text) else { return nil }
        bytes = address
    }

    public var description: String { IPAddressText.format(bytes) }

    var generalName: GeneralName { .ipAddress(ASN1OctetString(contentBytes: bytes[...])) }
}

/// IP address text ⇄ certificate bytes, through PolicyCore's parser.
enum IPAddressText {
    static func parse(_ text: String) -> [UInt8]? {
        guard let address = IPAddress(text) else { return nil }
        let count = address.family == .v4 ? 4 : 16
        return (0..<count).map { UInt8(truncatingIfNeeded: address.bits >> UInt128(8 * (count - 1 - $0))) }
    }

    static func format(_ bytes: [UInt8]) -> String {
        var bits: UInt128 = 0
        for byte in bytes { bits = bits << 8 | UInt128(byte) }
        switch bytes.count {
        case 4: return IPAddress(v4: UInt32(truncatingIfNeeded: bits)).description
        case 16: return IPAddress(v6: bits).description
        default: return "<\(bytes.count)-byte address>"
        }
    }
}
