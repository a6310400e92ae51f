import Foundation
import PolicyCore
import SwiftProtobuf
import Testing
@testable import ExtAuthz

/// `CheckRequest(checkRequestBytes:)` must give swift-protobuf's answer for every input: the same message, or an
/// error where swift-protobuf throws one. The wire reader must also take the common requests itself.
@Suite struct CheckRequestDecodingTests {
    typealias Context = Envoy_Service_Auth_V3_AttributeContext

    /// A sidecar's check with every field the reader reads by hand, and the submessages it hands on.
    static var full: Envoy_Service_Auth_V3_CheckRequest {
        var request = Envoy_Service_Auth_V3_CheckRequest()
        request.attributes.source.principal = "spiffe://cluster.local/ns/default/sa/productpage"
        request.attributes.source.service = "productpage"
        request.attributes.source.certificate = "-----BEGIN%20CERTIFICATE-----"
        request.attributes.source.labels = ["app": "productpage", "version": "v1"]
        request.attributes.source.address.socketAddress.address = "10.1.2.3"
        request.attributes.source.address.socketAddress.portValue = 43210
        request.attributes.source.address.socketAddress.protocol = .udp
        request.attributes.source.address.socketAddress.resolverName = "r"
        request.attributes.source.address.socketAddress.ipv4Compat = true
        request.attributes.destination.address.socketAddress.address = "10.1.2.9"
        request.attributes.destination.address.socketAddress.namedPort = "http"
        request.attributes.destination.principal = "spiffe://cluster.local/ns/default/sa/details"
        request.attributes.request.time.seconds = 1_700_000_000
        request.attributes.request.time.nanos = 5
        var http = Context.HttpRequest()
        http.id = "5d1d4a1e"
        http.method = "POST"
        http.headers = [":authority": "details:9080", ":path": "/api?q=1", "user-agent": "café/1.0", "x-empty": ""]
        http.path = "/api?q=1"
        http.host = "details:9080"
        http.scheme = "https"
        http.query = "q=1"
        http.fragment = "f"
        http.size = -1
        http.protocol = "HTTP/2"
        http.body = "{\"a\":1}"
        http.rawBody = Data([0, 1, 2, 255])
        request.attributes.request.http = http
        request.attributes.contextExtensions = ["destination.namespace": "default", "destination.workload_labels": "app=details"]
        request.attributes.tlsSession.sni = "details.default.svc"
        var claims = Google_Protobuf_Struct()
        claims.fields["sub"] = Google_Protobuf_Value(stringValue: "alice")
        claims.fields["exp"] = Google_Protobuf_Value(numberValue: 1.7e9)
        claims.fields["admin"] = Google_Protobuf_Value(boolValue: true)
        var none = Google_Protobuf_Value()
        none.nullValue = .nullValue
        claims.fields["none"] = none
        claims.fields["groups"] = Google_Protobuf_Value(
            listValue: Google_Protobuf_ListValue(values: [Google_Protobuf_Value(stringValue: "dev"), Google_Protobuf_Value(numberValue: -0.0)]))
        claims.fields["empty"] = Google_Protobuf_Value()
        var payload = Google_Protobuf_Struct()
        payload.fields["payload"] = Google_Protobuf_Value(structValue: claims)
        request.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"] = payload
        request.attributes.routeMetadataContext.filterMetadata["route"] = Google_Protobuf_Struct()
        return request
    }

    static var sidecar: Envoy_Service_Auth_V3_CheckRequest {
        CheckRequestParts(
            source: .init(identity: try! SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/sleep"), address: "10.0.0.1",
                          port: 5000),
            destination: .init(address: "10.0.0.2", port: 9080), namespace: "default", labels: ["app": "details"],
            requestID: "id-1", method: "GET", host: "details:9080", target: "/details/1",
            headers: [(":authority", "details:9080"), (":method", "GET"), (":path", "/details/1"), ("accept", "*/*")]
        ).checkRequest
    }

    /// One mapper for every test here, so its metadata memo holds what earlier inputs taught it.
    static let memoMapper = CheckRequestMapper()

    func bytes(_ request: Envoy_Service_Auth_V3_CheckRequest) throws -> [UInt8] {
        try request.serializedBytes()
    }

    /// Both decodings of `bytes`: equal messages, or both refused. A number in the metadata may be NaN, which is
    /// unequal to itself: then the messages' text forms (map keys sorted) are compared.
    ///
    /// Read through a mapper's metadata memo (twice: as it learns the metadata, then as it knows it), the same
    /// message, mapped to the same attributes.
    func expectSameAnswer(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let reference = try? Envoy_Service_Auth_V3_CheckRequest(serializedBytes: bytes)
        let decoded = try? Envoy_Service_Auth_V3_CheckRequest(checkRequestBytes: bytes)
        for _ in 0..<2 {
            let viaMemo = try? Self.memoMapper.decode(bytes)
            #expect(viaMemo?.request == decoded || viaMemo?.request.textFormatString() == decoded?.textFormatString(),
                    "\(bytes)", sourceLocation: sourceLocation)
            if let viaMemo, let reference, reference == reference {
                #expect(Self.memoMapper.map(viaMemo) == Self.memoMapper.map(reference), sourceLocation: sourceLocation)
            }
        }
        guard decoded != reference else { return }
        #expect(decoded?.textFormatString() == reference?.textFormatString() && decoded != nil, "\(bytes)",
                sourceLocation: sourceLocation)
    }

    @Test(arguments: [full, sidecar, Envoy_Service_Auth_V3_CheckRequest()])
    func theReaderTakesProxiesRequestsAndGivesSwiftProtobufsMessage(_ request: Envoy_Service_Auth_V3_CheckRequest) throws {
        let bytes = try bytes(request)
        let read = try #require(bytes.withUnsafeBytes { CheckWireReader.checkRequest($0) })
        #expect(read == request)
        #expect(try Envoy_Service_Auth_V3_CheckRequest(checkRequestBytes: bytes) == request)
    }

    /// `warden proxy` sends its checks in pieces (the connection's fields, the token's payload, the request's own),
    /// which protobuf merges: the reader reads them too, kept pieces and all.
    @Test func theProxysPiecewiseChecksAreReadAsOne() throws {
        var encoder = CheckRequestEncoder()
        for target in ["/one", "/two"] {
            let parts = CheckRequestParts(
                source: .init(identity: try SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/sleep"), address: "10.0.0.1",
                              port: 5000),
                destination: .init(address: "10.0.0.2", port: 9080), namespace: "default", labels: ["app": "details"],
                requestID: "id-\(target)", method: "POST", host: "details", target: target,
                headers: [("authorization", "Bearer x"), ("accept", "*/*")], body: Array("{}".utf8), serverName: "details",
                verifiedTokens: [(issuer: "https://issuer.example", payload: ["sub": "alice", "scope": ["read", "write"]])])
            let bytes = try encoder.encode(parts)
            let read = try #require(bytes.withUnsafeBytes { CheckWireReader.checkRequest($0) })
            #expect(read == parts.checkRequest)
            #expect(read == (try Envoy_Service_Auth_V3_CheckRequest(serializedBytes: bytes)))
        }
    }

    /// A token's payload, on every check of a request bearing it, is decoded and mapped once: the metadata memo
    /// keeps one entry a token, gives `request.auth` as a fresh mapping does, and keeps nothing past its size bound.
    @Test func aTokensPayloadIsDecodedOnceAndMapsAsAlways() throws {
        let mapper = CheckRequestMapper()
        var encoder = CheckRequestEncoder()
        func check(_ target: String, subject: String, padding: Int = 0) throws -> [UInt8] {
            let payload: PolicyCore.Value = [
                "iss": "https://issuer.example", "sub": .string(subject), "aud": ["details"],
                "pad": .string(String(repeating: "x", count: padding)),
            ]
            return try encoder.encode(CheckRequestParts(
                source: .init(identity: try SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/sleep"), address: "10.0.0.1",
                              port: 5000),
                destination: .init(address: "10.0.0.2", port: 9080), namespace: "default", labels: ["app": "details"],
                requestID: "id-\(target)", method: "GET", host: "details", target: target, headers: [("accept", "*/*")],
                verifiedTokens: [(issuer: "https://issuer.example", payload: payload)]))
        }
        for (index, subject) in ["alice", "alice", "bob", "alice", "bob"].enumerated() {
            let bytes = try check("/\(index)", subject: subject)
            let decoded = try mapper.decode(bytes)
            #expect(decoded.request == (try Envoy_Service_Auth_V3_CheckRequest(serializedBytes: bytes)))
            #expect(decoded.metadata != nil)
            let auth = try #require(mapper.map(decoded).auth)
            #expect(auth.principal == "https://issuer.example/" + subject)
            #expect(auth.audiences == ["details"])
            #expect(mapper.map(decoded) == CheckRequestMapper().map(decoded.request))
        }
        #expect(mapper.metadataMemo.count == 2)
        // A context larger than the bound is read as it comes, mapped all the same, and not kept.
        let large = try mapper.decode(try check("/large", subject: "carol", padding: CheckWireReader.memoizedMetadataBytes))
        #expect(large.metadata == nil)
        #expect(mapper.map(large).auth?.principal == "https://issuer.example/carol")
        #expect(mapper.metadataMemo.count == 2)
    }

    @Test func aPipeAddressAndAHeaderMapAreHandedToSwiftProtobuf() throws {
        var request = Self.sidecar
        request.attributes.source.address.pipe.path = "/run/app.sock"
        var header = Envoy_Config_Core_V3_HeaderValue()
        header.key = "x-raw"
        header.rawValue = Data([0x61, 0x62])
        request.attributes.request.http.headerMap.headers = [header]
        let bytes = try bytes(request)
        #expect(bytes.withUnsafeBytes { CheckWireReader.checkRequest($0) } == request)
    }

    /// Where swift-protobuf merges, keeps unknown fields or skips extra entry fields, the reader gives up and
    /// swift-protobuf decodes.
    @Test func whatTheReaderDoesNotExpectIsSwiftProtobufs() throws {
        let base = try bytes(Self.sidecar)
        // An unknown field at the top level (field 99, a varint).
        let unknown = base + [0x98, 0x06, 0x01]
        #expect(unknown.withUnsafeBytes { CheckWireReader.checkRequest($0) } == nil)
        expectSameAnswer(unknown)
        #expect(try Envoy_Service_Auth_V3_CheckRequest(checkRequestBytes: unknown).unknownFields.data.count == 3)
        // The attributes twice: swift-protobuf merges them.
        var second = Envoy_Service_Auth_V3_CheckRequest()
        second.attributes.request.http.method = "PUT"
        second.attributes.request.http.headers = ["accept": "text/plain", "x-more": "1"]
        let merged = base + (try bytes(second))
        #expect(merged.withUnsafeBytes { CheckWireReader.checkRequest($0) } == nil)
        expectSameAnswer(merged)
        #expect(try Envoy_Service_Auth_V3_CheckRequest(checkRequestBytes: merged).attributes.request.http.headers["accept"] == "text/plain")
    }

    @Test func aRepeatedMapKeyKeepsTheLastValueAndMissingPartsAreEmpty() throws {
        // HttpRequest { headers: {a: 1}, headers: {a: 2}, headers: {value only}, headers: {} }
        func ld(_ field: UInt8, _ payload: [UInt8]) -> [UInt8] { [field << 3 | 2, UInt8(payload.count)] + payload }
        let http = ld(3, ld(1, [0x61]) + ld(2, [0x31])) + ld(3, ld(1, [0x61]) + ld(2, [0x32])) + ld(3, ld(2, [0x33])) + ld(3, [])
        let bytes = ld(1, ld(4, ld(2, http)))
        let read = try #require(bytes.withUnsafeBytes { CheckWireReader.checkRequest($0) })
        #expect(read.attributes.request.http.headers == ["a": "2", "": ""])
        expectSameAnswer(bytes)
    }

    @Test func invalidUTF8IsRefusedAsSwiftProtobufRefusesIt() throws {
        var bytes = try bytes(Self.sidecar)
        let method = try #require(bytes.firstRange(of: Array("GET".utf8)))
        bytes[method.lowerBound] = 0xFF
        #expect(throws: (any Error).self) { try Envoy_Service_Auth_V3_CheckRequest(checkRequestBytes: bytes) }
        expectSameAnswer(bytes)
    }

    /// swift-protobuf refuses a request nested deeper than 100 messages; what the reader hands it (here the
    /// metadata, three levels down) is refused at the same nesting.
    @Test func nestingPastSwiftProtobufsLimitIsRefusedAsItRefusesIt() throws {
        func request(nesting levels: Int) throws -> [UInt8] {
            var request = Self.sidecar
            request.attributes.metadataContext.filterMetadata["deep"] = WireTestInputs.nestedStruct(levels: levels)
            return try bytes(request)
        }
        // The innermost struct is at depth 4 + 2 × levels: 100 at 48 levels.
        #expect((try? Envoy_Service_Auth_V3_CheckRequest(serializedBytes: try request(nesting: 48))) != nil)
        #expect((try? Envoy_Service_Auth_V3_CheckRequest(serializedBytes: try request(nesting: 49))) == nil)
        for levels in 46...51 { expectSameAnswer(try request(nesting: levels)) }
    }

    /// Every truncation of a full request, and seeded random damage to it: the same answer as swift-protobuf.
    @Test func damagedRequestsGetSwiftProtobufsAnswer() throws {
        for damaged in WireTestInputs.damaged(try bytes(Self.full), count: 3_000, seed: 0x5EED) { expectSameAnswer(damaged) }
    }
}
