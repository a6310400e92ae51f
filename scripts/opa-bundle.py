#!/usr/bin/env python3
"""OPA bundles from the other side, for Warden's interoperability tests.

  opa-bundle.py eval BUNDLE.tar.gz QUERY [INPUT.json]
      Reads a bundle with Python's tarfile, places each data.json at its directory's path below `data` (as OPA's
      bundle reader does) and evaluates QUERY with OPA's own engine (../shared/tools/opa-oracle) over the bundle's
      .rego modules and data. Prints opa-oracle's JSON line.

  opa-bundle.py make SRC_DIR OUT.tar.gz [--revision R] [--key KEY.pem] [--keyid ID]
      Writes a bundle the way `opa build` does (OPA v1 bundle.Writer): entries /data.json (the merged data), the
      modules at /<path>, /.signatures.json, /.manifest `{"revision":R,"roots":[""],"rego_version":1}`, mode 0600,
      and with --key an RS256 JWT over OPA's file digests (payload {"files":[...],"keyid":ID}, header kid).
      The digests are computed here independently of Warden (OPA's hash.go: structured files as canonical JSON).
"""
import base64, gzip, hashlib, io, json, os, subprocess, sys, tarfile, tempfile

ORACLE = os.environ.get("OPA_ORACLE") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tools", "opa-oracle")


class Num(str):
    """A JSON number kept as its literal text, as Go's json.Number keeps it."""


def go_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"': out.append('\\"')
        elif ch == '\\': out.append('\\\\')
        elif ch == '\b': out.append('\\b')
        elif ch == '\f': out.append('\\f')
        elif ch == '\n': out.append('\\n')
        elif ch == '\r': out.append('\\r')
        elif ch == '\t': out.append('\\t')
        elif o < 0x20 or o in (0x2028, 0x2029): out.append('\\u%04x' % o)
        else: out.append(ch)
    out.append('"')
    return ''.join(out)


def canonical(v):
    """OPA's hash.go walk: objects with keys in byte order, no whitespace, Go's string encoding, numbers verbatim."""
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode())
        return '{' + ','.join(go_string(k) + ':' + canonical(v[k]) for k in keys) + '}'
    if isinstance(v, list):
        return '[' + ','.join(canonical(x) for x in v) + ']'
    if isinstance(v, Num): return str(v)
    if isinstance(v, str): return go_string(v)
    if v is True: return 'true'
    if v is False: return 'false'
    if v is None: return 'null'
    raise TypeError(type(v))


def load_json(b):
    return json.loads(b, parse_float=Num, parse_int=Num)


def digest(name, data):
    base = name.rsplit('/', 1)[-1]
    if base in ('data.json', '.manifest'):
        data = canonical(load_json(data)).encode()
    return hashlib.sha256(data).hexdigest()


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b'=').decode()


def sign_rs256(key_pem, header, payload):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    key = serialization.load_pem_private_key(key_pem, password=None)
    signing_input = (b64(header) + '.' + b64(payload)).encode()
    return signing_input.decode() + '.' + b64(key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()))


def make(src, out, revision='', key=None, keyid='default'):
    modules, data = [], {}
    for root, _, names in os.walk(src):
        for n in sorted(names):
            full = os.path.join(root, n)
            rel = os.path.relpath(full, src)
            if n.endswith('.rego'):
                modules.append((rel, open(full, 'rb').read()))
            elif n == 'data.json':
                node = data
                parts = [p for p in os.path.dirname(rel).split('/') if p]
                for p in parts[:-1]:
                    node = node.setdefault(p, {})
                value = load_json(open(full, 'rb').read())
                if parts:
                    node.setdefault(parts[-1], {}).update(value)
                else:
                    data.update(value)
    data_bytes = json.dumps(data, separators=(',', ':')).encode() if not data else canonical(data).encode()
    manifest = ('{"revision":%s,"roots":[""],"rego_version":1}' % go_string(revision)).encode()
    files = [('data.json', data_bytes)] + sorted(modules)
    entries = [('/data.json', data_bytes)] + [('/' + p, b) for p, b in sorted(modules)]
    if key:
        listed = [{"name": n, "hash": digest(n, b), "algorithm": "SHA-256"} for n, b in files]
        listed.append({"name": ".manifest", "hash": digest('.manifest', manifest), "algorithm": "SHA-256"})
        header = json.dumps({"alg": "RS256", "kid": keyid}, separators=(',', ':')).encode()
        payload = json.dumps({"files": listed, "keyid": keyid}, separators=(',', ':')).encode()
        token = sign_rs256(open(key, 'rb').read(), header, payload)
        entries.append(('/.signatures.json', json.dumps({"signatures": [token]}, indent=1).encode()))
    entries.append(('/.manifest', manifest))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for name, body in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), 0o600
            tar.addfile(info, io.BytesIO(body))
    with open(out, 'wb') as f:
        f.write(gzip.compress(raw.getvalue()))


def evaluate(bundle, query, input_file=None):
    data, modules = {}, {}
    with tarfile.open(bundle, 'r:gz') as tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            name = m.name.lstrip('/')
            body = tar.extractfile(m).read()
            if name.endswith('.rego'):
                modules[name] = body
            elif name.rsplit('/', 1)[-1] == 'data.json':
                node = data
                for p in [p for p in name.split('/')[:-1] if p]:
                    node = node.setdefault(p, {})
                node.update(json.loads(body))
    with tempfile.TemporaryDirectory() as d:
        args = [ORACLE, 'eval']
        for name, body in modules.items():
            path = os.path.join(d, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, 'wb').write(body)
            args += ['-d', path]
        open(os.path.join(d, '.data.json'), 'w').write(json.dumps(data))
        args += ['--data', os.path.join(d, '.data.json')]
        if input_file:
            args += ['-i', input_file]
        args.append(query)
        sys.stdout.write(subprocess.run(args, check=True, capture_output=True, text=True).stdout)


if __name__ == '__main__':
    a = sys.argv[1:]
    if a and a[0] == 'eval' and len(a) in (3, 4):
        evaluate(*a[1:])
    elif a and a[0] == 'make' and len(a) >= 3:
        opts = dict(zip(a[3::2], a[4::2]))
        make(a[1], a[2], opts.get('--revision', ''), opts.get('--key'), opts.get('--keyid', 'default'))
    else:
        sys.exit(__doc__)
