#!/usr/bin/env python3
"""Runs cases through the OPA engine of ../shared/tools/opa-oracle and prints OPA's own JSON, number text intact.

The stock `opa-oracle batch` re-encodes results through Python floats, so `1.50` comes back as `1.5`, a
20-digit quotient loses digits and `1e400` becomes `Infinity`. This driver loads the same engine library from
the oracle's cache and passes OPA's JSON through untouched.

Input: JSON lines {"modules": {"name.rego": "src"}, "data": {...}, "input_json": "raw JSON text" | "input": value,
                   "query": "a Rego query"}
Output: one line per case, the engine's envelope: {"result": [...]} or {"error": {"code": ..., "message": ...}}.
Run `opa-oracle eval` once first if the cache is empty.
"""
import ctypes
import json
import os
import sys

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


def failed(envelope):
    return json.loads(envelope).get("error") is not None


def run(case):
    handle = lib.OpaNew()
    try:
        for name, source in case.get("modules", {}).items():
            envelope = call(lib.OpaAddPolicy, handle, name.encode(), source.encode())
            if failed(envelope):
                return envelope
        if case.get("data") is not None:
            envelope = call(lib.OpaAddData, handle, b"", json.dumps(case["data"]).encode())
            if failed(envelope):
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


for line in sys.stdin:
    if line.strip():
        print(run(json.loads(line)), flush=True)
