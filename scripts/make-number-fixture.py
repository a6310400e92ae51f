#!/usr/bin/env python3
"""Writes Tests/RegoTests/Fixtures/numbers.jsonl: seeded random number operations with OPA's answers.

Each line: {"op": "plus", "args": ["1.5", "2"], "result": "3.5"} or {..., "error": "eval_builtin_error: ..."}.
Operands are passed as JSON input so their text reaches OPA unchanged.

    scripts/make-number-fixture.py [COUNT] [SEED]
"""
import json
import os
import random
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
count = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 2024)


def digits(n):
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))


def number():
    sign = "-" if rng.random() < 0.35 else ""
    kind = rng.randrange(14)
    if kind == 0:
        return sign + str(rng.randint(0, 12))
    if kind == 1:
        return sign + str(rng.randint(0, 2**31 + 5))
    if kind == 2:
        return sign + str(rng.choice([2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 + 1]))
    if kind == 3:
        return sign + digits(rng.randint(19, 45))
    if kind == 4:
        return sign + digits(rng.randint(1, 6)) + "." + digits(rng.randint(1, 6))
    if kind == 5:
        return sign + "0." + "0" * rng.randint(0, 6) + digits(rng.randint(1, 25))
    if kind == 6:
        return sign + rng.choice(["0", "0.0", "1.0", "2.50", "1.000", "10.0", "0.5", "0.1", "0.2", "0.3"])
    if kind == 7:
        return sign + digits(rng.randint(1, 3)) + rng.choice(["e", "E"]) + rng.choice(["", "+", "-"]) + str(rng.randint(0, 25))
    if kind == 8:
        return sign + digits(rng.randint(1, 4)) + "." + digits(rng.randint(1, 3)) + "e" + str(rng.randint(-40, 40))
    if kind == 9:
        return sign + rng.choice(["1e400", "1e-400", "2.5e300", "1e-7", "1e6", "1234567.5", "123456.5", "0.00001"])
    if kind == 10:
        return sign + digits(rng.randint(15, 40)) + "." + digits(rng.randint(1, 20))
    if kind == 12:
        return sign + "0." + digits(rng.randint(56, 90))
    if kind == 13:
        return sign + digits(rng.randint(1, 30)) + "e" + str(rng.choice([-1, 1]) * rng.randint(56, 330))
    return sign + str(rng.randint(1, 1000)) + ".5"


binary = ["plus", "minus", "mul", "div", "rem", "equal", "lt"]
unary = ["abs", "round", "ceil", "floor"]
rows = []
for _ in range(count):
    op = rng.choice(binary + unary)
    args = [number() for _ in range(2 if op in binary else 1)]
    rows.append((op, args))

cases = []
for op, args in rows:
    names = ["a", "b"][: len(args)]
    query = "x := %s(%s)" % (op, ", ".join("input." + n for n in names))
    cases.append(json.dumps({"query": query, "input_json": "{" + ", ".join(
        '"%s": %s' % (n, a) for n, a in zip(names, args)) + "}"}))
raw = subprocess.run([os.path.join(here, "opa-oracle-raw.py")], input="\n".join(cases) + "\n",
                     capture_output=True, text=True, check=True).stdout.splitlines()

out = []
for (op, args), line in zip(rows, raw):
    row = {"op": op, "args": args}
    m = re.search(r'"bindings":\{"x":(.*)\}\}\]\}$', line)
    if m:
        row["result"] = m.group(1)
    else:
        message = json.loads(line)["error"]["message"]
        row["error"] = re.search(r"(eval_\w+: .*)$", message, re.S).group(1)
    out.append(json.dumps(row))
path = os.path.join(here, "..", "Tests", "RegoTests", "Fixtures", "numbers.jsonl")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    f.write("\n".join(out) + "\n")
print("wrote %d rows to %s" % (len(out), os.path.normpath(path)))
