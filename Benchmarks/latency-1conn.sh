#!/usr/bin/env bash
# Check latency at one connection, one request at a time — how many proxies call an authorization service — in
# one run beside nginx from Debian answering `return 200` on the same kind of connection:
#
#   grpc   h2load -c1 -m1 (h2c) ──▶ warden serve: gRPC Check (the request of check-request.py: a sidecar's GET to
#                                   `details` from productpage, denied for lack of a token, with headers and a body)
#   http   h2load -c1 -m1 --h1  ──▶ warden serve: ext_authz HTTP mode, GET /ext_authz/details/1 (denied: 403)
#   nginx  h2load -c1 -m1 --h1  ──▶ nginx: `return 200 "ok"` (keep-alive), one worker
#   nginx-h2  h2load -c1 -m1 (h2c) ──▶ nginx: the same over h2c, the peer for the gRPC figure
#
# Both servers are pinned to CPU 0 and h2load to CPU 1; runs alternate between the four; each figure is the median
# over REPEATS runs of the run's p50 and p99 (from h2load's per-request log) and of the server's CPU time (user and
# system) per request: work done after a response is sent costs CPU but not this latency.
#
# With NOOP=path/to/CheckNoopServer (built in this package) one more: `grpc-noop`, the no-op Check on Warden's gRPC
# listener (what the listener costs without a check).
#
# Usage: Benchmarks/latency-1conn.sh [requests-per-run=20000] [repeats=5]
#        WARDEN=path/to/release/warden to skip the build. Needs nginx and h2load (nghttp2-client).
set -euo pipefail
cd "$(dirname "$0")"
requests=${1:-20000}
repeats=${2:-5}
for tool in h2load nginx python3; do command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 2; }; done
if [ -z "${WARDEN:-}" ]; then
    (cd .. && swift build -c release --product warden >&2)
    WARDEN=$(cd .. && swift build -c release --show-bin-path)/warden
fi
server_cpu=() client_cpu=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then server_cpu=(taskset -c 0) client_cpu=(taskset -c 1); fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

python3 check-request.py "$work/check.bin"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:19380; location / { return 200 "ok"; } }
    server { listen 127.0.0.1:19381 http2; location / { return 200 "ok"; } }
}
CONF
"${server_cpu[@]}" nginx -c "$work/nginx.conf" -e "$work/nginx-error.log"
printf 'request: {destination_namespace: default, destination_labels: {app: details}}\n' > "$work/serve.yaml"
"${server_cpu[@]}" "$WARDEN" serve --config "$work/serve.yaml" --grpc-address 127.0.0.1:19391 --http-address 127.0.0.1:19392 \
    --admin-address off --policies ../policies --decision-log off --watch-interval-ms 0 --log-level warning \
    ${THREADS:+--threads "$THREADS"} & pids+=($!)
warden_pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:19392/health >/dev/null 2>&1 && break; sleep 0.1; done
if [ -n "${NOOP:-}" ]; then "${server_cpu[@]}" "$NOOP" serve 19393 ${THREADS:-} & pids+=($!); noop_pid=$!; sleep 1; fi
nginx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)

# A process's CPU time so far, in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# One run: prints "p50_us p99_us cpu_us_per_request".
run() {
    local kind=$1 pid
    case $kind in grpc-noop) pid=$noop_pid ;; nginx*) pid=$nginx_worker ;; *) pid=$warden_pid ;; esac
    local before
    before=$(ticks "$pid")
    rm -f "$work/log.tsv"
    case $kind in
    grpc) "${client_cpu[@]}" h2load -n "$requests" -c 1 -m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
            -H 'grpc-timeout: 200m' -d "$work/check.bin" --log-file "$work/log.tsv" \
            http://127.0.0.1:19391/envoy.service.auth.v3.Authorization/Check > "$work/out.txt" ;;
    grpc-noop) "${client_cpu[@]}" h2load -n "$requests" -c 1 -m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
            -H 'grpc-timeout: 200m' -d "$work/check.bin" --log-file "$work/log.tsv" \
            http://127.0.0.1:19393/envoy.service.auth.v3.Authorization/Check > "$work/out.txt" ;;
    http) "${client_cpu[@]}" h2load --h1 -n "$requests" -c 1 -m 1 -t 1 --log-file "$work/log.tsv" \
            http://127.0.0.1:19392/ext_authz/details/1 > "$work/out.txt" ;;
    http-noop) "${client_cpu[@]}" h2load --h1 -n "$requests" -c 1 -m 1 -t 1 --log-file "$work/log.tsv" \
            http://127.0.0.1:19392/health > "$work/out.txt" ;;
    nginx) "${client_cpu[@]}" h2load --h1 -n "$requests" -c 1 -m 1 -t 1 --log-file "$work/log.tsv" \
            http://127.0.0.1:19380/details/1 > "$work/out.txt" ;;
    nginx-h2) "${client_cpu[@]}" h2load -n "$requests" -c 1 -m 1 -t 1 --log-file "$work/log.tsv" \
            http://127.0.0.1:19381/details/1 > "$work/out.txt" ;;
    esac
    local done
    done=$(awk '/^requests:/ {print $6}' "$work/out.txt")
    [ "$done" = "$requests" ] || { echo "$kind: h2load finished $done of $requests" >&2; cat "$work/out.txt" >&2; exit 1; }
    local cpu
    cpu=$(( ($(ticks "$pid") - before) * 1000000 / $(getconf CLK_TCK) / requests ))
    sort -n -k3 "$work/log.tsv" | awk -v cpu="$cpu" '{ v[NR] = $3 } END { printf "%d %d %d\n", v[int(NR * 0.50)], v[int(NR * 0.99)], cpu }'
}

. ./median.sh

kinds=(grpc http http-noop nginx nginx-h2)
[ -n "${NOOP:-}" ] && kinds+=(grpc-noop)
for kind in "${kinds[@]}"; do run "$kind" > /dev/null; : > "$work/$kind.txt"; done   # warm-up
for _ in $(seq "$repeats"); do
    for kind in "${kinds[@]}"; do run "$kind" >> "$work/$kind.txt"; done
done
printf '%-9s %8s %8s %8s\n' "path" "p50 µs" "p99 µs" "CPU µs"
for kind in "${kinds[@]}"; do
    read -r p50 p99 cpu < <(median < "$work/$kind.txt")
    printf '%-9s %8s %8s %8s\n' "$kind" "$p50" "$p99" "$cpu"
    eval "p50_${kind//-/_}=$p50"
done
[ -n "${NOOP:-}" ] && awk -v g="$p50_grpc" -v n="$p50_grpc_noop" 'BEGIN { printf "grpc / grpc-noop = %.2f\n", g / n }'
awk -v h="$p50_http" -v n="$p50_http_noop" 'BEGIN { printf "http / http-noop = %.2f\n", h / n }'
awk -v g="$p50_grpc" -v h="$p50_http" -v n="$p50_nginx" -v n2="$p50_nginx_h2" 'BEGIN {
    printf "ratio of p50s: http / nginx = %.2f, grpc / nginx-h2 = %.2f\n", h / n, g / n2 }'
