#!/usr/bin/env bash
# Where a request's CPU goes on each of proxy-load.sh's enforcing paths: the CPU time (user and system, from /proc)
# that every process on the path spends per request under the same mTLS keep-alive load, and how busy the machine
# was. On a machine the processes share, a path's throughput is what its whole budget allows:
#
#   proxy    mtlsload → warden proxy (RequestAuthentication, gRPC Check with warden serve) → nginx (return 200)
#   nginx    mtlsload → nginx (auth_request to warden serve's HTTP ext_authz) → nginx (return 200)
#
# Both paths end at the same upstream (its own nginx instance); the enforcing nginx is another instance.
#
# Usage: Benchmarks/path-cpu.sh [connections=16] [seconds=6]
# Knobs: WARDEN=path/to/warden (default ../.build/release/warden), PROXY_THREADS=N, NGINX_WORKERS=N (default 2).
# Needs what proxy-load.sh needs. The two nginx columns are each instance's workers.
set -euo pipefail
cd "$(dirname "$0")"
warden=$(realpath "${WARDEN:-../.build/release/warden}")
connections=${1:-16}; seconds=${2:-6}
. ./proxy-workload.sh

bench_scratch
ulimit -n "$(ulimit -Hn)"

proxy_workload "$warden" "$work"
start_nginx_paths "$work" "${NGINX_WORKERS:-2}"
"$warden" serve --grpc-address 127.0.0.1:19191 --http-address 127.0.0.1:19181 --admin-address off \
    --policies "$work/server-policies" --destination-namespace default --decision-log off --watch-interval-ms 0 \
    --log-level warning & server=$!; pids+=($server)
sleep 1
"$warden" proxy --listen 127.0.0.1:15006 --upstream 127.0.0.1:18080 --authz 127.0.0.1:19191 \
    --cert "$work/details/cert-chain.pem" --key "$work/details/key.pem" --trust-bundle "$work/details/root-cert.pem" \
    --policies "$work/proxy-policies" --namespace default --labels app=details --access-log off --log-level warning \
    --watch-interval-ms 0 ${PROXY_THREADS:+--threads "$PROXY_THREADS"} & proxy=$!; pids+=($proxy)
sleep 2

ticks=$(getconf CLK_TCK)
cpu() { local total=0 pid; for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$total"; }
machine() { awk '/^cpu / {busy = 0; for (i = 2; i <= NF; i++) busy += $i; print busy, $5 + $6}' /proc/stat; }
upstream_workers=$(pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' ')
enforcer_workers=$(pgrep -P "$(cat "$work/nginx-enforcer.pid")" | tr '\n' ' ')

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $connections connection(s), ${seconds}s per path"
for path in proxy nginx; do
    port=$([ "$path" = proxy ] && echo 15006 || echo 18444)
    mtlsload -url "https://127.0.0.1:$port/bench/1" -sni details -cert "$work/sleep/cert-chain.pem" \
        -key "$work/sleep/key.pem" -ca "$work/sleep/root-cert.pem" -c "$connections" -d "$((seconds + 3))s" -w 1s \
        -H "authorization: Bearer $seed_token" > "$work/load.json" & load=$!
    sleep 2   # the warm-up second and one more
    before="$(cpu "$proxy") $(cpu $enforcer_workers) $(cpu "$server") $(cpu $upstream_workers) $(cpu "$load") $(machine)"
    sleep "$seconds"
    after="$(cpu "$proxy") $(cpu $enforcer_workers) $(cpu "$server") $(cpu $upstream_workers) $(cpu "$load") $(machine)"
    wait "$load"
    python3 - "$work/load.json" "$seconds" "$ticks" "$path" "$before" "$after" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
seconds, ticks, path = float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
before, after = [list(map(int, arg.split())) for arg in sys.argv[5:7]]
requests = run["rps"] * seconds
per = [(after[i] - before[i]) / ticks * 1e6 / requests for i in range(5)]
busy = 100 * (1 - (after[6] - before[6]) / max(1, after[5] - before[5]))
print("%-5s req/s %6.0f  p50 %5.0f µs | CPU µs a request: warden proxy %5.1f  nginx enforcing %5.1f  warden serve %5.1f  "
      "upstream %5.1f  mtlsload %5.1f  all %5.1f | machine busy %3.0f %% | %s" % (
      path, run["rps"], run["p50_us"], *per, sum(per), busy,
      " ".join("%s:%d" % kv for kv in sorted(run.get("status", {}).items()))))
PY
done
