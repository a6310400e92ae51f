# The io.jwt benchmark: each rule verifies one token of the input and checks its claims, as OPA-Envoy policies
# do with a bearer token. Keys are the public halves of scripts/token-fixtures.json's test keys; the time is fixed
# so the tokens never expire. Inputs: make-jwt-inputs.py.
package jwt

rsa_key := `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtWo/gSNEfFYHCEm4ZbA9
JQ78geROMJbTaOcpXvjm+johc8T5OTaOq0ycU47NVKB+sg/5usnabyFY23OyPnJP
W3JNfBfgk3H/Y5ehLOHBOGYYpBtmmRoRjknobm6YZsf3iaogJm2UNYZDDXvq+Kuf
sM6mJmSqHlB6A/hjSTjB2parobXMsXPmt3anFzFldFyQmVXTuXMvLsBluJgtCsiq
kcLgeHFxG6d8iCERG65xqPVwLi52d0b3eVDMmXSZhOsPPyvJ3x+NgUvgcEliyWG7
rs1i5sFdsF4g2eoq65asBqrTW93m43SThKntQWB2Fnf2/V9vKud/MEKu3nTSDSKL
MQIDAQAB
-----END PUBLIC KEY-----`

ec_keys := `{"keys": [{"kty": "EC", "crv": "P-256", "kid": "old", "x": "5YatCw6x2CahhaSTttMFZkQHc9FZtNUff0KUR50GptM", "y": "dpQ2uqvO7auOC0cbSxcYEg14zFFnFRIoOtB6XJaHhgs"}, {"kty": "EC", "crv": "P-256", "kid": "current", "x": "NoNgG3d3PLLG0nHofadzFg8WYCa-XVHp9_0DCmgw-BU", "y": "YmKBq0SOtik_-UdZEg7X9hkJRB9SmoGMDXPjGYMaj98"}]}`

constraints := {"aud": "api", "iss": "https://issuer.example", "time": 2000000000000000000}

hs256 if {
    [valid, _, claims] := io.jwt.decode_verify(input.hs256, object.union(constraints, {"secret": "a-shared-secret"}))
    valid
    "reader" in claims.roles
}

rs256 if {
    [valid, _, claims] := io.jwt.decode_verify(input.rs256, object.union(constraints, {"cert": rsa_key}))
    valid
    "reader" in claims.roles
}

es256 if {
    [valid, _, claims] := io.jwt.decode_verify(input.es256, object.union(constraints, {"cert": ec_keys}))
    valid
    "reader" in claims.roles
}

verify_rs256 if io.jwt.verify_rs256(input.rs256, rsa_key)

subject := io.jwt.decode(input.rs256)[1].sub
