#!/usr/bin/env python3
"""Writes an AuthorizationPolicy benchmark workload: seeded policies and varied requests.

    Benchmarks/AuthzPolicyBenchmarks/make-workload.py POLICIES WORKLOADS DIR [REQUESTS]

DIR/policies.yaml holds POLICIES AuthorizationPolicies: two mesh-wide ones in the root namespace (an AUDIT of admin
paths, a DENY of a debug port) and the rest spread over WORKLOADS workloads, five workloads a namespace, so each
workload is selected by about POLICIES / WORKLOADS policies of one rule each (70% ALLOW, 22% DENY, 8% AUDIT; one in
eight selects by two labels). Rules cycle through every matcher kind: every `from` field (principals,
requestPrincipals, namespaces, serviceAccounts, trustDomains, ipBlocks, remoteIpBlocks and their `not` forms), every
`to` field (hosts, ports, methods, paths as exact values, prefixes, suffixes and templates, and their `not` forms) and
every `when` key. DIR/requests.jsonl holds REQUESTS (default 5,000) requests in the flat attribute form, each to one
of the workloads, with and without mTLS identities and JWTs, so that some are allowed, some denied by DENY, some
denied for lack of a matching ALLOW and some audited. The same arguments always write the same files.

`warden bench --policies DIR/policies.yaml --requests DIR/requests.jsonl` and the AuthzPolicyBenchmarks target
(`cd Benchmarks && swift package benchmark --target AuthzPolicyBenchmarks`, which reads .build/authz-100 and
.build/authz-1000 under Benchmarks/) use them.
"""
import json
import os
import random
import sys

policy_count = int(sys.argv[1])
workload_count = int(sys.argv[2])
out = sys.argv[3]
request_count = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
rng = random.Random(policy_count * 1_000_003 + workload_count)

APPS = ["details", "reviews", "ratings", "productpage", "checkout", "ledger", "search", "admin", "cart", "users"]
PATHS = ["/api/v1/items", "/api/v1/orders", "/api/v2/search", "/admin", "/admin/users", "/health", "/metrics",
         "/static/app.js", "/api/v1/items/42/reviews", "/login"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
TRUST_DOMAINS = ["cluster.local", "partner.example"]
ISSUERS = ["https://idp.example.com", "https://accounts.example.org"]
GROUPS = ["admins", "ops", "users", "dev"]


def namespace_of(w):
    return "ns-%d" % (w // 5)


def app_of(w):
    return APPS[w % 5] + ("-%d" % (w // 50) if w >= 50 else "")


workloads = [(namespace_of(w), app_of(w)) for w in range(workload_count)]
namespaces = sorted({ns for ns, _ in workloads})


def principal(rng):
    ns, app = rng.choice(workloads)
    return "%s/ns/%s/sa/%s" % (rng.choice(TRUST_DOMAINS + ["cluster.local"] * 4), ns, app)


def request_principal(rng):
    return "%s/user-%d" % (rng.choice(ISSUERS), rng.randrange(20))


# Each `from` kind: a function giving the field name and its values.
FROM_KINDS = [
    ("principals", lambda r: [principal(r), principal(r)]),
    ("principals", lambda r: ["cluster.local/ns/%s/*" % r.choice(namespaces), "*/sa/%s" % r.choice(workloads)[1]]),
    ("notPrincipals", lambda r: [principal(r)]),
    ("requestPrincipals", lambda r: [request_principal(r)]),
    ("requestPrincipals", lambda r: ["%s/*" % r.choice(ISSUERS)]),
    ("notRequestPrincipals", lambda r: ["*"]),
    ("namespaces", lambda r: [r.choice(namespaces), r.choice(namespaces)]),
    ("notNamespaces", lambda r: [r.choice(namespaces)]),
    ("serviceAccounts", lambda r: ["%s/%s" % r.choice(workloads)]),
    ("trustDomains", lambda r: [r.choice(TRUST_DOMAINS)]),
    ("ipBlocks", lambda r: ["10.%d.0.0/16" % r.randrange(4), "192.168.%d.0/24" % r.randrange(4)]),
    ("notIpBlocks", lambda r: ["10.%d.%d.0/24" % (r.randrange(4), r.randrange(64))]),
    ("remoteIpBlocks", lambda r: ["203.0.113.0/24", "2001:db8::/32"]),
    ("notRemoteIpBlocks", lambda r: ["198.51.100.%d/32" % r.randrange(256)]),
]
TO_KINDS = [
    ("paths", lambda r: [r.choice(PATHS)]),
    ("paths", lambda r: ["/api/*", "/static/*"]),
    ("paths", lambda r: ["*.js", "*/reviews"]),
    ("paths", lambda r: ["/api/v1/items/{*}/reviews", "/admin/{**}"]),
    ("notPaths", lambda r: ["/admin*"]),
    ("methods", lambda r: [r.choice(METHODS), r.choice(METHODS)]),
    ("notMethods", lambda r: ["DELETE"]),
    ("hosts", lambda r: ["%s.%s.svc.cluster.local" % tuple(reversed(r.choice(workloads))), "*.example.com"]),
    ("notHosts", lambda r: ["evil.example.com"]),
    ("ports", lambda r: [r.choice(["9080", "8080"])]),
    ("notPorts", lambda r: ["15000"]),
]
WHEN_KINDS = [
    ("request.headers[x-tenant]", lambda r: ["tenant-%d" % r.randrange(4)]),
    ("request.headers[user-agent]", lambda r: ["curl/*"]),
    ("source.ip", lambda r: ["10.%d.0.0/16" % r.randrange(4)]),
    ("remote.ip", lambda r: ["203.0.113.0/24"]),
    ("source.namespace", lambda r: [r.choice(namespaces)]),
    ("source.principal", lambda r: [principal(r)]),
    ("request.auth.principal", lambda r: [request_principal(r)]),
    ("request.auth.audiences", lambda r: ["bookinfo", "shop"]),
    ("request.auth.presenter", lambda r: ["web-client"]),
    ("request.auth.claims[groups]", lambda r: [r.choice(GROUPS)]),
    ("request.auth.claims[tenant][tier]", lambda r: ["gold"]),
    ("destination.ip", lambda r: ["10.200.0.0/16"]),
    ("destination.port", lambda r: ["9080"]),
    ("connection.sni", lambda r: ["outbound_.9080_._.%s.%s.svc.cluster.local" % tuple(reversed(r.choice(workloads)))]),
]


def yaml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


documents = [
    """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-admin, namespace: istio-system}
spec:
  action: AUDIT
  rules:
  - to:
    - operation: {paths: ["/admin", "/admin/*"]}""",
    """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-debug-port, namespace: istio-system}
spec:
  action: DENY
  rules:
  - to:
    - operation: {ports: ["15000"]}""",
]
kind = 0
for n in range(policy_count - 2):
    ns, app = workloads[n % workload_count]
    roll = rng.randrange(100)
    action = "ALLOW" if roll < 70 else ("DENY" if roll < 92 else "AUDIT")
    selector = "{app: %s}" % app
    if rng.randrange(8) == 0:
        selector = "{app: %s, version: v1}" % app
    source_field, source_values = FROM_KINDS[kind % len(FROM_KINDS)]
    operation_field, operation_values = TO_KINDS[kind % len(TO_KINDS)]
    when_key, when_values = WHEN_KINDS[kind % len(WHEN_KINDS)]
    kind += 1
    rule = "  - from:\n    - source: {%s: %s}\n    to:\n    - operation: {%s: %s}\n" % (
        source_field, yaml_list(source_values(rng)), operation_field, yaml_list(operation_values(rng)))
    if rng.randrange(3) == 0:
        rule += "    when:\n    - key: %s\n      values: %s\n" % (when_key, yaml_list(when_values(rng)))
    documents.append(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: %s-%s-%d, namespace: %s}\nspec:\n  selector:\n    matchLabels: %s\n  action: %s\n  rules:\n%s"
        % (app, action.lower(), n, ns, selector, action, rule.rstrip("\n")))

os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "policies.yaml"), "w") as f:
    f.write("\n---\n".join(documents) + "\n")

with open(os.path.join(out, "requests.jsonl"), "w") as f:
    for _ in range(request_count):
        ns, app = rng.choice(workloads)
        request = {
            "destination.namespace": ns,
            "destination.workload_labels": {"app": app, "version": rng.choice(["v1", "v2"]),
                                            "pod-template-hash": "7d4f8b9c6"},
            "destination.ip": "10.200.%d.%d" % (rng.randrange(4), rng.randrange(250)),
            "destination.port": 15000 if rng.randrange(50) == 0 else rng.choice([9080, 9080, 8080]),
            "request.host": rng.choice(["%s.%s.svc.cluster.local" % (app, ns), "api.example.com", "evil.example.com"]),
            "request.method": rng.choice(METHODS),
            "request.path": rng.choice(PATHS),
            "request.headers": {"user-agent": rng.choice(["curl/8.5.0", "Mozilla/5.0"]),
                                "x-request-id": "%016x" % rng.getrandbits(64),
                                "x-tenant": "tenant-%d" % rng.randrange(4)},
            "source.ip": "%s.%d.%d.%d" % (rng.choice(["10", "10", "192"]), rng.randrange(4), rng.randrange(64),
                                          rng.randrange(250)),
            "remote.ip": rng.choice(["203.0.113.7", "198.51.100.9", "2001:db8::5"]),
        }
        if request["source.ip"].startswith("192"):
            request["source.ip"] = "192.168.%d.%d" % (rng.randrange(4), rng.randrange(250))
        if rng.random() < 0.7:
            request["source.principal"] = principal(rng)
            request["connection.sni"] = "outbound_.9080_._.%s.%s.svc.cluster.local" % (app, ns)
        if rng.random() < 0.5:
            sub = request_principal(rng)
            issuer, subject = sub.rsplit("/", 1)
            request["request.auth.principal"] = sub
            request["request.auth.audiences"] = [rng.choice(["bookinfo", "shop", "other"])]
            request["request.auth.presenter"] = rng.choice(["web-client", "cli"])
            request["request.auth.claims"] = {"iss": issuer, "sub": subject, "groups": rng.sample(GROUPS, 2),
                                              "tenant": {"tier": rng.choice(["gold", "silver"])}}
        f.write(json.dumps(request, separators=(",", ":")) + "\n")
