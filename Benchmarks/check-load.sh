#!/usr/bin/env bash
# Check throughput and latency over loopback: h2load sends gRPC unary Checks (a POST of a length-prefixed
# protobuf with content-type application/grpc and te: trailers) to `warden serve` and, in the same run, to a
# no-op Check server on the same gRPC stack (CheckNoopServer), at several concurrencies.
#
# Each server is pinned to CPU 0 and h2load to CPU 1 (when there are two or more), so the load generator and
# the server do not take turns on one core; runs alternate between the two servers and each figure is the
# median of REPEATS runs. "CPU µs/req" is the server process's user+system time per request.
#
# Each call carries `grpc-timeout: 200m`, as Envoy sends its ext_authz timeout.
#
# With THREADS=N in the environment both servers run N event loops (`warden serve --threads N`); by default
# both use one loop per core. With BASELINE=grpc-swift the no-op server runs on grpc-swift-2's own NIO HTTP/2
# transport instead of Warden's gRPC listener, to compare the two stacks.
#
# Usage: [THREADS=N] [BASELINE=grpc-swift] Benchmarks/check-load.sh [requests-per-run] [repeats]
#        (release builds; nghttp2-client). WARDEN=path/to/warden and NOOP=path/to/CheckNoopServer skip the builds.
set -euo pipefail
cd "$(dirname "$0")"
requests=${1:-20000}
repeats=${2:-3}
command -v h2load >/dev/null || { echo "h2load not found: install Debian's nghttp2-client" >&2; exit 2; }

if [ -n "${WARDEN:-}" ]; then warden=$WARDEN; else
    (cd .. && swift build -c release --product warden >&2)
    warden=$(cd .. && swift build -c release --show-bin-path)/warden
fi
if [ -n "${NOOP:-}" ]; then noop=$NOOP; else
    swift build -c release --product CheckNoopServer >&2
    noop=$(swift build -c release --show-bin-path)/CheckNoopServer
fi

server_cpu=() client_cpu=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    server_cpu=(taskset -c 0) client_cpu=(taskset -c 1)
fi

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$noop" write-request "$work/check.bin"
"${server_cpu[@]}" "$noop" "serve${BASELINE:+-$BASELINE}" 19291 ${THREADS:-} & noop_pid=$!; pids+=($noop_pid)
"${server_cpu[@]}" "$warden" serve --grpc-address 127.0.0.1:19191 --http-address 127.0.0.1:19181 --admin-address off --policies ../policies \
    --decision-log off --watch-interval-ms 0 --log-level warning ${THREADS:+--threads "$THREADS"} & warden_pid=$!
pids+=($warden_pid)
for _ in $(seq 100); do
    curl -sf http://127.0.0.1:19181/health >/dev/null 2>&1 && break
    sleep 0.1
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One run: prints "req/s p50_ms p99_ms cpu_us_per_request".
run() {
    local port=$1 pid=$2 clients=$3 streams=$4
    rm -f "$work/log.tsv"   # h2load appends to its log file
    local before after
    before=$(cpu_ticks "$pid")
    "${client_cpu[@]}" h2load -n "$requests" -c "$clients" -m "$streams" -t 1 \
        -H 'content-type: application/grpc' -H 'te: trailers' -H 'grpc-timeout: 200m' -d "$work/check.bin" \
        --log-file "$work/log.tsv" "http://127.0.0.1:$port/envoy.service.auth.v3.Authorization/Check" > "$work/out.txt"
    after=$(cpu_ticks "$pid")
    local rps failed
    rps=$(awk '/^finished in/ {print $4}' "$work/out.txt")
    failed=$(awk '/^requests:/ {print $10}' "$work/out.txt")
    [ "$failed" = "0" ] || { echo "h2load reported $failed failed requests" >&2; cat "$work/out.txt" >&2; exit 1; }
    # Column 3 of the log is each request's latency in microseconds.
    sort -n -k3 "$work/log.tsv" | awk -v rps="$rps" -v cpu="$(( (after - before) * 1000000 / $(getconf CLK_TCK) ))" \
        -v requests="$requests" '
        { v[NR] = $3 }
        END { printf "%.0f %.3f %.3f %.0f\n", rps, v[int(NR * 0.50)] / 1000, v[int(NR * 0.99)] / 1000, cpu / requests }'
}

. ./median.sh

printf '%-10s | %9s %7s %7s %8s | %9s %7s %7s %8s | %6s\n' "c x m" "noop r/s" "p50 ms" "p99 ms" "CPU µs" \
    "warden r/s" "p50 ms" "p99 ms" "CPU µs" "ratio"
for setting in "1 1" "1 4" "2 8" "4 8" "16 16"; do
    set -- $setting
    run 19291 "$noop_pid" "$1" "$2" > /dev/null   # warm-up
    run 19191 "$warden_pid" "$1" "$2" > /dev/null
    : > "$work/noop.txt"; : > "$work/warden.txt"
    for _ in $(seq "$repeats"); do
        run 19291 "$noop_pid" "$1" "$2" >> "$work/noop.txt"
        run 19191 "$warden_pid" "$1" "$2" >> "$work/warden.txt"
    done
    read -r n_rps n_p50 n_p99 n_cpu < <(median < "$work/noop.txt")
    read -r w_rps w_p50 w_p99 w_cpu < <(median < "$work/warden.txt")
    ratio=$(awk -v a="$w_rps" -v b="$n_rps" 'BEGIN { printf "%.2f", a / b }')
    printf '%-10s | %9s %7s %7s %8s | %9s %7s %7s %8s | %6s\n' "$1 x $2" "$n_rps" "$n_p50" "$n_p99" "$n_cpu" \
        "$w_rps" "$w_p50" "$w_p99" "$w_cpu" "$ratio"
done
