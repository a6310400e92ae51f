#!/usr/bin/env python3
"""Writes conformance/rego/language/*.yaml from scripts/rego-cases/*.yaml, with OPA's answers.

An authoring file lists cases without expectations:

    cases:
    - note: language/rules/complete value
      modules:
      - |
        package test
        p := 1
      data: {...}            # or data_json: raw JSON text (keeps number spellings)
      input: ...             # or input_json: raw JSON text; absent means no input
      query: data.test.p = x

Each case runs in the real OPA engine of ../shared/tools/opa-oracle (modules named test-0.rego, test-1.rego, ...;
OPA's query evaluation; strict builtin errors, as the oracle always evaluates). The output keeps OPA's JSON text for
values, so number spellings survive: want_result (each solution's bindings), or want_error_code and want_error
(the first error's first line), strict_error when the error came from a builtin, want_prints when the query printed.

    scripts/make-rego-cases.py [NAME...]     # default: every authoring file
Run `../shared/tools/opa-oracle eval` once first if the oracle's cache is empty.
"""
import ctypes
import glob
import json
import os
import re
import sys

import yaml

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, ".."))
cache = os.environ.get("OPA_ORACLE_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "opa-oracle")
sys.path.insert(0, os.path.join(cache, "x"))
from opa_bindings import _native  # noqa: E402

lib = _native.load()


def call(fn, *args):
    pointer = fn(*args)
    try:
        return ctypes.string_at(pointer).decode()
    finally:
        lib.OpaFreeString(pointer)


class Raw(str):
    """A JSON number kept as the text OPA wrote."""


def loads(text):
    return json.loads(text, parse_float=Raw, parse_int=Raw)


def dumps(value):
    """JSON text (valid YAML flow) with number text kept and keys sorted."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(json.dumps(k, ensure_ascii=False) + ": " + dumps(value[k]) for k in sorted(value)) + "}"
    raise TypeError(type(value))


def evaluate(case):
    handle = lib.OpaNew()
    try:
        for i, source in enumerate(case["modules"]):
            envelope = call(lib.OpaAddPolicy, handle, ("test-%d.rego" % i).encode(), source.encode())
            if json.loads(envelope).get("error"):
                return envelope
        data = case.get("data_json") or (json.dumps(case["data"]) if "data" in case else None)
        if data is not None:
            envelope = call(lib.OpaAddData, handle, b"", data.encode())
            if json.loads(envelope).get("error"):
                return envelope
        if "input_json" in case:
            input_text = case["input_json"]
        elif "input" in case:
            input_text = json.dumps(case["input"])
        else:
            input_text = ""
        return call(lib.OpaEvalQuery, handle, case["query"].encode(), input_text.encode(), 0, 0)
    finally:
        lib.OpaDestroy(handle)


error_line = re.compile(r"(?:^|\n|: )(?:[\w./-]+:\d+: )?((?:rego|eval)_\w+): ([^\n]*)")


def block(text, indent):
    """A YAML block literal for a module (normalized to end with one line break); JSON text when a block
    literal could not hold it exactly."""
    if text[:1] in (" ", "\t") or any(line != line.rstrip() for line in text.split("\n")):
        return json.dumps(text, ensure_ascii=False) + "\n"
    pad = " " * indent
    return "|\n" + "".join((pad + line if line else "") + "\n" for line in text[:-1].split("\n"))


def write_case(case, envelope, out):
    result = loads(envelope)
    out.append("- note: " + json.dumps(case["note"], ensure_ascii=False) + "\n")
    out.append("  modules:\n")
    for module in case["modules"]:
        out.append("  - " + block(module, 4))
    if "data_json" in case:
        out.append("  data: " + dumps(loads(case["data_json"])) + "\n")
    elif "data" in case:
        out.append("  data: " + dumps(case["data"]) + "\n")
    if "input_json" in case:
        out.append("  input: " + dumps(loads(case["input_json"])) + "\n")
    elif "input" in case:
        out.append("  input: " + dumps(case["input"]) + "\n")
    out.append("  query: " + json.dumps(case["query"], ensure_ascii=False) + "\n")
    error = result.get("error")
    if error:
        found = error_line.search(error["message"])
        if not found:
            raise SystemExit("%s: cannot read the error: %s" % (case["note"], error["message"]))
        code, message = found.group(1), found.group(2)
        if code in ("eval_builtin_error", "eval_type_error"):
            out.append("  strict_error: true\n")
        out.append("  want_error_code: " + code + "\n")
        out.append("  want_error: " + json.dumps(message, ensure_ascii=False) + "\n")
        return "error " + code
    solutions = result.get("result") or []
    out.append("  want_result: [" + ", ".join(dumps(s.get("bindings", {})) for s in solutions) + "]\n")
    prints = result.get("prints") or []
    if prints:
        out.append("  want_prints: [" + ", ".join(json.dumps(p["message"], ensure_ascii=False) for p in prints) + "]\n")
    return "%d result(s)" % len(solutions)


def main():
    names = sys.argv[1:] or sorted(os.path.splitext(os.path.basename(p))[0]
                                   for p in glob.glob(os.path.join(here, "rego-cases", "*.yaml")))
    total = 0
    for name in names:
        source = os.path.join(here, "rego-cases", name + ".yaml")
        cases = yaml.safe_load(open(source, encoding="utf-8"))["cases"]
        notes = set()
        out = ["# Generated by scripts/make-rego-cases.py from scripts/rego-cases/%s.yaml: every expectation is\n" % name,
               "# the answer of OPA v1.20 (../shared/tools/opa-oracle). Edit the source and regenerate.\n",
               "cases:\n"]
        for case in cases:
            case["modules"] = [m.rstrip("\n") + "\n" for m in case["modules"]]
            if case["note"] in notes:
                raise SystemExit("duplicate note: " + case["note"])
            notes.add(case["note"])
            write_case(case, evaluate(case), out)
        target = os.path.join(root, "conformance", "rego", "language", name + ".yaml")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write("".join(out))
        total += len(cases)
        print("%s: %d cases" % (os.path.relpath(target, root), len(cases)))
    print("%d cases" % total)


main()
