#!/usr/bin/env python3
"""Writes Tests/RegoTests/Fixtures/builtins.jsonl: builtin calls from scripts/builtin-cases/*.cases with OPA's answers.

A .cases file has one call per line: the builtin name, a tab, and the operands as a JSON array written as text (so
number text such as `1.50` reaches OPA unchanged). `{"$set": [...]}` stands for a set. Lines starting with `#` are
comments. Operands reach OPA through `input`, so type errors happen at evaluation, as they do for real requests.

Output lines: {"name": ..., "args": [operand JSON text...], "result": "<OPA's JSON>"} or "undefined": true, or
"error": "<code>: <builtin>: <message>".

    scripts/make-builtin-fixture.py [CASES_DIR OUTPUT]

With arguments it reads CASES_DIR/*.cases and writes OUTPUT instead (for exploratory runs; point the tests at
it with WARDEN_BUILTIN_FIXTURE=OUTPUT).
"""
import glob
import json
import os
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))


def _load_case_writer():
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_builtin_cases", os.path.join(here, "make-builtin-cases.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# One parser of `[op, op, ...]` operand lists for both generators.
split_operands = _load_case_writer().split_operands


def has_set(text):
    return '"$set"' in text


def expression(path, value):
    """A Rego expression reading `value` from `path` in input, with {"$set": [...]} markers turned into set literals
    of input references, so every operand is still only known at evaluation."""
    if isinstance(value, dict) and list(value.keys()) == ["$set"]:
        elements = [expression('%s["$set"][%d]' % (path, i), v) for i, v in enumerate(value["$set"])]
        return "{%s}" % ", ".join(elements) if elements else "set()"
    if isinstance(value, list) and '"$set"' in json.dumps(value):
        return "[%s]" % ", ".join(expression("%s[%d]" % (path, i), v) for i, v in enumerate(value))
    if isinstance(value, dict) and '"$set"' in json.dumps(value):
        return "{%s}" % ", ".join("%s: %s" % (json.dumps(k), expression("%s[%s]" % (path, json.dumps(k)), v))
                                  for k, v in value.items())
    return path


calls = []
cases_dir = sys.argv[1] if len(sys.argv) > 2 else os.path.join(here, "builtin-cases")
for path in sorted(glob.glob(os.path.join(cases_dir, "*.cases"))):
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        name, operands = line.split("\t", 1)
        calls.append((name, split_operands(operands.strip())))

cases = []
for name, args in calls:
    expressions = [expression("input.a%d" % i, json.loads(a)) for i, a in enumerate(args)]
    query = "x := %s(%s)" % (name, ", ".join(expressions))
    input_json = "{" + ", ".join('"a%d": %s' % (i, a) for i, a in enumerate(args)) + "}"
    cases.append(json.dumps({"query": query, "input_json": input_json}))

raw = subprocess.run([os.path.join(here, "opa-oracle-raw.py")], input="\n".join(cases) + "\n",
                     capture_output=True, text=True, check=True).stdout.splitlines()
assert len(raw) == len(calls), (len(raw), len(calls))

out = []
for (name, args), line in zip(calls, raw):
    row = {"name": name, "args": args}
    envelope = json.loads(line)
    m = re.search(r'"bindings":\{"x":(.*)\}\}\]\}$', line)
    if m:
        row["result"] = m.group(1)
    elif envelope.get("error"):
        message = envelope["error"]["message"]
        found = re.search(r"((?:eval|rego)_\w+: .*)$", message, re.S)
        row["error"] = found.group(1) if found else message
    else:
        row["undefined"] = True
    out.append(json.dumps(row, ensure_ascii=False))
path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "Tests", "RegoTests", "Fixtures", "builtins.jsonl")
with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(out) + "\n")
print("wrote %d calls to %s" % (len(out), os.path.normpath(path)))
