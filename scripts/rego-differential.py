#!/usr/bin/env python3
"""Differential test of Warden's Rego against OPA: seeded random authz policies and OPA-Envoy-shaped inputs.

Each generated policy (package `test`) has the shape of an ext_authz policy: helper rules reading the Envoy
CheckRequest (`input.attributes.request.http`, the source address, `parsed_path`, `parsed_query`, `parsed_body`),
a `default allow := false` with several `allow` bodies, partial set rules (`deny contains msg`), partial object
rules, functions with several definitions and `else`, `every`, `some ... in`, comprehensions, and conditions over
some eighty builtins. Each policy is evaluated against several random inputs (fields sometimes missing, sometimes
of the wrong type), each rule queried on its own (`data.test.allow = x`, `data.test.deny = x`, ...) so that an error
in one rule does not hide the others.

OPA's answers come from the engine of ../shared/tools/opa-oracle (strict builtin errors on, as it always runs);
Warden's from `warden conformance`, which runs the same cases in process. Cases are written in OPA's compliance
format, so a difference is a ready-made conformance case.

    scripts/rego-differential.py [--seed S] [--policies P] [--inputs I] [--no-negation] [--warden PATH]
                                 [--keep DIR] [--findings FILE]

prints how many cases agreed. The oracle runs one process per policy, bounded in memory and time: a policy OPA
cannot answer within them (some make it build a huge value, `numbers.range(0, 9007199254740993)`) is named and left
out. --keep writes every generated case under DIR/rego/generated/ (a conformance root);
--findings writes the cases that differed to FILE (conformance/rego/generated/*.yaml once they are understood).
Build first: `swift build`.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, ".."))

# -- value pools shared by inputs and policies, so that conditions are true often enough ---------------------------

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "get"]
HOSTS = ["api.example.com", "admin.example.com", "example.com", "api.eu.example.com", "localhost:8080", "EXAMPLE.com"]
SEGMENTS = ["api", "v1", "v2", "users", "admin", "orders", "42", "007", "alice", "bob", "health", "", "a.b", "%20x",
            "Ünïcode", "items", "1.5", "-3", "metrics"]
USERS = ["alice", "bob", "carol", "admin", "Alice", "", " bob ", "mallory@example.com", "dave.smith"]
ROLES = ["admin", "dev", "ops", "viewer", "billing", "Admin", ""]
CIDRS = ["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "10.1.0.0/16", "2001:db8::/32", "0.0.0.0/0", "127.0.0.1/32"]
IPS = ["10.1.2.3", "10.200.0.1", "192.168.1.10", "172.20.5.5", "8.8.8.8", "127.0.0.1", "2001:db8::1", "::1",
       "not-an-ip", "10.0.0.256"]
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/JSON; charset=utf-8"]
NUMBERS = ["0", "1", "2", "3", "10", "42", "100", "1000", "-1", "-7", "0.5", "1.5", "2.50", "0.1", "1e3", "1E2",
           "3.14159", "100.0", "9007199254740993", "18446744073709551616", "-0.25", "7"]
WORDS = ["a", "b", "abc", "read", "write", "delete", "x", "1", "true", "null", "", "A", "Ab", "ß", "日本", "a,b",
         "a b", "/", "v1.2.3", "1.2.0", "10KB", "2Mi", "2024-02-29T12:00:00Z", "2024-13-01T00:00:00Z", "1h30m", "5s",
         "eyJhIjoxfQ==", "!!", "%41%42", "a+b"]
VERSIONS = ["1.2.0", "1.10.0", "2.0.0-rc.1", "v1.2.3", "1.2", "0.0.1"]
DATES = ["2024-02-29T12:00:00Z", "2023-12-31T23:59:59+01:00", "2025-01-01T00:00:00.5Z", "yesterday",
         "2024-02-30T00:00:00Z"]
SIZES = ["10KB", "1MiB", "512", "2.5k", "0.5GB", "big", "1e3"]
DURATIONS = ["1h", "30m", "1h30m", "90s", "1d", "-5m", "soon", "2w"]


def pick(rng, xs):
    return rng.choice(xs)


def rego_string(s):
    return json.dumps(s, ensure_ascii=False)


def number_text(rng):
    return pick(rng, NUMBERS)


# -- inputs ----------------------------------------------------------------------------------------------------------

def random_json_value(rng, depth=0):
    """Text of a random JSON value, number spellings kept."""
    r = rng.random()
    if depth > 2 or r < 0.35:
        return rego_string(pick(rng, WORDS))
    if r < 0.6:
        return number_text(rng)
    if r < 0.68:
        return pick(rng, ["true", "false", "null"])
    if r < 0.84:
        return "[" + ", ".join(random_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    keys = rng.sample(["a", "b", "name", "amount", "limits", "tags", "max", "x"], rng.randint(0, 3))
    return "{" + ", ".join("%s: %s" % (rego_string(k), random_json_value(rng, depth + 1)) for k in keys) + "}"


def maybe(rng, p, text):
    return text if rng.random() < p else None


def obj(pairs):
    return "{" + ", ".join("%s: %s" % (rego_string(k), v) for k, v in pairs if v is not None) + "}"


def random_input(rng):
    segments = [pick(rng, SEGMENTS) for _ in range(rng.randint(0, 4))]
    path = "/" + "/".join(segments)
    query_pairs = [(pick(rng, ["q", "page", "limit", "role", "x"]), pick(rng, WORDS + NUMBERS))
                   for _ in range(rng.randint(0, 3))]
    if query_pairs:
        path += "?" + "&".join("%s=%s" % kv for kv in query_pairs)
    headers = [
        (":authority", rego_string(pick(rng, HOSTS))),
        ("x-user", maybe(rng, 0.8, rego_string(pick(rng, USERS)))),
        ("x-roles", maybe(rng, 0.7, rego_string(",".join(rng.sample(ROLES, rng.randint(0, 3)))))),
        ("content-type", maybe(rng, 0.6, rego_string(pick(rng, CONTENT_TYPES)))),
        ("x-request-size", maybe(rng, 0.5, rego_string(pick(rng, SIZES)))),
        ("x-date", maybe(rng, 0.5, rego_string(pick(rng, DATES)))),
        ("x-client-version", maybe(rng, 0.5, rego_string(pick(rng, VERSIONS)))),
        ("x-timeout", maybe(rng, 0.4, rego_string(pick(rng, DURATIONS)))),
        ("x-count", maybe(rng, 0.5, rego_string(pick(rng, NUMBERS + WORDS[:4])))),
        ("x-forwarded-for", maybe(rng, 0.5, rego_string(", ".join(rng.sample(IPS, rng.randint(1, 3)))))),
        ("authorization", maybe(rng, 0.4, rego_string("Bearer " + pick(rng, ["abc.def.ghi", "token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.x"])))),
    ]
    http = obj([
        ("method", maybe(rng, 0.95, rego_string(pick(rng, METHODS)))),
        ("path", maybe(rng, 0.95, rego_string(path))),
        ("host", maybe(rng, 0.9, rego_string(pick(rng, HOSTS)))),
        ("scheme", maybe(rng, 0.5, rego_string(pick(rng, ["http", "https"])))),
        ("size", maybe(rng, 0.5, number_text(rng))),
        ("headers", maybe(rng, 0.95, obj(headers))),
    ])
    source = obj([("address", obj([("socketAddress", obj([
        ("address", maybe(rng, 0.9, rego_string(pick(rng, IPS)))),
        ("portValue", maybe(rng, 0.7, pick(rng, ["443", "8080", "0", "65535", "1.5"]))),
    ]))]))])
    body = obj([
        ("user", maybe(rng, 0.6, obj([("name", rego_string(pick(rng, USERS))), ("age", number_text(rng))]))),
        ("amount", maybe(rng, 0.6, number_text(rng))),
        ("items", maybe(rng, 0.6, "[" + ", ".join(number_text(rng) for _ in range(rng.randint(0, 4))) + "]")),
        ("tags", maybe(rng, 0.6, "[" + ", ".join(rego_string(pick(rng, WORDS)) for _ in range(rng.randint(0, 4))) + "]")),
        ("limits", maybe(rng, 0.5, obj([(k, random_json_value(rng)) for k in rng.sample(["cpu", "mem", "max", "min"], 2)]))),
        ("extra", maybe(rng, 0.3, random_json_value(rng))),
    ])
    parsed_query = obj([(k, "[" + rego_string(v) + "]") for k, v in query_pairs])
    return obj([
        ("attributes", obj([
            ("request", obj([("http", http)])),
            ("source", maybe(rng, 0.9, source)),
        ])),
        ("parsed_path", maybe(rng, 0.9, "[" + ", ".join(rego_string(s) for s in segments) + "]")),
        ("parsed_query", maybe(rng, 0.8, parsed_query)),
        ("parsed_body", maybe(rng, 0.7, body)),
    ])


# -- policies --------------------------------------------------------------------------------------------------------

PRELUDE = """package test

http := input.attributes.request.http
headers := http.headers
method := http.method
path := http.path
host := http.host
source_ip := input.attributes.source.address.socketAddress.address
port := input.attributes.source.address.socketAddress.portValue
parts := input.parsed_path
query := input.parsed_query
body := input.parsed_body
user := headers["x-user"]
roles := {r | some r in split(object.get(headers, "x-roles", ""), ","); r != ""}
"""

STRING_REFS = ["method", "path", "host", "user", 'headers["content-type"]', 'headers["x-count"]', "body.user.name",
               'object.get(headers, "x-user", "anonymous")', "parts[0]", "parts[1]", 'query.role[0]', "source_ip",
               'headers[":authority"]', 'headers["x-date"]', 'headers["x-client-version"]', 'headers["x-timeout"]',
               'headers["x-request-size"]', 'headers["authorization"]', "http.scheme", "body.extra"]
NUMBER_REFS = ["http.size", "port", "body.amount", "body.user.age", "count(parts)", "count(roles)", "count(path)",
               "count(headers)", "sum(body.items)", "body.limits.max", "body.items[0]"]
ARRAY_REFS = ["parts", "body.items", "body.tags", 'split(path, "/")', 'split(object.get(headers, "x-forwarded-for", ""), ", ")']
SET_REFS = ["roles", '{"admin", "ops"}', "object.keys(headers)", "{t | some t in body.tags}"]
OBJECT_REFS = ["headers", "body", "body.limits", "query", "http"]


class PolicyGenerator:
    def __init__(self, rng, negations=True):
        self.rng = rng
        self.counter = 0
        self.negations = negations

    def fresh(self, prefix="v"):
        self.counter += 1
        return "%s%d" % (prefix, self.counter)

    def chance(self, p):
        return self.rng.random() < p

    # Expressions of a type; depth bounds nesting.
    def string(self, depth=0):
        r = self.rng
        if depth > 1 or self.chance(0.45):
            return pick(r, STRING_REFS) if self.chance(0.85) else rego_string(pick(r, WORDS))
        s = self.string(depth + 1)
        choices = [
            lambda: "lower(%s)" % s, lambda: "upper(%s)" % s, lambda: "trim_space(%s)" % s,
            lambda: "concat(%s, [%s, %s])" % (rego_string(pick(r, ["/", "-", ""])), s, self.string(depth + 1)),
            lambda: "substring(%s, %d, %d)" % (s, r.randint(0, 3), r.randint(-1, 4)),
            lambda: "replace(%s, %s, %s)" % (s, rego_string(pick(r, WORDS)), rego_string(pick(r, WORDS))),
            lambda: "trim_prefix(%s, %s)" % (s, rego_string(pick(r, ["/api", "/", "Bearer ", "a"]))),
            lambda: "trim_suffix(%s, %s)" % (s, rego_string(pick(r, ["/", ".com", "s"]))),
            lambda: "trim(%s, %s)" % (s, rego_string(pick(r, ["/", " ", "ab"]))),
            lambda: "trim_left(%s, %s)" % (s, rego_string(pick(r, ["/", "a"]))),
            lambda: "sprintf(%s, [%s, %s])" % (rego_string(pick(r, ["%v-%v", "%s:%d", "%q %v", "%x", "%5.2f|%v", "%T %v"])), s, self.number(depth + 1)),
            lambda: "strings.replace_n({%s: %s}, %s)" % (rego_string(pick(r, WORDS)), rego_string(pick(r, WORDS)), s),
            lambda: "format_int(%s, %d)" % (self.number(depth + 1), pick(r, [2, 8, 10, 16])),
            lambda: "regex.replace(%s, %s, %s)" % (s, rego_string(pick(r, ["[0-9]+", "^/", "a|b", "(x)"])), rego_string(pick(r, ["#", "$1", ""]))),
            lambda: "base64.encode(%s)" % s, lambda: "base64url.encode_no_pad(%s)" % s,
            lambda: "urlquery.encode(%s)" % s, lambda: "json.marshal(%s)" % self.any_value(depth + 1),
            lambda: "strings.reverse(%s)" % s, lambda: "type_name(%s)" % self.any_value(depth + 1),
            lambda: "concat(\",\", sort(%s))" % self.set_expr(depth + 1),
            lambda: "time.format([%s, %s, %s])" % (self.number(depth + 1), rego_string(pick(r, ["UTC", "Europe/Paris", "America/New_York", ""])), rego_string(pick(r, ["2006-01-02", "RFC3339", "Mon Jan _2 15:04:05 MST", ""]))),
            lambda: "time.weekday(%s)" % self.number(depth + 1),
            lambda: "crypto.sha256(%s)" % s, lambda: "crypto.md5(%s)" % s,
            lambda: "base64.decode(%s)" % s, lambda: "hex.encode(%s)" % s,
            lambda: "split(%s, %s)[%d]" % (s, rego_string(pick(r, ["/", ",", "."])), r.randint(0, 2)),
        ]
        return pick(r, choices)()

    def number(self, depth=0):
        r = self.rng
        if depth > 1 or self.chance(0.45):
            return pick(r, NUMBER_REFS) if self.chance(0.7) else number_text(r)
        n = self.number(depth + 1)
        m = self.number(depth + 1)
        choices = [
            lambda: "%s + %s" % (n, m), lambda: "%s - %s" % (n, m), lambda: "%s * %s" % (n, m),
            lambda: "%s / %s" % (n, number_text(r)), lambda: "%s %% %s" % (n, pick(r, ["2", "3", "7", "0", "1.5"])),
            lambda: "abs(%s)" % n, lambda: "round(%s)" % n, lambda: "ceil(%s)" % n, lambda: "floor(%s)" % n,
            lambda: "count(%s)" % self.string(depth + 1), lambda: "count(%s)" % self.array_expr(depth + 1),
            lambda: "to_number(%s)" % self.string(depth + 1), lambda: "indexof(%s, %s)" % (self.string(depth + 1), rego_string(pick(r, WORDS))),
            lambda: "strings.count(%s, %s)" % (self.string(depth + 1), rego_string(pick(r, ["a", "/", "e"]))),
            lambda: "sum([%s, %s])" % (n, m), lambda: "product([%s, %s])" % (n, m),
            lambda: "max([%s, %s])" % (n, m), lambda: "min(%s)" % self.array_expr(depth + 1),
            lambda: "bits.and(%s, %s)" % (n, m), lambda: "bits.lsh(%s, %d)" % (n, r.randint(0, 70)),
            lambda: "units.parse_bytes(%s)" % self.string(depth + 1), lambda: "units.parse(%s)" % rego_string(pick(r, SIZES + ["100m", "2Ki"])),
            lambda: "time.parse_rfc3339_ns(%s)" % self.string(depth + 1),
            lambda: "time.parse_duration_ns(%s)" % self.string(depth + 1),
            lambda: "time.add_date(%s, %d, %d, %d)" % (n, r.randint(-1, 1), r.randint(-13, 13), r.randint(-40, 40)),
            lambda: "time.date(%s)[%d]" % (n, r.randint(0, 2)),
            lambda: "semver.compare(%s, %s)" % (self.string(depth + 1), rego_string(pick(r, VERSIONS))),
            lambda: "numbers.range(%s, %s)[0]" % (n, number_text(r)),
            lambda: "count(array.slice(%s, %d, %d))" % (self.array_expr(depth + 1), r.randint(0, 2), r.randint(0, 4)),
        ]
        return pick(r, choices)()

    def array_expr(self, depth=0):
        r = self.rng
        if depth > 1 or self.chance(0.5):
            return pick(r, ARRAY_REFS)
        a = self.array_expr(depth + 1)
        choices = [
            lambda: "array.concat(%s, %s)" % (a, self.array_expr(depth + 1)),
            lambda: "array.reverse(%s)" % a, lambda: "sort(%s)" % a,
            lambda: "array.slice(%s, %d, %d)" % (a, r.randint(-1, 2), r.randint(0, 5)),
            lambda: self.comprehension("[%s | some %s in %s; %s]", a, depth),
            lambda: "split(%s, %s)" % (self.string(depth + 1), rego_string(pick(r, ["/", ",", ""]))),
            lambda: "regex.split(%s, %s)" % (rego_string(pick(r, ["/+", "[,;]", "a*"])), self.string(depth + 1)),
            lambda: "regex.find_n(%s, %s, %d)" % (rego_string(pick(r, ["[a-z]+", "[0-9]", "."])), self.string(depth + 1), r.randint(-1, 3)),
            lambda: "numbers.range(0, %d)" % r.randint(0, 4),
            lambda: "[%s, %s]" % (self.any_value(depth + 1), self.any_value(depth + 1)),
        ]
        return pick(r, choices)()

    def set_expr(self, depth=0):
        r = self.rng
        if depth > 1 or self.chance(0.5):
            return pick(r, SET_REFS)
        s = self.set_expr(depth + 1)
        choices = [
            lambda: "(%s | %s)" % (s, self.set_expr(depth + 1)), lambda: "(%s & %s)" % (s, self.set_expr(depth + 1)),
            lambda: "(%s - %s)" % (s, self.set_expr(depth + 1)),
            lambda: "intersection({%s, %s})" % (s, self.set_expr(depth + 1)),
            lambda: "union({%s, %s})" % (s, self.set_expr(depth + 1)),
            lambda: (lambda x: "{lower(%s) | some %s in %s}" % (x, x, s))(self.fresh("x")),
            lambda: self.comprehension("{%s | some %s in %s; %s}", self.array_expr(depth + 1), depth),
            lambda: "object.keys(%s)" % self.object_expr(depth + 1),
        ]
        return pick(r, choices)()

    def object_expr(self, depth=0):
        r = self.rng
        if depth > 1 or self.chance(0.5):
            return pick(r, OBJECT_REFS)
        o = self.object_expr(depth + 1)
        choices = [
            lambda: "object.union(%s, %s)" % (o, self.object_expr(depth + 1)),
            lambda: "object.remove(%s, [%s])" % (o, rego_string(pick(r, ["x-user", "a", "name", "max"]))),
            lambda: "object.filter(%s, {%s})" % (o, rego_string(pick(r, ["x-user", "cpu", "name", "max", "method"]))),
            lambda: (lambda k, v: "{%s: %s | some %s, %s in %s; %s}" % (k, v, k, v, o, self.var_condition(v, depth + 1)))(
                self.fresh("k"), self.fresh("v")),
            lambda: "json.unmarshal(%s)" % rego_string(pick(r, ['{"a": 1.50, "b": [true]}', '{"max": 10}', "[1]", "{"])),
            lambda: "urlquery.decode_object(%s)" % rego_string(pick(r, ["a=1&b=2", "role=admin&role=dev", "%zz"])),
        ]
        return pick(r, choices)()

    def comprehension(self, template, source, depth):
        x = self.fresh("x")
        return template % (x, x, source, self.var_condition(x, depth + 1))

    def any_value(self, depth=0):
        return pick(self.rng, [self.string, self.number, self.array_expr, self.set_expr, self.object_expr])(depth)

    def var_condition(self, var, depth=0):
        r = self.rng
        choices = [
            lambda: "%s != %s" % (var, rego_string(pick(r, WORDS))),
            lambda: "is_string(%s)" % var, lambda: "is_number(%s)" % var,
            lambda: "startswith(%s, %s)" % (var, rego_string(pick(r, ["a", "1", "/", "v"]))),
            lambda: "%s > %s" % (var, number_text(r)),
            lambda: "count(%s) < %d" % (var, r.randint(0, 5)),
            lambda: ("not %s == %s" if self.negations else "%s != %s") % (var, rego_string(pick(r, WORDS))),
            lambda: "%s in %s" % (var, self.set_expr(depth + 1)),
            lambda: "regex.match(%s, %s)" % (rego_string(pick(r, ["^[a-z]+$", "[0-9]", "^$", "(?i)ADMIN"])), var),
        ]
        return pick(r, choices)()

    def condition(self, depth=0):
        r = self.rng
        s = lambda: self.string(depth + 1)
        n = lambda: self.number(depth + 1)
        choices = [
            lambda: "%s == %s" % (s(), rego_string(pick(r, WORDS + METHODS + USERS + ROLES))),
            lambda: "%s != %s" % (s(), rego_string(pick(r, METHODS + USERS))),
            lambda: "method == %s" % rego_string(pick(r, METHODS)),
            lambda: "startswith(%s, %s)" % (s(), rego_string(pick(r, ["/api", "/admin", "a", "Bearer ", "/"]))),
            lambda: "endswith(%s, %s)" % (s(), rego_string(pick(r, [".com", "/", "json", "s"]))),
            lambda: "indexof(%s, %s) >= 0" % (s(), rego_string(pick(r, ["admin", "/v1", "a", "json"]))),
            lambda: "regex.match(%s, %s)" % (rego_string(pick(r, ["^/api/v[0-9]+/", "^[a-z]+$", "(?i)^admin", "users/[0-9]+$", "^$", "\\\\d{2,}", "[[:alpha:]]+", "(a|b)*c"])), s()),
            lambda: "glob.match(%s, %s, %s)" % (rego_string(pick(r, ["/api/*", "/api/**", "*.example.com", "**.com", "{GET,POST}", "/users/?", "[a-c]*"])), pick(r, ['["/"]', '["."]', "[]", "null"]), s()),
            lambda: "%s > %s" % (n(), number_text(r)), lambda: "%s <= %s" % (n(), n()),
            lambda: "%s == %s" % (n(), number_text(r)),
            lambda: "%s in %s" % (rego_string(pick(r, ROLES)), self.set_expr(depth + 1)),
            lambda: "%s in %s" % (s(), self.array_expr(depth + 1)),
            lambda: "net.cidr_contains(%s, %s)" % (rego_string(pick(r, CIDRS)), pick(r, ["source_ip", "host", rego_string(pick(r, IPS))])),
            lambda: "net.cidr_intersects(%s, %s)" % (rego_string(pick(r, CIDRS)), rego_string(pick(r, CIDRS))),
            lambda: self.negation(depth),
            lambda: "count(%s) > %d" % (self.array_expr(depth + 1), r.randint(0, 3)),
            lambda: (lambda x: "every %s in %s { %s }" % (x, self.array_expr(depth + 1), self.var_condition(x, depth + 1)))(
                self.fresh("x")),
            lambda: (lambda x: "some %s in %s; %s" % (x, self.array_expr(depth + 1), self.var_condition(x, depth + 1)))(
                self.fresh("x")),
            lambda: (lambda k, v: "some %s, %s in %s; %s" % (k, v, self.object_expr(depth + 1), self.var_condition(v, depth + 1)))(
                self.fresh("k"), self.fresh("v")),
            lambda: "object.get(%s, %s, %s) == %s" % (self.object_expr(depth + 1), rego_string(pick(r, ["x-user", "max", "name", "a"])), rego_string("none"), rego_string(pick(r, USERS + ["none"]))),
            lambda: "is_string(%s)" % self.any_value(depth + 1),
            lambda: "semver.is_valid(%s)" % s(),
            lambda: "time.parse_rfc3339_ns(%s) < time.parse_rfc3339_ns(%s)" % (s(), rego_string(pick(r, DATES))),
            lambda: "units.parse_bytes(%s) <= %s" % (s(), number_text(r)),
            lambda: "json.is_valid(%s)" % s(),
            lambda: "strings.any_prefix_match(%s, %s)" % (s(), "[\"/api\", \"/admin\"]"),
            lambda: "crypto.hmac.equal(%s, %s)" % (s(), s()),
            lambda: "%s == %s" % (self.set_expr(depth + 1), self.set_expr(depth + 1)),
            lambda: "%s == %s" % (self.object_expr(depth + 1), self.object_expr(depth + 1)),
            lambda: "%s < %s" % (self.any_value(depth + 1), self.any_value(depth + 1)),
            lambda: (lambda x: "%s := %s; %s == %s" % (x, s(), x, s()))(self.fresh("y")),
            lambda: "level(%s) == %s" % (n(), rego_string(pick(r, ["high", "low", "none"]))),
            lambda: "allowed_path(%s)" % s(),
        ]
        return pick(r, choices)()

    def negation(self, depth):
        if not self.negations:
            return "is_string(%s)" % self.string(depth + 1)
        return "not %s" % self.condition(depth + 1) if depth < 2 else "not is_null(%s)" % self.string(depth + 1)

    def body(self, count):
        return "\n".join("  " + self.condition() for _ in range(count))

    def policy(self):
        r = self.rng
        out = [PRELUDE]
        out.append("default allow := false\n")
        for _ in range(r.randint(1, 4)):
            out.append("allow if {\n%s\n}\n" % self.body(r.randint(1, 3)))
        for _ in range(r.randint(0, 2)):
            out.append("deny contains msg if {\n%s\n  msg := sprintf(%s, [%s])\n}\n" % (
                self.body(r.randint(1, 2)), rego_string(pick(r, ["denied: %v", "%v not allowed", "%s/%s"])),
                self.string() if self.chance(0.8) else "%s, %s" % (self.string(), self.number())))
        for _ in range(r.randint(0, 2)):
            out.append("facts[%s] := %s if {\n%s\n}\n" % (
                rego_string(pick(r, ["a", "b", "c", "d"])), self.any_value(), self.body(r.randint(0, 2)) or "  true"))
        out.append("level(n) := \"high\" if {\n  n > %s\n} else := \"low\" if {\n  n >= %s\n}\n" % (
            number_text(r), number_text(r)))
        out.append("allowed_path(p) if glob.match(%s, [\"/\"], p)\nallowed_path(p) if startswith(p, %s)\n" % (
            rego_string(pick(r, ["/api/*/users", "/health", "/api/**"])), rego_string(pick(r, ["/admin", "/api/v1"]))))
        if self.chance(0.6):
            out.append("kind := \"admin\" if {\n%s\n} else := \"user\" if {\n%s\n} else := \"anonymous\"\n" % (
                self.body(1), self.body(1)))
        if self.chance(0.5):
            out.append("value := %s\n" % self.any_value())
        if self.chance(0.4):
            x = self.fresh("x")
            out.append("all_ok if every %s in %s {\n  %s\n}\n" % (x, self.array_expr(), self.var_condition(x)))
        return "\n".join(out)


# -- running ---------------------------------------------------------------------------------------------------------

ORACLE_MEMORY = 4 << 30       # bytes of address space for one oracle process
ORACLE_SECONDS = 300          # for one policy's cases


def oracle(cases):
    """OPA's envelopes for `cases`, one oracle process per policy, each bounded in memory and time: a policy that
    makes the engine run away (some do, while compiling) costs its own cases only, answered None."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ORACLE_MEMORY, ORACLE_MEMORY))

    envelopes = []
    start = 0
    while start < len(cases):
        end = start
        while end < len(cases) and cases[end]["module"] == cases[start]["module"]:
            end += 1
        batch = cases[start:end]
        lines = [json.dumps({"modules": {"test-0.rego": c["module"]}, "input_json": c["input_json"],
                             "query": c["query"]}) for c in batch]
        try:
            run = subprocess.run([os.path.join(here, "opa-oracle-raw.py")], input="\n".join(lines) + "\n",
                                 capture_output=True, text=True, preexec_fn=limit, timeout=ORACLE_SECONDS)
            out = run.stdout.splitlines() if run.returncode == 0 else []
        except subprocess.TimeoutExpired:
            out = []
        envelopes += out if len(out) == len(batch) else [None] * len(batch)
        start = end
    return envelopes


def write_cases(path, cases, envelopes, header):
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_builtin_cases", os.path.join(here, "make-builtin-cases.py"))
    writer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(writer)
    out = [header, "cases:\n"]
    for case, envelope in zip(cases, envelopes):
        writer.write_case({"note": case["note"], "modules": [case["module"]], "input_json": case["input_json"],
                              "query": case["query"]}, envelope, out)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--inputs", type=int, default=10, help="inputs per policy")
    parser.add_argument("--warden", default=os.path.join(root, ".build", "debug", "warden"))
    parser.add_argument("--no-negation", action="store_true", help="generate no `not` expressions")
    parser.add_argument("--keep", help="write every generated case under DIR/rego/generated/")
    parser.add_argument("--findings", help="write the cases that differed to this YAML file")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    cases = []
    for p in range(args.policies):
        generator = PolicyGenerator(rng, negations=not args.no_negation)
        module = generator.policy()
        rules = ["allow", "deny", "facts", "kind", "value", "all_ok"]
        for i in range(args.inputs):
            input_json = random_input(rng)
            for rule in rules:
                if "\n%s " % rule not in "\n" + module:
                    continue
                cases.append({"note": "generated/seed %d/policy %d/input %d/%s" % (args.seed, p, i, rule),
                              "module": module, "input_json": input_json, "query": "data.test.%s = x" % rule})
    envelopes = oracle(cases)
    unanswered = sorted({c["note"].rsplit("/input", 1)[0] for c, e in zip(cases, envelopes) if e is None})
    if unanswered:
        print("the oracle gave no answer (memory or time bound) for %s: left out" % ", ".join(unanswered))
        kept = [(c, e) for c, e in zip(cases, envelopes) if e is not None]
        cases, envelopes = [c for c, _ in kept], [e for _, e in kept]
    kinds = {"results": 0, "undefined": 0, "errors": 0}
    for e in envelopes:
        parsed = json.loads(e)
        kinds["errors" if parsed.get("error") else ("results" if parsed.get("result") else "undefined")] += 1

    work = args.keep or tempfile.mkdtemp(prefix="rego-differential-")
    header = "# Generated by scripts/rego-differential.py --seed %d --policies %d --inputs %d: expectations are\n" \
             "# OPA v1.20's answers (../shared/tools/opa-oracle).\n" % (args.seed, args.policies, args.inputs)
    write_cases(os.path.join(work, "rego", "generated", "seed-%d.yaml" % args.seed), cases, envelopes, header)
    run = subprocess.run([args.warden, "conformance", work, "--only", "rego", "--format", "json"],
                         capture_output=True, text=True)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        sys.exit("warden conformance did not answer: %s%s" % (run.stdout[-2000:], run.stderr[-2000:]))
    failures = {f["note"]: f["failure"] for f in report["failures"]}
    agreed = len(cases) - len(failures)
    print("seed %d: %d policies x %d inputs, %d rule queries (OPA: %d with results, %d undefined, %d errors); "
          "%d agreed, %d differed" % (args.seed, args.policies, args.inputs, len(cases), kinds["results"],
                                       kinds["undefined"], kinds["errors"], agreed, len(failures)))
    for note, failure in list(failures.items())[:20]:
        print("  %s\n    %s" % (note, failure.replace("\n", "\n    ")[:600]))
    if args.findings and failures:
        differing = [(c, e) for c, e in zip(cases, envelopes) if c["note"] in failures]
        write_cases(args.findings, [c for c, _ in differing], [e for _, e in differing], header)
        print("wrote %d differing cases to %s" % (len(differing), args.findings))
    sys.exit(1 if failures else 0)


main()
