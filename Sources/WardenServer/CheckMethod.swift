import ExtAuthz
import GRPCCore
import Networking
import SwiftProtobuf

extension InPlaceMethod {
    /// `envoy.service.auth.v3.Authorization/Check`, Envoy's ext_authz call, answered on the event loop that read
    /// it: decode, decide, encode. The decision id goes back as `decision_id` in the dynamic metadata, as OPA-Envoy
    /// sends it, so a proxy can log it for allowed requests too.
    ///
    /// With `allowList`, only a client whose verified certificate is on the listener's allow-list may ask
    /// (`UNAUTHENTICATED` without a certificate, `PERMISSION_DENIED` with another); either way, only such a client
    /// is trusted with the verified-claims header.
    public static func check(_ handler: CheckHandler, allowList: Bool = false) -> InPlaceMethod {
        let encoder = CheckResponseEncoder()
        return InPlaceMethod(descriptor: Envoy_Service_Auth_V3_Authorization.Method.Check.descriptor) { bytes, peer in
            let trusted = peer?.authorized == true
            if allowList, !trusted {
                handler.metrics.recordClientRefused(listener: "grpc")
                guard let peer else {
                    throw RPCError(
                        code: .unauthenticated,
                        message: "this listener answers only clients with a certificate on its allow-list")
                }
                throw RPCError(code: .permissionDenied, message: "client `\(peer.identity)` is not on this listener's allow-list")
            }
            let request: DecodedCheck
            do {
                request = try handler.mapper.decode(bytes)
            } catch {
                throw RPCError(code: .invalidArgument, message: "the CheckRequest does not decode: \(error)")
            }
            let result = handler.check(request, transport: "grpc", client: peer)
            return try encoder.encode(result.response, decisionID: result.decisionID)
        }
    }
}
