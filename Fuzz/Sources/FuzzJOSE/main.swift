import FuzzSupport
import JOSE
import PolicyCore

/// JWS compact parsing, JWT claims decoding, and JWK/JWKS/PEM key reading on any text; tokens that parse are
/// verified against the demo issuer's key set (a bad signature is an error, never a crash).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJOSE(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = FuzzInput(start, count).text
    if let jws = try? JWS.parse(text) {
        _ = try? demoKeys.verify(jws)
    }
    _ = try? JWTVerifier.decode(text)
    _ = try? VerificationKeys.parse(text)
    return 0
}

/// The `testing@secure.istio.io` key set Istio's samples use.
let demoKeys = try! JWKSet.parse(
    #"{"keys":[{"e":"AQAB","kid":"DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ","kty":"RSA","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"}]}"#)
