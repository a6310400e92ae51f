#!/usr/bin/env python3
"""Writes the benchmark's inputs: OPA-Envoy input documents for varied requests, one JSON document a line.

    Benchmarks/RegoBenchmarks/make-inputs.py [COUNT] > FILE     # default 10000, seeded: always the same inputs
"""
import json
import random
import sys

rng = random.Random(20261123)
count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000

principals = [
    "spiffe://shop.local/ns/web/sa/frontend", "spiffe://shop.local/ns/web/sa/mobile-bff",
    "spiffe://shop.local/ns/orders/sa/checkout", "spiffe://shop.local/ns/ops/sa/monitoring",
    "spiffe://shop.local/ns/ops/sa/admin-console", "spiffe://shop.local/ns/lab/sa/scanner", "",
]
paths = [
    "/health", "/ready", "/metrics", "/internal/stats", "/api/v1/products", "/api/v1/products/42",
    "/api/v1/reviews/7", "/api/v1/categories", "/api/v1/cart", "/api/v1/orders", "/api/v1/orders/{order}",
    "/api/v1/customers/9", "/api/v2/products", "/admin/users", "/admin/settings/flags", "/static/app.js",
]
methods = ["GET"] * 6 + ["POST", "PUT", "DELETE", "PATCH"]
roles = ["customer", "support", "auditor", "admin"]
agents = ["Mozilla/5.0", "curl/8.4", "shop-ios/3.2", "sqlmap/1.7", "Go-http-client/2.0"]
tenants = ["acme", "globex", "initech"]


def claims():
    tenant = rng.choice(tenants)
    sub = "u%d" % rng.randrange(1000)
    return {
        "iss": rng.choice(["https://auth.shop.local"] * 9 + ["https://evil.example"]),
        "aud": rng.choice([["shop-api"], ["shop-api", "mobile"], ["other"]]),
        "sub": sub,
        "tenant": tenant,
        "exp": rng.choice([1800000000] * 9 + [1600000000]),
        "iat": 1700000000,
        "roles": rng.sample(roles, rng.randrange(3)),
        "groups": rng.sample(["platform-admins", "staff", "beta"], rng.randrange(3)),
        "scope": " ".join(rng.sample(["orders:read", "orders:write", "cart:write", "profile"], rng.randrange(1, 4))),
    }


for _ in range(count):
    path = rng.choice(paths)
    jwt = claims() if rng.random() < 0.8 else None
    if "{order}" in path:
        owner = jwt if jwt and rng.random() < 0.7 else claims()
        path = path.replace("{order}", "%s-%s-%d" % (owner["tenant"], owner["sub"], rng.randrange(100)))
    query = "?page=%d" % rng.randrange(5) if rng.random() < 0.2 else ""
    headers = {
        ":authority": "shop.local", ":method": "", ":path": path + query,
        "user-agent": rng.choice(agents), "accept": "application/json",
    }
    method = rng.choice(methods)
    headers[":method"] = method
    if rng.random() < 0.7:
        headers["x-request-id"] = "%032x" % rng.getrandbits(128)
    if jwt and rng.random() < 0.6:
        headers["x-tenant-id"] = jwt["tenant"] if rng.random() < 0.85 else rng.choice(tenants)
    if jwt:
        headers["authorization"] = "Bearer eyJhbGciOiJSUzI1NiJ9.%s.signature" % jwt["sub"]
    document = {
        "attributes": {
            "source": {"address": {"socketAddress": {"address": "10.0.%d.%d" % (rng.randrange(4), rng.randrange(250)),
                                                     "portValue": 40000 + rng.randrange(20000)}},
                       "principal": rng.choice(principals)},
            "destination": {"address": {"socketAddress": {"address": "10.1.0.5", "portValue": 8080}},
                            "principal": "spiffe://shop.local/ns/web/sa/gateway"},
            "request": {"http": {"id": str(rng.getrandbits(63)), "method": method, "headers": headers,
                                 "path": path + query, "host": "shop.local", "scheme": "http",
                                 "protocol": "HTTP/1.1"}},
            "metadata_context": {"filter_metadata": {"envoy.filters.http.jwt_authn": {"verified_jwt": jwt}}
                                 if jwt else {}},
        },
        "parsed_path": [p for p in path.split("/") if p],
        "parsed_query": {"page": [query[6:]]} if query else {},
        "truncated_body": False,
        "version": {"encoding": "protojson", "ext_authz": "v3"},
    }
    print(json.dumps(document, separators=(",", ":")))
