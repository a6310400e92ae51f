import ExtAuthz
import FuzzSupport

/// Envoy `CheckRequest`s (protobuf's binary form, or its JSON form when the input starts with `{`) through the
/// whole check path (`FuzzCheckPath`): mapped to attributes and OPA-Envoy's input document, decided against
/// AuthorizationPolicies and a CUSTOM Rego provider, rendered as a `CheckResponse`.
///
/// Invariant: the server's decoding (`init(checkRequestBytes:)`, a wire reader in front of swift-protobuf) gives
/// swift-protobuf's answer: the same message, or a refusal where swift-protobuf refuses.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckRequest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    let check: Envoy_Service_Auth_V3_CheckRequest
    do {
        if input.bytes.first == UInt8(ascii: "{") {
            check = try Envoy_Service_Auth_V3_CheckRequest(jsonString: input.text)
        } else {
            let reference = try? Envoy_Service_Auth_V3_CheckRequest(serializedBytes: input.array)
            let decoded = try? Envoy_Service_Auth_V3_CheckRequest(checkRequestBytes: input.array)
            fuzzCheck(decoded == reference, "the server's decoding differs from swift-protobuf's")
            check = try Envoy_Service_Auth_V3_CheckRequest(checkRequestBytes: input.array)
        }
    } catch {
        return 0
    }
    _ = FuzzCheckPath.decide(FuzzCheckPath.map(check), check).checkResponse
    return 0
}
