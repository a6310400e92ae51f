#!/usr/bin/env bash
# Rego decision cost, Warden against OPA, the same work inside one process on each side.
#
# Both engines load the same policy (RegoBenchmarks/policy/authz.rego) and the same data: 10,000 seeded
# OPA-Envoy inputs under `data.bench_inputs` (RegoBenchmarks/make-inputs.py). Each run is one process that
# evaluates one query and prints its answer:
#
#   full:  out := [r | some x in data.bench_inputs; r := data.envoy.authz.allow with input as x]
#   load:  out := count(data.bench_inputs)
#
# Warden runs `warden eval`, OPA runs the oracle (../../shared/tools/opa-oracle eval: OPA v1.20's Go engine,
# in process). The per-decision cost is (full − load) / inputs, so start-up, reading the 10 MB of data,
# compiling the policy and printing are subtracted on each side by its own run; what is left is evaluating
# 10,000 decisions inside the engine. Runs alternate between the engines (W full, W load, O full, O load, then
# the other engine first next round), each process is pinned to one CPU (so Go's GC threads share the core the
# engine runs on, as Warden's one thread does), and each figure is the median over ROUNDS rounds of that
# round's difference. CPU time (user+system of the process) is the headline, since other work on the machine
# stretches wall time; wall time is printed too. Both engines' answers (10,000 booleans) must be equal.
#
# Usage: [ROUNDS=7] [INPUTS=10000] [CPU=0] [WARDEN=path] Benchmarks/rego-vs-opa.sh
#        (builds `warden` in release unless WARDEN is given; python3; the oracle fetches OPA on first use)
set -euo pipefail
cd "$(dirname "$0")"
rounds=${ROUNDS:-7}
count=${INPUTS:-10000}
oracle=${OPA_ORACLE:-../../shared/tools/opa-oracle}
[ -x "$oracle" ] || { echo "opa-oracle not found at $oracle (set OPA_ORACLE)" >&2; exit 2; }
if [ -z "${WARDEN:-}" ]; then
    (cd .. && swift build -c release --product warden >&2)
    WARDEN=$(cd .. && swift build -c release --show-bin-path)/warden
fi

mkdir -p .build
data=.build/rego-bench-data-$count.json
if [ ! -f "$data" ]; then
    RegoBenchmarks/make-inputs.py "$count" | python3 -c '
import json, sys
json.dump({"bench_inputs": [json.loads(l) for l in sys.stdin if l.strip()]}, sys.stdout, separators=(",", ":"))
' > "$data.tmp"
    mv "$data.tmp" "$data"
fi

exec python3 - "$WARDEN" "$oracle" RegoBenchmarks/policy/authz.rego "$data" "$rounds" "$count" "${CPU-0}" <<'EOF'
import json, os, resource, statistics, subprocess, sys, time

warden, oracle, policy, data, rounds, count, cpu = sys.argv[1:]
rounds, count = int(rounds), int(count)
full = "out := [r | some x in data.bench_inputs; r := data.envoy.authz.allow with input as x]"
load = "out := count(data.bench_inputs)"
pin = ["taskset", "-c", cpu] if cpu != "" and os.path.exists("/usr/bin/taskset") else []

def command(engine, query):
    if engine == "warden":
        # The data (10,000 inputs) is bigger than the default limits.max_file_bytes of a policy file.
        return pin + [warden, "eval", "--max-file-bytes", str(64 << 20), "-d", policy, "--data", data, query]
    return pin + [oracle, "eval", "-d", policy, "--data", data, query]

def answer(engine, text):
    doc = json.loads(text)
    if engine == "warden":
        return doc["result"][0]["bindings"]["out"]
    return doc["result"][0]["out"]

def run(engine, query):
    """One process: (cpu seconds, wall seconds, answer)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command(engine, query), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{engine} failed ({proc.returncode}): {err.decode()[:2000]}")
    return wall, answer(engine, out)

def timed(engine, query):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, value = run(engine, query)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu_s, wall, value

# Warm the page cache and the oracle's first-use download, and check the answers once.
_, _, w = timed("warden", full)
_, _, o = timed("opa", full)
if w != o:
    diffs = [i for i, (a, b) in enumerate(zip(w, o)) if a != b]
    sys.exit(f"answers differ: warden {len(w)} values, opa {len(o)}; first differing inputs: {diffs[:10]}")
assert len(w) == count, (len(w), count)
allowed = sum(1 for v in w if v is True)
print(f"answers equal: {count} decisions, {allowed} allowed, {count - allowed} denied", flush=True)

samples = {e: {"cpu": [], "wall": [], "fcpu": [], "lcpu": []} for e in ("warden", "opa")}
for r in range(rounds):
    order = ("warden", "opa") if r % 2 == 0 else ("opa", "warden")
    for engine in order:
        fc, fw, fv = timed(engine, full)
        lc, lw, lv = timed(engine, load)
        if fv != w or lv != count:
            sys.exit(f"{engine} answered differently in round {r + 1}")
        s = samples[engine]
        s["cpu"].append((fc - lc) / count * 1e6)
        s["wall"].append((fw - lw) / count * 1e6)
        s["fcpu"].append(fc)
        s["lcpu"].append(lc)
    print(f"round {r + 1}: warden {samples['warden']['cpu'][-1]:.2f} µs (wall {samples['warden']['wall'][-1]:.2f}), "
          f"opa {samples['opa']['cpu'][-1]:.2f} µs (wall {samples['opa']['wall'][-1]:.2f})", flush=True)

med = {e: {k: statistics.median(v) for k, v in s.items()} for e, s in samples.items()}
print()
print(f"{'':8} {'µs/decision (CPU)':>18} {'range':>17} {'µs/decision (wall)':>19} {'full run CPU s':>15} {'load run CPU s':>15}")
for e in ("warden", "opa"):
    m, s = med[e], samples[e]
    print(f"{e:8} {m['cpu']:18.2f} {min(s['cpu']):8.2f}–{max(s['cpu']):<8.2f} {m['wall']:19.2f} {m['fcpu']:15.3f} {m['lcpu']:15.3f}")
print()
print(f"OPA / Warden: {med['opa']['cpu'] / med['warden']['cpu']:.1f}x by CPU time, "
      f"{med['opa']['wall'] / med['warden']['wall']:.1f}x by wall time "
      f"(medians of {rounds} interleaved rounds, {count} inputs, load average {os.getloadavg()[0]:.1f})")
EOF
