# Sourced by proxy-load.sh and proxy-memory.sh (from Benchmarks/): the proxy benchmarks' shared workload.
#   seed_token                 the seed's demo token, which the proxy's RequestAuthentication verifies
#   proxy_workload WARDEN DIR  writes, under DIR, the identities (a CA, `details` — the workload and the upstream's
#                              server certificate — and `sleep`, the client), `server-policies/` (an ALLOW of GET
#                              and HEAD on /bench/* for the details workload) and `proxy-policies/` (its
#                              RequestAuthentication: the seed's issuer)
seed_token=$(python3 -c 'import re,sys; t=open("../Tests/WardenTesting/SeedToken.swift").read(); print("".join(re.findall(r"\"(\.?eyJ[^\"]*|\.[A-Za-z0-9_-]+)\"", t)))')

proxy_workload() {
    local warden=$1 work=$2
    "$warden" ca init --dir "$work/ca" >/dev/null
    "$warden" ca issue --dir "$work/ca" --spiffe spiffe://cluster.local/ns/default/sa/details --dns details --out "$work/details" >/dev/null
    "$warden" ca issue --dir "$work/ca" --spiffe spiffe://cluster.local/ns/default/sa/sleep --out "$work/sleep" >/dev/null
    mkdir -p "$work/server-policies" "$work/proxy-policies"
    cat > "$work/server-policies/bench.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: details-reads, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  rules:
  - to: [{operation: {methods: [GET, HEAD], paths: ["/bench/*"]}}]
EOF
    cp ../policies/details-require-jwt.yaml "$work/proxy-policies/"
}
