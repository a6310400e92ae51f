#!/usr/bin/env python3
"""Writes conformance/rego/builtins/*.yaml, OPA's compliance format, with OPA's answers for every expectation.

Two sources:
  scripts/builtin-cases/FAMILY.cases        builtin calls (name TAB operands as a JSON array; {"$set": [...]} is a
                                            set). Each call becomes a case whose module calls the builtin on
                                            operands read from `input`, so OPA and Warden see them only at
                                            evaluation: conformance/rego/builtins/FAMILY.yaml.
  scripts/builtin-rego-cases/NAME.yaml      hand-written cases without expectations (note, modules, data or
                                            data_json, input or input_json, query), for what only shows end to end:
                                            constant operands checked at compile time, undefined propagation, call
                                            forms, strict errors: conformance/rego/builtins/NAME.yaml.

Expectations come from the OPA engine of ../shared/tools/opa-oracle (v1.20, strict builtin errors on, as the
oracle always evaluates): want_result with OPA's JSON text (number spellings kept), or want_error_code and
want_error (the first error's message) with strict_error when a builtin raised it.

    scripts/make-builtin-cases.py [NAME...]   # default: every source
Run `../shared/tools/opa-oracle eval` once first if the oracle's cache is empty.
"""
import glob
import json
import os
import re
import subprocess
import sys

import yaml

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, ".."))
target_dir = os.path.join(root, "conformance", "rego", "builtins")

sys.path.insert(0, here)


class Raw(str):
    """A JSON number kept as the text OPA wrote."""


def loads(text):
    return json.loads(text, parse_float=Raw, parse_int=Raw)


def quoted(s):
    """A YAML double-quoted scalar holding exactly `s` (JSON escapes where YAML needs them)."""
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif c < 0x20 or 0x7F <= c <= 0x9F or c in (0x2028, 0x2029, 0xFEFF) or 0xD800 <= c <= 0xDFFF:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def flow(value):
    """A JSON value as YAML flow text, number text kept, keys sorted."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(quoted(k) + ": " + flow(value[k]) for k in sorted(value)) + "}"
    raise TypeError(type(value))


def block(text, indent):
    """A module as a YAML block literal, or a quoted scalar when a block literal could not hold it exactly."""
    if text[:1] in (" ", "\t") or any(line != line.rstrip() for line in text.split("\n")) or any(
            ord(ch) < 0x20 and ch not in "\n" for ch in text):
        return quoted(text) + "\n"
    pad = " " * indent
    return "|\n" + "".join((pad + line if line else "") + "\n" for line in text[:-1].split("\n"))


# -- calls ------------------------------------------------------------------------------------------------------

def split_operands(text):
    """Splits a JSON array text into its top-level element texts."""
    assert text.startswith("[") and text.endswith("]"), text
    inner = text[1:-1]
    parts, depth, start, in_string, escaped = [], 0, 0, False, False
    for i, ch in enumerate(inner):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    if inner.strip():
        parts.append(inner[start:].strip())
    return parts


def expression(path, value):
    """A Rego expression reading `value` from `path` in input, {"$set": [...]} markers turned into set literals."""
    if isinstance(value, dict) and list(value.keys()) == ["$set"]:
        elements = [expression('%s["$set"][%d]' % (path, i), v) for i, v in enumerate(value["$set"])]
        return "{%s}" % ", ".join(elements) if elements else "set()"
    if isinstance(value, list) and '"$set"' in json.dumps(value):
        return "[%s]" % ", ".join(expression("%s[%d]" % (path, i), v) for i, v in enumerate(value))
    if isinstance(value, dict) and '"$set"' in json.dumps(value):
        return "{%s}" % ", ".join("%s: %s" % (json.dumps(k), expression("%s[%s]" % (path, json.dumps(k)), v))
                                  for k, v in value.items())
    return path


def call_cases(family):
    cases, seen = [], set()
    for line in open(os.path.join(here, "builtin-cases", family + ".cases"), encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        name, operands = line.split("\t", 1)
        args = split_operands(operands.strip())
        shown = "%s(%s)" % (name, ", ".join(args))
        if len(shown) > 110:
            shown = shown[:107] + "..."
        note = "builtins/%s/%s" % (family, shown)
        k = 2
        while note in seen:
            note = "builtins/%s/%s #%d" % (family, shown, k)
            k += 1
        seen.add(note)
        expressions = [expression("input.a%d" % i, json.loads(a)) for i, a in enumerate(args)]
        cases.append({
            "note": note,
            "modules": ["package test\n\np := %s(%s)\n" % (name, ", ".join(expressions))],
            "input_json": "{" + ", ".join('"a%d": %s' % (i, a) for i, a in enumerate(args)) + "}",
            "query": "data.test.p = x",
        })
    return cases


def authored_cases(name):
    cases = yaml.safe_load(open(os.path.join(here, "builtin-rego-cases", name + ".yaml"), encoding="utf-8"))["cases"]
    notes = set()
    for case in cases:
        case["modules"] = [m.rstrip("\n") + "\n" for m in case["modules"]]
        if case["note"] in notes:
            raise SystemExit("duplicate note: " + case["note"])
        notes.add(case["note"])
    return cases


# -- the oracle -------------------------------------------------------------------------------------------------

def evaluate(cases):
    lines = []
    for case in cases:
        request = {"modules": {"test-%d.rego" % i: m for i, m in enumerate(case["modules"])}, "query": case["query"]}
        if "data_json" in case:
            request["data_json"] = case["data_json"]
        elif "data" in case:
            request["data"] = case["data"]
        if "input_json" in case:
            request["input_json"] = case["input_json"]
        elif "input" in case:
            request["input"] = case["input"]
        lines.append(json.dumps(request))
    out = subprocess.run([os.path.join(here, "opa-oracle-raw.py")], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == len(cases), (len(out), len(cases))
    return out


error_line = re.compile(r"(?:^|\n|: )(?:[\w./-]+:\d+: )?((?:rego|eval)_\w+): ([^\n]*)")


def write_case(case, envelope, out):
    result = loads(envelope)
    out.append("- note: " + quoted(case["note"]) + "\n")
    out.append("  modules:\n")
    for module in case["modules"]:
        out.append("  - " + block(module, 4))
    if "data_json" in case:
        out.append("  data: " + flow(loads(case["data_json"])) + "\n")
    elif "data" in case:
        out.append("  data: " + flow(case["data"]) + "\n")
    if "input_json" in case:
        out.append("  input: " + flow(loads(case["input_json"])) + "\n")
    elif "input" in case:
        out.append("  input: " + flow(case["input"]) + "\n")
    out.append("  query: " + quoted(case["query"]) + "\n")
    error = result.get("error")
    if error:
        found = error_line.search(error["message"])
        if not found:
            raise SystemExit("%s: cannot read the error: %s" % (case["note"], error["message"]))
        code, message = found.group(1), found.group(2)
        if code in ("eval_builtin_error", "eval_type_error"):
            out.append("  strict_error: true\n")
        out.append("  want_error_code: " + code + "\n")
        out.append("  want_error: " + quoted(message) + "\n")
        return
    solutions = result.get("result") or []
    out.append("  want_result: [" + ", ".join(flow(s.get("bindings", {})) for s in solutions) + "]\n")


def main():
    sources = [(os.path.splitext(os.path.basename(p))[0], "calls")
               for p in glob.glob(os.path.join(here, "builtin-cases", "*.cases"))]
    sources += [(os.path.splitext(os.path.basename(p))[0], "authored")
                for p in glob.glob(os.path.join(here, "builtin-rego-cases", "*.yaml"))]
    names = [n for n, _ in sources]
    if len(set(names)) != len(names):
        raise SystemExit("a .cases file and an authored file share a name")
    wanted = set(sys.argv[1:])
    total = 0
    for name, kind in sorted(sources):
        if wanted and name not in wanted:
            continue
        cases = call_cases(name) if kind == "calls" else authored_cases(name)
        source = "scripts/builtin-cases/%s.cases" % name if kind == "calls" else \
            "scripts/builtin-rego-cases/%s.yaml" % name
        out = ["# Generated by scripts/make-builtin-cases.py from %s: every expectation is\n" % source,
               "# the answer of OPA v1.20 (../shared/tools/opa-oracle). Edit the source and regenerate.\n",
               "cases:\n"]
        for case, envelope in zip(cases, evaluate(cases)):
            write_case(case, envelope, out)
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, name + ".yaml")
        with open(target, "w", encoding="utf-8") as f:
            f.write("".join(out))
        total += len(cases)
        print("%s: %d cases" % (os.path.relpath(target, root), len(cases)))
    print("%d cases" % total)


if __name__ == "__main__":
    main()
