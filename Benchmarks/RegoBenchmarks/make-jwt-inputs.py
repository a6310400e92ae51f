#!/usr/bin/env python3
"""Writes the io.jwt benchmark's inputs: one JSON document a line holding an HS256, an RS256 and an ES256 token
(each with its own subject, so no two calls verify the same token), signed with the test keys of
scripts/token-fixtures.json, whose public halves policy/jwt.rego holds.

    Benchmarks/RegoBenchmarks/make-jwt-inputs.py [COUNT] > FILE     # default 1000
"""
import base64
import hashlib
import hmac
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

here = os.path.dirname(os.path.abspath(__file__))
fixtures = json.load(open(os.path.join(here, "..", "..", "scripts", "token-fixtures.json"), encoding="utf-8"))
count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
rsa_key = serialization.load_pem_private_key(fixtures["keys"]["rsa"].encode(), None)
ec_key = serialization.load_pem_private_key(fixtures["keys"]["p256"].encode(), None)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(alg, subject):
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"iss": "https://issuer.example", "sub": subject, "aud": "api", "nbf": 1000000000, "exp": 4102444800,
              "roles": ["reader"]}
    signing_input = (header + "." + b64(json.dumps(claims, separators=(",", ":")).encode())).encode()
    if alg == "HS256":
        signature = hmac.new(b"a-shared-secret", signing_input, hashlib.sha256).digest()
    elif alg == "RS256":
        signature = rsa_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = utils.decode_dss_signature(ec_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input.decode() + "." + b64(signature)


for i in range(count):
    subject = "user-%d" % i
    print(json.dumps({"hs256": token("HS256", subject), "rs256": token("RS256", subject),
                      "es256": token("ES256", subject)}))
