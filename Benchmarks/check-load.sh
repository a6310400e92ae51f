#!/usr/bin/env bash
# Check throughput and latency over loopback: h2load sends gRPC unary Checks (a POST of a length-prefixed
# protobuf with content-type application/grpc and te: trailers) to `warden serve` and, in the same run, to a
# no-op Check server on the same gRPC stack (CheckNoopServer), at several concurrencies.
#
# Usage: Benchmarks/check-load.sh [requests-per-run]     (release builds; needs Debian's nghttp2-client)
set -euo pipefail
cd "$(dirname "$0")"
requests=${1:-100000}
command -v h2load >/dev/null || { echo "h2load not found: install Debian's nghttp2-client" >&2; exit 2; }

(cd .. && swift build -c release --product warden >&2)
swift build -c release --product CheckNoopServer >&2
warden=$(cd .. && swift build -c release --show-bin-path)/warden
noop=$(swift build -c release --show-bin-path)/CheckNoopServer

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$noop" write-request "$work/check.bin"
"$noop" serve 19291 & pids+=($!)
"$warden" serve --grpc-address 127.0.0.1:19191 --http-address 127.0.0.1:19181 --policies ../policies \
    --decision-log off --watch-interval-ms 0 --log-level warning & pids+=($!)
for _ in $(seq 100); do
    curl -sf http://127.0.0.1:19181/health >/dev/null 2>&1 && break
    sleep 0.1
done

# One run: prints "req/s p50_ms p99_ms" from h2load's per-request log.
run() {
    local port=$1 clients=$2 streams=$3
    h2load -n "$requests" -c "$clients" -m "$streams" -t 1 \
        -H 'content-type: application/grpc' -H 'te: trailers' -d "$work/check.bin" \
        --log-file "$work/log.tsv" "http://127.0.0.1:$port/envoy.service.auth.v3.Authorization/Check" > "$work/out.txt"
    local rps failed
    rps=$(awk '/^finished in/ {print $4}' "$work/out.txt")
    failed=$(awk '/^requests:/ {print $10}' "$work/out.txt")
    [ "$failed" = "0" ] || { echo "h2load reported $failed failed requests" >&2; cat "$work/out.txt" >&2; exit 1; }
    # Column 3 of the log is each request's latency in microseconds.
    sort -n -k3 "$work/log.tsv" | awk -v n="$(wc -l < "$work/log.tsv")" '
        { v[NR] = $3 }
        END { printf "%s %.3f %.3f\n", "'"$rps"'", v[int(n * 0.50)] / 1000, v[int(n * 0.99)] / 1000 }'
}

printf '%-22s %12s %9s %9s %12s %9s %9s %7s\n' "clients x streams" "noop req/s" "p50 ms" "p99 ms" \
    "warden req/s" "p50 ms" "p99 ms" "ratio"
for setting in "1 1" "4 8" "16 16" "64 16"; do
    set -- $setting
    run 19291 "$1" "$2" > /dev/null   # warm-up
    read -r noop_rps noop_p50 noop_p99 < <(run 19291 "$1" "$2")
    run 19191 "$1" "$2" > /dev/null
    read -r w_rps w_p50 w_p99 < <(run 19191 "$1" "$2")
    ratio=$(awk -v a="$w_rps" -v b="$noop_rps" 'BEGIN { printf "%.2f", a / b }')
    printf '%-22s %12s %9s %9s %12s %9s %9s %7s\n' "$1 x $2" "$noop_rps" "$noop_p50" "$noop_p99" "$w_rps" "$w_p50" "$w_p99" "$ratio"
done
