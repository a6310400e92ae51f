#!/usr/bin/env bash
# `warden proxy` under mTLS keep-alive load, in one run beside its peers:
#
#   direct   mtlsload ──mTLS──▶ nginx (return 200)
#   proxy    mtlsload ──mTLS──▶ warden proxy ──HTTP/1.1──▶ nginx (return 200)
#                                   └── RequestAuthentication (the seed's JWKS; the token is verified, then cached)
#                                   └── ext_authz gRPC Check ──▶ warden serve (an AuthorizationPolicy per request)
#   nginx    mtlsload ──mTLS──▶ nginx ──auth_request (keep-alive)──▶ warden serve's HTTP ext_authz
#                                   └──HTTP/1.1 (keep-alive)──▶ nginx (return 200)
#
# The upstream is one nginx instance for every path; the enforcing nginx is another, so that both enforcement
# points reach the upstream across processes (see start_nginx_paths).
#
# with a client certificate on every connection (mtlsload: HTTP/1.1 keep-alive, closed loop; wrk and h2load cannot
# present one). Every request carries the seed's token. Runs alternate between the paths; each figure is the median
# of REPEATS runs. Also: the proxy with grpc-swift-2's client (`--authz-client grpc-swift`), new TLS handshakes per
# second (`openssl s_time -new`), and the proxy's resident memory with 1,000 idle keep-alive mTLS connections.
#
# Usage: Benchmarks/proxy-load.sh [duration=10s] [repeats=3]
# Knobs (environment): PROXY_THREADS=N gives the proxies `--threads N` (default: one event loop per core);
# NGINX_WORKERS=N for each nginx instance (default 2, one per core); CONNECTIONS="16 64" and PATHS="proxy nginx" pick the table's rows;
# TABLE_ONLY=1 stops after the table (no handshake rates, no memory).
# Needs: a release build (built here, or WARDEN=path/to/warden), nginx, openssl, python3, and mtlsload
#        (apt-get install -y golang-go && (cd ../shared/tools/mtlsload && go build -o /usr/local/bin/mtlsload .)).
# Leave nginx running for UpstreamClientBenchmarks with KEEP_NGINX=1 (its port is 18080).
set -euo pipefail
cd "$(dirname "$0")"
duration=${1:-10s}
repeats=${2:-3}
for tool in mtlsload nginx openssl python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found (see the usage above)" >&2; exit 2; }
done

if [ -n "${WARDEN:-}" ]; then warden=$WARDEN; else
    (cd .. && swift build -c release --product warden >&2)
    warden=$(cd .. && swift build -c release --show-bin-path)/warden
fi
. ./proxy-workload.sh

bench_scratch
ulimit -n "$(ulimit -Hn)"   # as many descriptors as allowed: 1,000 idle connections need 2,000 or more

proxy_workload "$warden" "$work"
start_nginx_paths "$work" "${NGINX_WORKERS:-2}"

"$warden" serve --grpc-address 127.0.0.1:19191 --http-address 127.0.0.1:19181 --admin-address off --policies "$work/server-policies" \
    --destination-namespace default --decision-log off --watch-interval-ms 0 --log-level warning & pids+=($!)
sleep 1
proxy_args=(--upstream 127.0.0.1:18080 --authz 127.0.0.1:19191 --cert "$work/details/cert-chain.pem"
    --key "$work/details/key.pem" --trust-bundle "$work/details/root-cert.pem" --policies "$work/proxy-policies"
    --namespace default --labels app=details --access-log off --log-level warning --watch-interval-ms 0
    ${PROXY_THREADS:+--threads "$PROXY_THREADS"})
"$warden" proxy --listen 127.0.0.1:15006 "${proxy_args[@]}" & proxy_pid=$!; pids+=($proxy_pid)
"$warden" proxy --listen 127.0.0.1:15007 --authz-client grpc-swift "${proxy_args[@]}" & pids+=($!)
sleep 2
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
fresh=$(rss "$proxy_pid")

load() {  # port connections → one JSON line
    mtlsload -url "https://127.0.0.1:$1/bench/1" -sni details -cert "$work/sleep/cert-chain.pem" \
        -key "$work/sleep/key.pem" -ca "$work/sleep/root-cert.pem" -c "$2" -d "$duration" -w 2s \
        -H "authorization: Bearer $seed_token"
}

declare -A ports=([direct]=18443 [proxy]=15006 [proxy-grpc-swift]=15007 [nginx]=18444)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-18s %5s %10s %9s %9s %9s %s\n' path conns 'req/s' 'p50 µs' 'p90 µs' 'p99 µs' statuses
for connections in ${CONNECTIONS:-1 16 64}; do
    declare -A results=()
    for round in $(seq "$repeats"); do
        for path in ${PATHS:-direct proxy proxy-grpc-swift nginx}; do
            results[$path]+="$(load "${ports[$path]}" "$connections")"$'\n'
        done
    done
    for path in ${PATHS:-direct proxy proxy-grpc-swift nginx}; do
        printf '%s' "${results[$path]}" | python3 -c '
import json, statistics, sys
runs = [json.loads(line) for line in sys.stdin if line.strip()]
med = lambda key: statistics.median(run[key] for run in runs)
statuses = {}
for run in runs:
    for code, count in run.get("status", {}).items(): statuses[code] = statuses.get(code, 0) + count
print("%-18s %5s %10.0f %9.0f %9.0f %9.0f %s" % (sys.argv[1], sys.argv[2], med("rps"), med("p50_us"), med("p90_us"),
      med("p99_us"), " ".join("%s:%d" % kv for kv in sorted(statuses.items()))))' "$path" "$connections"
    done
done

[ -n "${TABLE_ONLY:-}" ] && exit 0
echo
echo "new TLS handshakes (openssl s_time -new, one request each, 10 s):"
for path in direct proxy nginx; do
    out=$(openssl s_time -connect "127.0.0.1:${ports[$path]}" -new -cert "$work/sleep/cert-chain.pem" \
        -key "$work/sleep/key.pem" -CAfile "$work/sleep/root-cert.pem" -time 10 -www /bench/1 2>&1 || true)
    printf '%-18s %s\n' "$path" "$(echo "$out" | grep -m1 'connections in .* real seconds' || echo "$out" | tail -1)"
done

echo
sleep 12   # the proxy gives back what the load freed within 11 s of going quiet
before=$(rss "$proxy_pid")
python3 idle-connections.py 15006 1000 "$work/sleep" "$seed_token" > "$work/idle.out" & idle_pid=$!; pids+=($idle_pid)
for _ in $(seq 600); do grep -q ready "$work/idle.out" 2>/dev/null && break; sleep 0.1; done
sleep 1
echo "proxy RSS: $fresh KiB at start, $before KiB idle after the load, $(rss "$proxy_pid") KiB with $(grep -o '[0-9]* connections' "$work/idle.out") open (idle keep-alive mTLS)"
kill "$idle_pid" 2>/dev/null || true
