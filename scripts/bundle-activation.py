#!/usr/bin/env python3
"""Measures what activating a bundle costs, in Warden and in OPA's engine, on the same bundle.

  bundle-activation.py WARDEN BUNDLE.tar.gz PUBLIC_KEY.pem [RUNS]

Warden: `warden check BUNDLE --bundle-key KEY` reads the .tar.gz within its limits, verifies the signature (every
file's digest, data hashed as canonical JSON), and parses, validates and compiles the policies and data exactly as
`warden serve --bundle` does before its atomic swap; the same command on a one-file bundle is measured as the
process's fixed cost and subtracted. OPA (the oracle's Go engine, in-process): the same .rego modules and data added
to a fresh engine and compiled by a first query; no gzip, tar or signature work, so OPA's side does less.
Prints medians in milliseconds.
"""
import gzip, io, json, os, statistics, subprocess, sys, tarfile, tempfile, time

warden, bundle, key = sys.argv[1:4]
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5


def timed(args):
    t = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stdout + out.stderr)
    return (time.perf_counter() - t) * 1000


with tempfile.TemporaryDirectory() as d:
    os.makedirs(d + '/small/p')
    open(d + '/small/p/x.rego', 'w').write('package p\n\nx := 1\n')
    key_pem = key.replace('.pub', '.pem')
    subprocess.run([warden, 'build', d + '/small', '-o', d + '/small.tar.gz', '--signing-key', key_pem],
                   check=True, capture_output=True)
    base = statistics.median(timed([warden, 'check', d + '/small.tar.gz', '--bundle-key', key]) for _ in range(runs))
    full = statistics.median(timed([warden, 'check', bundle, '--bundle-key', key]) for _ in range(runs))

modules, data = {}, []
with tarfile.open(bundle, 'r:gz') as tar:
    for m in tar.getmembers():
        name = m.name.lstrip('/')
        if m.isfile() and name.endswith('.rego'):
            modules[name] = tar.extractfile(m).read().decode()
        elif m.isfile() and name.rsplit('/', 1)[-1] == 'data.json':
            # The raw JSON text goes to Go as it is (no Python encoding in the timed part), at its directory's path.
            data.append(('.'.join(p for p in name.split('/')[:-1] if p), tar.extractfile(m).read()))

cache = os.environ.get('OPA_ORACLE_CACHE') or os.path.expanduser('~/.cache/opa-oracle')
sys.path.insert(0, cache + '/x')
from opa_bindings import OpaEngine  # noqa: E402

opa = []
for _ in range(runs):
    t = time.perf_counter()
    engine = OpaEngine()
    for name, src in modules.items():
        engine.add_policy(name, src)
    for path, raw in data:
        engine._call(engine._lib.OpaAddData, path.encode(), raw)
    engine.eval_query('x := 1')
    opa.append((time.perf_counter() - t) * 1000)
    engine.close()

print(json.dumps({
    'bundle_bytes': os.path.getsize(bundle),
    'warden_check_ms': round(full, 1), 'warden_fixed_cost_ms': round(base, 1),
    'warden_activation_ms': round(full - base, 1),
    'opa_engine_load_ms': round(statistics.median(opa), 1), 'runs': runs,
}))
