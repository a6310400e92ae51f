#!/usr/bin/env bash
# Where a proxied request's CPU goes: two `warden` builds run alternately, each as `warden proxy` (the proxy-load.sh
# setup: STRICT mTLS, the seed's token verified, a gRPC Check with `warden serve` per request) before nginx's
# `return 200`, under `mtlsload` at CONNECTIONS for SECONDS. Each run prints requests a second, p50 and p90, and the
# CPU (user and system, read from /proc) that the proxy process and the server process spent per request.
#
# Usage: Benchmarks/proxy-cpu.sh WARDEN_A WARDEN_B [connections=1] [seconds=6] [pairs=3]
# Needs: release builds of both, nginx, python3 and mtlsload (see proxy-load.sh).
set -euo pipefail
cd "$(dirname "$0")"
a=$(realpath "$1"); b=$(realpath "$2")
connections=${3:-1}; seconds=${4:-6}; pairs=${5:-3}
. ./proxy-workload.sh
ulimit -n "$(ulimit -Hn)"

bench_scratch
proxy_workload "$a" "$work"
start_nginx "$work" 1 <<EOF
    server { listen 127.0.0.1:18280; location / { return 200 "ok\n"; } }
EOF

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks, user + system
ticks=$(getconf CLK_TCK)

run() {  # warden → one line
    local warden=$1
    "$warden" serve --grpc-address 127.0.0.1:19391 --http-address 127.0.0.1:19381 --admin-address off \
        --policies "$work/server-policies" --destination-namespace default --decision-log off --watch-interval-ms 0 \
        --log-level error & local server=$!
    sleep 1
    "$warden" proxy --listen 127.0.0.1:15026 --upstream 127.0.0.1:18280 --authz 127.0.0.1:19391 \
        --cert "$work/details/cert-chain.pem" --key "$work/details/key.pem" --trust-bundle "$work/details/root-cert.pem" \
        --policies "$work/proxy-policies" --namespace default --labels app=details --access-log off --log-level error \
        --watch-interval-ms 0 & local proxy=$!
    pids=("$server" "$proxy")
    sleep 2
    mtlsload -url https://127.0.0.1:15026/bench/1 -sni details -cert "$work/sleep/cert-chain.pem" \
        -key "$work/sleep/key.pem" -ca "$work/sleep/root-cert.pem" -c "$connections" -d "$((seconds + 2))s" -w 1s \
        -H "authorization: Bearer $seed_token" > "$work/load.json" & local load=$!
    sleep 2   # the warm-up second and one more
    local p0 s0 p1 s1
    p0=$(cpu "$proxy"); s0=$(cpu "$server")
    sleep "$seconds"
    p1=$(cpu "$proxy"); s1=$(cpu "$server")
    wait "$load"
    kill "$proxy" "$server"; wait "$proxy" "$server" 2>/dev/null || true
    python3 - "$work/load.json" "$seconds" "$((p1 - p0))" "$((s1 - s0))" "$ticks" "$warden" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
seconds, proxy, server, ticks = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
requests = run["rps"] * seconds
per = lambda t: t / ticks * 1e6 / requests
print("%-40s req/s %7.0f  p50 %6.0f µs  p90 %6.0f µs  proxy CPU %4.0f µs/req  server CPU %4.0f µs/req  %s" % (
    sys.argv[6][-40:], run["rps"], run["p50_us"], run["p90_us"], per(proxy), per(server),
    " ".join("%s:%d" % kv for kv in sorted(run.get("status", {}).items()))))
PY
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $connections connection(s), ${seconds}s per run"
for _ in $(seq "$pairs"); do run "$a"; run "$b"; done
