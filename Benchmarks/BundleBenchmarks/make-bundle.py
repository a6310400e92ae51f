#!/usr/bin/env python3
"""Writes the files of the 10 MB bundle BundleBenchmarks measures (a 25 MB catalog data.json, 40 OPA-Envoy modules,
five AuthorizationPolicies) into DIR, for `warden build DIR -o big.tar.gz --signing-key KEY --max-file-bytes 67108864`.

    Benchmarks/BundleBenchmarks/make-bundle.py DIR
"""
import json, os, random, sys
out = sys.argv[1]
rng = random.Random(10)
def hex3(): return "".join("%x" % rng.getrandbits(32) for _ in range(3))
items = {"item-%d" % i: {"owner": "team-%d" % (i % 97), "tags": [hex3(), hex3(), hex3()], "limit": i % 1000} for i in range(180000)}
os.makedirs(out + "/catalog", exist_ok=True); os.makedirs(out + "/envoy/authz", exist_ok=True); os.makedirs(out + "/policies", exist_ok=True); os.makedirs(out + "/meta", exist_ok=True)
json.dump({"items": items}, open(out + "/catalog/data.json", "w"))
json.dump({"revision": "bench"}, open(out + "/meta/data.json", "w"))
for m in range(40):
    open(out + "/envoy/authz/m%d.rego" % m, "w").write('package envoy.authz.m%d\n\ndefault allow := false\n\nallow if {\n\tinput.attributes.request.http.method == "GET"\n\tdata.catalog.items[input.parsed_path[1]].owner == input.attributes.source.principal\n}\n' % m)
for p in range(5):
    open(out + "/policies/p%d.yaml" % p, "w").write('apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p%d, namespace: ns%d}\nspec:\n  selector: {matchLabels: {app: app%d}}\n  rules: [{to: [{operation: {methods: ["GET"], paths: ["/api/%d/*"]}}]}]\n' % (p, p, p, p))
