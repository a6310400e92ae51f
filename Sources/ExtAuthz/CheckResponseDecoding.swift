import SwiftProtobuf

extension Envoy_Service_Auth_V3_CheckResponse {
    /// Decodes a `CheckResponse` as swift-protobuf does, faster for the answers an authorization server gives on
    /// every request: a status, the allowed or denied response, and dynamic metadata (a `Struct` with the
    /// decision's id, which swift-protobuf reads through its generic map decoding). The allowed or denied
    /// response's header options and body go to swift-protobuf one submessage at a time; anything else the reader
    /// does not expect makes swift-protobuf decode the whole answer, so the result, or the error, is always
    /// swift-protobuf's.
    public init(checkResponseBytes bytes: UnsafeRawBufferPointer) throws {
        if let response = CheckWireReader.checkResponse(bytes) {
            self = response
        } else {
            try self.init(serializedBytes: Array(bytes))
        }
    }
}

extension CheckWireReader {
    static func checkResponse(_ bytes: Bytes) -> Envoy_Service_Auth_V3_CheckResponse? {
        message(bytes, Envoy_Service_Auth_V3_CheckResponse()) { response, field, wire, reader in
            guard let body = reader.body(wire) else { return false }
            switch field {
            case 1:
                // A status (or metadata) seen twice is left to swift-protobuf, which merges them.
                guard !response.hasStatus, let status = rpcStatus(body) else { return false }
                response.status = status
            case 2:
                // Warden's server sends a denial in two pieces (the decision's, then its id's), merged as
                // swift-protobuf merges a oneof's message: into the same case, or replacing another.
                var denied = Envoy_Service_Auth_V3_DeniedHttpResponse()
                if case .deniedResponse(let earlier) = response.httpResponse { denied = earlier }
                guard merge(body, into: &denied, depth: 2) else { return false }
                response.deniedResponse = denied
            case 3:
                var ok = Envoy_Service_Auth_V3_OkHttpResponse()
                if case .okResponse(let earlier) = response.httpResponse { ok = earlier }
                guard body.isEmpty || merge(body, into: &ok, depth: 2) else { return false }
                response.okResponse = ok
            case 4:
                guard !response.hasDynamicMetadata, let metadata = structValue(body, depth: 2) else { return false }
                response.dynamicMetadata = metadata
            default:
                return false
            }
            return true
        }
    }

    /// `google.rpc.Status` without details (an authorization server's answers carry none).
    static func rpcStatus(_ bytes: Bytes) -> Google_Rpc_Status? {
        message(bytes, Google_Rpc_Status()) { status, field, wire, reader in
            switch (field, wire) {
            case (1, 0):
                guard let raw = reader.varint() else { return false }
                status.code = Int32(truncatingIfNeeded: raw)
            case (2, 2):
                guard let body = reader.lengthDelimited(), let text = Reader.string(body) else { return false }
                status.message = text
            default:
                return false
            }
            return true
        }
    }
}
