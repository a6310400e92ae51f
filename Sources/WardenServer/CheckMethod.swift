import ExtAuthz
import GRPCCore
import Networking
import SwiftProtobuf

extension InPlaceMethod {
    /// `envoy.service.auth.v3.Authorization/Check`, Envoy's ext_authz call, answered on the event loop that read
    /// it: decode, decide, encode. The decision id goes back as `decision_id` in the dynamic metadata, as OPA-Envoy
    /// sends it, so a proxy can log it for allowed requests too.
    public static func check(_ handler: CheckHandler) -> InPlaceMethod {
        InPlaceMethod(descriptor: Envoy_Service_Auth_V3_Authorization.Method.Check.descriptor) { bytes in
            let request: Envoy_Service_Auth_V3_CheckRequest
            do {
                request = try Envoy_Service_Auth_V3_CheckRequest(serializedBytes: bytes)
            } catch {
                throw RPCError(code: .invalidArgument, message: "the CheckRequest does not decode: \(error)")
            }
            let result = handler.check(request, transport: "grpc")
            var response = result.decision.checkResponse
            response.dynamicMetadata.fields["decision_id"] = Google_Protobuf_Value(stringValue: result.decisionID)
            return try response.serializedBytes()
        }
    }
}
