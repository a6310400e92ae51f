#!/usr/bin/env python3
# The gRPC-framed CheckRequest of Benchmarks/CheckNoopServer's sampleRequest: an Istio sidecar's GET /api/v1/items
# to `details` from productpage, without a token; with `--jwt`, with the seed token's verified payload as jwt_authn
# metadata, as `warden proxy` and Istio's sidecars send it.
#   check-request.py OUT [--jwt]
import struct, sys
def varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        if n: out += bytes([b | 0x80])
        else: return out + bytes([b])
def ld(field, payload):
    if isinstance(payload, str): payload = payload.encode()
    return varint(field << 3 | 2) + varint(len(payload)) + payload
def vi(field, n): return varint(field << 3) + varint(n)
def entry(field, k, v): return ld(field, ld(1, k) + ld(2, v))
def address(ip, port): return ld(1, ld(1, ld(2, ip) + vi(3, port)))
rid = "5d1d4a1e-6f3c-4a8b-9a0f-6c2e1d3b4a5f"
source = address("10.1.2.3", 43210) + ld(4, "spiffe://cluster.local/ns/default/sa/productpage")
dest = address("10.1.2.9", 9080)
headers = [(":authority", "details:9080"), (":method", "GET"), (":path", "/api/v1/items?page=2"), ("user-agent", "Mozilla/5.0"),
           ("accept", "application/json"), ("x-request-id", rid), ("x-forwarded-proto", "http")]
http = ld(1, rid) + ld(2, "GET") + b"".join(entry(3, k, v) for k, v in headers) + ld(4, "/api/v1/items?page=2") + ld(5, "details:9080") + ld(6, "http") + ld(10, "HTTP/1.1")
attrs = ld(1, source) + ld(2, dest) + ld(4, ld(2, http)) + entry(10, "destination.namespace", "default") + entry(10, "destination.workload_labels", '{"app":"details"}')
def value(v):  # google.protobuf.Value
    if isinstance(v, bool): return vi(4, int(v))
    if isinstance(v, (int, float)): return varint(2 << 3 | 1) + struct.pack("<d", float(v))
    if isinstance(v, str): return ld(3, v)
    if isinstance(v, list): return ld(6, b"".join(ld(1, value(x)) for x in v))
    return ld(5, struct_(v))
def struct_(d): return b"".join(ld(1, ld(1, k) + ld(2, value(v))) for k, v in sorted(d.items()))
if "--jwt" in sys.argv[2:]:
    issuer = "testing@secure.istio.io"
    payload = {"iss": issuer, "sub": issuer, "exp": 4685989700, "iat": 1532389700, "foo": "bar"}
    attrs += ld(11, ld(1, ld(1, "envoy.filters.http.jwt_authn") + ld(2, struct_({issuer: payload}))))
msg = ld(1, attrs)
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(msg)) + msg)
