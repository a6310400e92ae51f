#!/usr/bin/env bash
# `warden proxy`'s memory: its resident set at start (anonymous and file-backed), after one request, with N idle
# keep-alive mTLS connections (each has had one request through the proxy, a check with `warden serve` and the
# upstream), the same once the proxy has been quiet for 12 s (it trims the heap when quiet), and once they have
# closed and the proxy has been quiet again.
#
# Usage: Benchmarks/proxy-memory.sh [warden binary=../.build/release/warden] [connections=1000]
# Needs python3 (idle-connections.py) and curl. Nothing is built here: build the binary first.
set -euo pipefail
cd "$(dirname "$0")"
warden=$(realpath "${1:-../.build/release/warden}")
count=${2:-1000}
. ./proxy-workload.sh

bench_scratch
ulimit -n "$(ulimit -Hn)"

proxy_workload "$warden" "$work"

"$warden" serve --grpc-address 127.0.0.1:19291 --http-address 127.0.0.1:19281 --admin-address off \
    --policies "$work/server-policies" --destination-namespace default --decision-log off --watch-interval-ms 0 \
    --log-level warning & pids+=($!)
"$warden" upstream --listen 127.0.0.1:18091 --body ok 2>/dev/null & pids+=($!)
sleep 1
"$warden" proxy --listen 127.0.0.1:15016 --upstream 127.0.0.1:18091 --authz 127.0.0.1:19291 \
    --cert "$work/details/cert-chain.pem" --key "$work/details/key.pem" --trust-bundle "$work/details/root-cert.pem" \
    --policies "$work/proxy-policies" --namespace default --labels app=details --access-log off --log-level warning \
    --watch-interval-ms 0 & proxy=$!; pids+=($proxy)
sleep 2

report() {
    local rss anon
    rss=$(awk '/^Rss:/ {print $2}' "/proc/$proxy/smaps_rollup")
    anon=$(awk '/^Anonymous:/ {print $2}' "/proc/$proxy/smaps_rollup")
    printf '%-34s RSS %7s KiB  anonymous %7s KiB  file-backed %7s KiB  threads %s\n' "$1" "$rss" "$anon" \
        "$((rss - anon))" "$(awk '/^Threads:/ {print $2}' "/proc/$proxy/status")"
}
report "at start"
curl -s -o /dev/null --cacert "$work/sleep/root-cert.pem" --cert "$work/sleep/cert-chain.pem" --key "$work/sleep/key.pem" \
    --resolve details:15016:127.0.0.1 -H "authorization: Bearer $seed_token" https://details:15016/bench/one
report "after one request"
python3 idle-connections.py 15016 "$count" "$work/sleep" "$seed_token" > "$work/idle.out" & idle=$!; pids+=($idle)
for _ in $(seq 1200); do grep -q ready "$work/idle.out" 2>/dev/null && break; sleep 0.1; done
sleep 1
report "with $(grep -o '[0-9]* connections' "$work/idle.out") idle"
sleep 12   # the proxy trims within 11 s of going quiet (a check every 5 s, then 1 s)
report "the same, quiet for 12 s"
kill "$idle"
sleep 12   # the proxy trims within 11 s of going quiet (a check every 5 s, then 1 s)
report "closed, then quiet for 12 s"
echo "the binary's largest resident mappings (KiB):"
awk '/^[0-9a-f]+-/ {name = $6 == "" ? "[anonymous]" : $6} /^Rss:/ {rss[name] += $2}
     END {for (n in rss) if (rss[n] > 1000) printf "  %7d %s\n", rss[n], n}' "/proc/$proxy/smaps" | sort -rn
