import ExtAuthz
import FuzzSupport
import SwiftProtobuf

/// Envoy `CheckRequest`s (protobuf's binary form, or its JSON form when the input starts with `{`) through the
/// whole check path (`FuzzCheckPath`): mapped to attributes and OPA-Envoy's input document, decided against
/// AuthorizationPolicies and a CUSTOM Rego provider, rendered as a `CheckResponse`.
///
/// Invariants: the server's decoding (`init(checkRequestBytes:)`, a wire reader in front of swift-protobuf) gives
/// swift-protobuf's answer: the same message, or a refusal where swift-protobuf refuses; so does the proxy's
/// decoding of the same bytes as a `CheckResponse` (`init(checkResponseBytes:)`), and of the response rendered.
/// Read through the mapper's metadata memo (`decode`, twice: as it learns the metadata, then as it knows it), the
/// same message, mapped to the same attributes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckRequest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    checkResponseDecoding(input.array)
    let check: Envoy_Service_Auth_V3_CheckRequest
    do {
        if input.bytes.first == UInt8(ascii: "{") {
            check = try Envoy_Service_Auth_V3_CheckRequest(jsonString: input.text)
        } else {
            let reference = try? Envoy_Service_Auth_V3_CheckRequest(serializedBytes: input.array)
            let decoded = try? Envoy_Service_Auth_V3_CheckRequest(checkRequestBytes: input.array)
            fuzzCheck(decoded == reference, "the server's decoding differs from swift-protobuf's")
            check = try Envoy_Service_Auth_V3_CheckRequest(checkRequestBytes: input.array)
            for _ in 0..<2 {
                let viaMemo = try FuzzCheckPath.mapper.decode(input.array)
                fuzzCheck(viaMemo.request == check, "decoding through the metadata memo differs")
                let mapped = FuzzCheckPath.mapper.map(viaMemo, claimsHeaderTrusted: true)
                fuzzCheck(mapped == FuzzCheckPath.map(check) || mapped != mapped, "mapping through the metadata memo differs")
            }
        }
    } catch {
        return 0
    }
    let response = FuzzCheckPath.decide(FuzzCheckPath.map(check), check).checkResponse
    if let bytes = try? response.serializedBytes() as [UInt8] { checkResponseDecoding(bytes) }
    return 0
}

/// The proxy's decoding of `bytes` as a `CheckResponse` is swift-protobuf's (a NaN in the metadata, unequal to
/// itself, is compared as text).
func checkResponseDecoding(_ bytes: [UInt8]) {
    let reference = try? Envoy_Service_Auth_V3_CheckResponse(serializedBytes: bytes)
    let decoded = bytes.withUnsafeBytes { try? Envoy_Service_Auth_V3_CheckResponse(checkResponseBytes: $0) }
    fuzzCheck(decoded == reference || (decoded != nil && decoded?.textFormatString() == reference?.textFormatString()),
              "the proxy's decoding of a CheckResponse differs from swift-protobuf's")
}
