#!/usr/bin/env python3
"""Writes conformance/rego/builtins/tokens.yaml: the io.jwt.* builtins in OPA's compliance format, every expectation
the answer of OPA v1.20 (../shared/tools/opa-oracle, through scripts/make-builtin-cases.py's driver).

Keys, certificates and tokens live in scripts/token-fixtures.json. They are made on the first run (python3 with the
`cryptography` package) and kept, so cases do not change between runs although ECDSA and PSS signatures are random;
`--new-keys` makes everything again. The keys are test keys, never used anywhere else. Every time-dependent case
passes decode_verify a fixed `time`, and the tokens without one expire in 2100 or expired in 2001, so no answer
depends on today's date.

A case may carry, besides the compliance fields:
  lenient: true       the case runs without strict builtin errors. The oracle always evaluates strictly, so it is
                      asked twice: the module as written must raise a builtin error, and the module with the failing
                      call (marked «...») replaced by an undefined reference gives the expected result, as OPA's
                      non-strict mode makes a failing call undefined.
  error_part: "..."   the expected error is this part of OPA's message (for messages that are not stable in OPA
                      itself, or that quote Go's ASN.1 parser); the script checks that OPA's message contains it.

    scripts/make-token-cases.py [--new-keys]
"""
import base64
import datetime
import hashlib
import hmac
import importlib
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.x509.oid import NameOID

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, ".."))
sys.path.insert(0, here)
builtin_cases = importlib.import_module("make-builtin-cases")

fixtures_path = os.path.join(here, "token-fixtures.json")
target = os.path.join(root, "conformance", "rego", "builtins", "tokens.yaml")

# Fixed instants: decode_verify gets TIME (2033-05-18) as its `time` constraint; tokens are valid from NBF (2001)
# until EXP (2100).
NBF = 1000000000
EXP = 4102444800
TIME = 2000000000 * 10**9
CLAIMS = {"iss": "https://issuer.example", "sub": "alice", "aud": "api", "iat": NBF, "nbf": NBF, "exp": EXP}


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(value):
    return json.dumps(value, separators=(",", ":"))


# -- keys ---------------------------------------------------------------------------------------------------------

KEY_SPECS = {
    "rsa": ("rsa", 2048), "rsa-other": ("rsa", 2048), "rsa-1024": ("rsa", 1024),
    "p256": ("ec", ec.SECP256R1()), "p256-other": ("ec", ec.SECP256R1()),
    "p384": ("ec", ec.SECP384R1()), "p521": ("ec", ec.SECP521R1()),
    "ed25519": ("ed25519", None), "ed25519-other": ("ed25519", None),
}
CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}


def new_key(kind, parameter):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=parameter)
    if kind == "ec":
        return ec.generate_private_key(parameter)
    return ed25519.Ed25519PrivateKey.generate()


def private_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def certificate(key, name):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(1000 + len(name))
               .not_valid_before(datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc))
               .not_valid_after(datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


class Fixtures:
    def __init__(self, fresh):
        self.data = {"keys": {}, "certificates": {}, "tokens": {}}
        if not fresh and os.path.exists(fixtures_path):
            self.data = json.load(open(fixtures_path, encoding="utf-8"))
        self.changed = fresh or not os.path.exists(fixtures_path)
        self.keys = {}
        for name, (kind, parameter) in KEY_SPECS.items():
            if name not in self.data["keys"]:
                self.data["keys"][name] = private_pem(new_key(kind, parameter))
                self.changed = True
            self.keys[name] = serialization.load_pem_private_key(self.data["keys"][name].encode(), None)
        for name in ("rsa", "p256"):
            if name not in self.data["certificates"]:
                self.data["certificates"][name] = certificate(self.keys[name], "warden-test-" + name)
                self.changed = True

    def save(self):
        if self.changed:
            with open(fixtures_path, "w", encoding="utf-8") as f:
                json.dump(self.data, f, indent=1, sort_keys=True)
                f.write("\n")

    def pem(self, name):
        return self.keys[name].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def certificate(self, name):
        return self.data["certificates"][name]

    def private_jwk(self, name, **extra):
        key = self.keys[name]
        jwk = self.jwk(name)
        if isinstance(key, rsa.RSAPrivateKey):
            n = key.private_numbers()
            jwk.update(d=integer(n.d), p=integer(n.p), q=integer(n.q), dp=integer(n.dmp1), dq=integer(n.dmq1),
                       qi=integer(n.iqmp))
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            jwk["d"] = integer(key.private_numbers().private_value, CURVES[key.curve.name][1])
        else:
            jwk["d"] = b64(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                             serialization.NoEncryption()))
        jwk.update(extra)
        return jwk

    def jwk(self, name, **extra):
        public = self.keys[name].public_key()
        if isinstance(public, rsa.RSAPublicKey):
            n = public.public_numbers()
            jwk = {"kty": "RSA", "n": integer(n.n), "e": integer(n.e)}
        elif isinstance(public, ec.EllipticCurvePublicKey):
            curve, size = CURVES[public.curve.name]
            n = public.public_numbers()
            jwk = {"kty": "EC", "crv": curve, "x": integer(n.x, size), "y": integer(n.y, size)}
        else:
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
        jwk.update(extra)
        return jwk

    def token(self, label, alg, key, claims=None, header=None, payload_text=None, header_text=None, salt=None):
        """A signed token, made once and kept under `label`."""
        if label in self.data["tokens"]:
            return self.data["tokens"][label]
        header_segment = b64(header_text if header_text is not None else compact(header or {"alg": alg, "typ": "JWT"}))
        payload_segment = b64(payload_text if payload_text is not None else compact(CLAIMS if claims is None else claims))
        signing_input = (header_segment + "." + payload_segment).encode()
        token = header_segment + "." + payload_segment + "." + b64(sign(alg, key, signing_input, salt))
        self.data["tokens"][label] = token
        self.changed = True
        return token


def integer(value, size=None):
    size = size or (value.bit_length() + 7) // 8
    return b64(value.to_bytes(size, "big"))


HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}


def sign(alg, key, data, salt=None):
    family, bits = alg[:2], alg[2:]
    if family == "HS":
        return hmac.new(key, data, getattr(hashlib, "sha" + bits)).digest()
    if family == "RS":
        return key.sign(data, padding.PKCS1v15(), HASHES[bits])
    if family == "PS":
        return key.sign(data, padding.PSS(padding.MGF1(HASHES[bits]), int(bits) // 8 if salt is None else salt),
                        HASHES[bits])
    if family == "ES":
        r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(HASHES[bits])))
        size = CURVES[key.curve.name][1]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return key.sign(data)


def tampered_payload(token, claims):
    parts = token.split(".")
    return parts[0] + "." + b64(compact(claims)) + "." + parts[2]


def tampered_signature(token):
    parts = token.split(".")
    signature = bytearray(base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4)))
    signature[len(signature) // 2] ^= 1
    return parts[0] + "." + parts[1] + "." + b64(bytes(signature))


# -- cases --------------------------------------------------------------------------------------------------------

def module(body):
    return "package test\n\n" + body.strip("\n") + "\n"


class Cases:
    def __init__(self):
        self.cases = []
        self.notes = set()

    def add(self, note, body, input_value=None, query="data.test.p = x", lenient=False, error_part=None):
        note = "builtins/tokens/" + note
        if note in self.notes:
            raise SystemExit("duplicate note: " + note)
        self.notes.add(note)
        case = {"note": note, "modules": [module(body)], "query": query}
        if input_value is not None:
            case["input"] = input_value
        if lenient:
            case["lenient"] = True
        if error_part:
            case["error_part"] = error_part
        self.cases.append(case)

    def call(self, note, expression, input_value, **options):
        self.add(note, "p := " + expression, input_value, **options)


ALGORITHMS = [("RS256", "rsa"), ("RS384", "rsa"), ("RS512", "rsa"), ("PS256", "rsa"), ("PS384", "rsa"),
              ("PS512", "rsa"), ("ES256", "p256"), ("ES384", "p384"), ("ES512", "p521"), ("EdDSA", "ed25519")]
OTHER_KEY = {"rsa": "rsa-other", "p256": "p256-other", "p384": "p256", "p521": "p384", "ed25519": "ed25519-other"}
WRONG_TYPE = {"rsa": "p256", "p256": "rsa", "p384": "rsa", "p521": "ed25519", "ed25519": "p256"}
SECRET = b"a-shared-secret"


def builtin_name(alg):
    return "io.jwt.verify_" + alg.lower()


def build(fx):
    c = Cases()
    signed = {alg: fx.token(alg, alg, fx.keys[key]) for alg, key in ALGORITHMS}
    for alg in ("HS256", "HS384", "HS512"):
        signed[alg] = fx.token(alg, alg, SECRET)
    verify = "%s(input.token, input.key)"

    # io.jwt.verify_*: every algorithm valid, tampered, with another key and with a key of the wrong type.
    for alg, key in ALGORITHMS:
        name = builtin_name(alg)
        token = signed[alg]
        c.call("%s/valid with a PEM public key" % alg, verify % name, {"token": token, "key": fx.pem(key)})
        c.call("%s/valid with a JWK" % alg, verify % name, {"token": token, "key": compact(fx.jwk(key))})
        c.call("%s/tampered payload" % alg, verify % name,
               {"token": tampered_payload(token, dict(CLAIMS, sub="mallory")), "key": fx.pem(key)})
        c.call("%s/tampered signature" % alg, verify % name, {"token": tampered_signature(token), "key": fx.pem(key)})
        c.call("%s/another key of the same type" % alg, verify % name, {"token": token, "key": fx.pem(OTHER_KEY[key])})
        c.call("%s/a key of the wrong type" % alg, verify % name, {"token": token, "key": fx.pem(WRONG_TYPE[key])})
    for alg in ("HS256", "HS384", "HS512"):
        name = builtin_name(alg)
        c.call("%s/valid" % alg, verify % name, {"token": signed[alg], "key": SECRET.decode()})
        c.call("%s/wrong secret" % alg, verify % name, {"token": signed[alg], "key": "another-secret"})
        c.call("%s/tampered payload" % alg, verify % name,
               {"token": tampered_payload(signed[alg], dict(CLAIMS, sub="mallory")), "key": SECRET.decode()})
        c.call("%s/tampered signature" % alg, verify % name,
               {"token": tampered_signature(signed[alg]), "key": SECRET.decode()})
    c.call("HS384/token checked as HS256", verify % "io.jwt.verify_hs256",
           {"token": signed["HS384"], "key": SECRET.decode()})
    c.call("HS256/an RS256 token and its key's PEM as the secret", verify % "io.jwt.verify_hs256",
           {"token": signed["RS256"], "key": fx.pem("rsa")})
    c.call("HS256/empty secret", verify % "io.jwt.verify_hs256",
           {"token": fx.token("HS256 empty secret", "HS256", b""), "key": ""})
    c.call("HS256/the header is not decoded", verify % "io.jwt.verify_hs256",
           {"token": fx.token("HS256 header not JSON", "HS256", SECRET, header_text="not json"), "key": SECRET.decode()})
    c.call("HS256/signature not base64url", verify % "io.jwt.verify_hs256",
           {"token": signed["HS256"][:-2] + "*!", "key": SECRET.decode()})
    c.call("HS256/two sections", verify % "io.jwt.verify_hs256", {"token": "a.b", "key": "s"})
    c.call("HS256/token not a string", verify % "io.jwt.verify_hs256", {"token": 5, "key": "s"})
    c.call("HS256/secret not a string", verify % "io.jwt.verify_hs256", {"token": signed["HS256"], "key": ["s"]})

    # Which algorithm verifies: the builtin's, whatever the header says.
    c.call("RS384 token checked as RS256", verify % "io.jwt.verify_rs256", {"token": signed["RS384"], "key": fx.pem("rsa")})
    c.call("PS256 token checked as RS256", verify % "io.jwt.verify_rs256", {"token": signed["PS256"], "key": fx.pem("rsa")})
    c.call("RS256 signature under a header naming another algorithm", verify % "io.jwt.verify_rs256",
           {"token": fx.token("RS256 header says XYZ", "RS256", fx.keys["rsa"], header={"alg": "XYZ"}),
            "key": fx.pem("rsa")})
    c.call("ES256 token checked with a P-384 key", verify % "io.jwt.verify_es256",
           {"token": signed["ES256"], "key": fx.pem("p384")})
    c.call("EdDSA token checked as ES256", verify % "io.jwt.verify_es256",
           {"token": signed["EdDSA"], "key": fx.pem("ed25519")})

    # Key forms: certificates, JWKS, 1024-bit RSA, what OPA refuses.
    c.call("key forms/RSA certificate", verify % "io.jwt.verify_rs256", {"token": signed["RS256"], "key": fx.certificate("rsa")})
    c.call("key forms/EC certificate", verify % "io.jwt.verify_es256", {"token": signed["ES256"], "key": fx.certificate("p256")})
    c.call("key forms/certificate of another key", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": fx.certificate("p256")})
    c.call("key forms/PEM after other text", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": "the issuer's key:\n" + fx.pem("rsa")})
    c.call("key forms/PEM without a final line break", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": fx.pem("rsa").rstrip("\n")})
    c.call("key forms/PEM followed by a blank line", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": fx.pem("rsa") + "\n"})
    c.call("key forms/two PEM blocks", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": fx.certificate("rsa") + fx.certificate("p256")})
    c.call("key forms/RSA PUBLIC KEY block", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": fx.keys["rsa"].public_key().public_bytes(
               serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()})
    c.call("key forms/private key PEM", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": fx.data["keys"]["rsa"]})
    c.call("key forms/PEM public key that is not DER", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
           error_part="io.jwt.verify_rs256: failed to parse a PEM public key: ")
    c.call("key forms/PEM certificate that is not DER", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"})
    c.call("key forms/unterminated PEM is read as JSON", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n"})
    rs1024 = fx.token("RS256 1024-bit", "RS256", fx.keys["rsa-1024"])
    c.call("key forms/1024-bit RSA PEM", verify % "io.jwt.verify_rs256", {"token": rs1024, "key": fx.pem("rsa-1024")})
    c.call("key forms/1024-bit RSA JWK", verify % "io.jwt.verify_rs256",
           {"token": rs1024, "key": compact(fx.jwk("rsa-1024"))})
    c.call("key forms/a secret where a key is wanted", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": "secret"})
    c.call("key forms/empty key", verify % "io.jwt.verify_rs256", {"token": signed["RS256"], "key": ""})
    c.call("key forms/key not a string", verify % "io.jwt.verify_rs256", {"token": signed["RS256"], "key": {"kty": "RSA"}})

    jwk_rsa = fx.jwk("rsa")
    jwks = lambda *keys: compact({"keys": list(keys)})
    c.call("JWKS/the matching key among several", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": jwks(fx.jwk("p256"), fx.jwk("rsa-other"), jwk_rsa)})
    c.call("JWKS/EC key among RSA keys", verify % "io.jwt.verify_es256",
           {"token": signed["ES256"], "key": jwks(jwk_rsa, fx.jwk("p256-other"), fx.jwk("p256"))})
    c.call("JWKS/no key verifies", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": jwks(fx.jwk("rsa-other"), fx.jwk("p256"))})
    c.call("JWKS/empty set", verify % "io.jwt.verify_rs256", {"token": signed["RS256"], "key": jwks()})
    kid_token = fx.token("RS256 kid k2", "RS256", fx.keys["rsa"], header={"alg": "RS256", "kid": "k2"})
    c.call("JWKS/kid selects the key", verify % "io.jwt.verify_rs256",
           {"token": kid_token, "key": jwks(dict(fx.jwk("rsa-other"), kid="k1"), dict(jwk_rsa, kid="k2"))})
    c.call("JWKS/kid selects a key that does not verify", verify % "io.jwt.verify_rs256",
           {"token": kid_token, "key": jwks(dict(jwk_rsa, kid="k1"), dict(fx.jwk("rsa-other"), kid="k2"))})
    c.call("JWKS/no key has the kid: every key is tried", verify % "io.jwt.verify_rs256",
           {"token": kid_token, "key": jwks(dict(fx.jwk("rsa-other"), kid="k1"), dict(jwk_rsa, kid="k3"))})
    c.call("JWKS/key pinned to the token's alg", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": jwks(dict(jwk_rsa, alg="RS256"))})
    c.call("JWKS/key pinned to another alg", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": jwks(dict(jwk_rsa, alg="RS512"))})
    c.call("JWKS/key pinned to an encryption alg is left out", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": jwks(dict(jwk_rsa, alg="RSA-OAEP"))})
    c.call("JWKS/use enc does not matter", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": jwks(dict(jwk_rsa, use="enc", key_ops=["encrypt"]))})
    c.call("JWKS/padded standard base64 members", verify % "io.jwt.verify_es256",
           {"token": signed["ES256"], "key": compact({k: (base64.b64encode(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))).decode()
                                                           if k in ("x", "y") else v) for k, v in fx.jwk("p256").items()})})
    c.call("JWKS/private RSA JWK", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": compact(fx.private_jwk("rsa"))})
    c.call("JWKS/private EC JWK", verify % "io.jwt.verify_es256",
           {"token": signed["ES256"], "key": compact(fx.private_jwk("p256"))})
    c.call("JWKS/oct JWK with an RS256 token", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": compact({"kty": "oct", "k": b64(SECRET)})})
    c.call("JWKS/X25519 key", verify % "io.jwt.verify_eddsa",
           {"token": signed["EdDSA"], "key": compact(dict(fx.jwk("ed25519"), crv="X25519"))})
    c.call("JWKS/RSA key under 1024 bits", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": compact({"kty": "RSA", "n": "AQAB", "e": "AQAB"})})

    malformed = [
        ("empty object", "{}"),
        ("unknown kty", '{"kty": "XYZ"}'),
        ("kty not a string", '{"kty": 1}'),
        ("RSA without e", '{"kty": "RSA", "n": "AQAB"}'),
        ("RSA without members", '{"kty": "RSA"}'),
        ("RSA n not a string", '{"kty": "RSA", "n": 1, "e": "AQAB"}'),
        ("RSA n not base64", '{"kty": "RSA", "n": "!!", "e": "AQAB"}'),
        ("RSA n wrongly padded", '{"kty": "RSA", "n": "AQAB==", "e": "AQAB"}'),
        ("RSA empty n", '{"kty": "RSA", "n": "", "e": "AQAB"}'),
        ("RSA zero e", '{"kty": "RSA", "n": "AQAB", "e": "AA"}'),
        ("RSA even e", '{"kty": "RSA", "n": "AQAB", "e": "AQAA"}'),
        ("EC without crv", '{"kty": "EC", "x": "AA", "y": "AA"}'),
        ("EC unknown curve", '{"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA"}'),
        ("EC short coordinates", '{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}'),
        ("EC point off the curve", compact(dict(fx.jwk("p256"), y=fx.jwk("p256")["x"]))),
        ("OKP short key", '{"kty": "OKP", "crv": "Ed25519", "x": "AA"}'),
        ("OKP Ed448", '{"kty": "OKP", "crv": "Ed448", "x": "AA"}'),
        ("oct without k", '{"kty": "oct"}'),
        ("oct empty k", '{"kty": "oct", "k": ""}'),
        ("unknown alg", '{"kty": "oct", "k": "AA", "alg": "XX"}'),
        ("kid not a string", '{"kty": "oct", "k": "AA", "kid": 1}'),
        ("key_ops not a list", '{"kty": "oct", "k": "AA", "key_ops": 1}'),
        ("x5c not a certificate", compact(dict(jwk_rsa, x5c=["AAAA"]))),
        ("private RSA JWK without primes", compact(dict(jwk_rsa, d=jwk_rsa["e"]))),
        ("private EC JWK with a short d", compact(dict(fx.jwk("p256"), d="AA"))),
        ("keys not a list", '{"keys": {}}'),
        ("keys null", '{"keys": null}'),
        ("keys holding an empty object", '{"keys": [{}]}'),
        ("second key malformed", jwks(jwk_rsa, {"kty": "RSA"})),
        ("truncated JSON", '{"kty": '),
        ("JSON with a syntax error", '{"keys": [}'),
    ]
    for label, text in malformed:
        c.call("malformed keys/" + label, verify % "io.jwt.verify_rs256", {"token": signed["RS256"], "key": text})
    for label, text in [("array", "[]"), ("number", "1")]:
        # Go prints the members of the probe struct in a random order, so only the start of the message is kept.
        c.call("malformed keys/a JSON " + label, verify % "io.jwt.verify_rs256", {"token": signed["RS256"], "key": text},
               error_part="probe: failed to unmarshal data: json: cannot unmarshal %s into Go value of type struct {"
               % label)
    c.call("malformed keys/trailing text after the JWK is ignored", verify % "io.jwt.verify_rs256",
           {"token": signed["RS256"], "key": compact(jwk_rsa) + " trailing"})

    # Malformed tokens given to verify.
    header, payload, signature = signed["RS256"].split(".")
    bad_tokens = [
        ("no dots", "abc"),
        ("two sections", header + "." + payload),
        ("four sections", signed["RS256"] + ".x"),
        ("signature not base64url", header + "." + payload + "." + signature[:-3] + "*ab"),
        ("header not base64url", "*" + header + "." + payload + "." + signature),
        ("header not JSON", b64("not json") + "." + payload + "." + signature),
        ("header kid not a string", b64(compact({"alg": "RS256", "kid": 7})) + "." + payload + "." + signature),
        ("header crit not a list", b64(compact({"alg": "RS256", "crit": "x"})) + "." + payload + "." + signature),
        ("header crit empty", b64(compact({"alg": "RS256", "crit": []})) + "." + payload + "." + signature),
        ("JWE header", b64(compact({"alg": "RSA-OAEP", "enc": "A256GCM"})) + "." + payload + "." + signature),
        ("payload not JSON is not looked at", header + "." + b64("not json") + "." + signature),
    ]
    for label, token in bad_tokens:
        c.call("malformed tokens/verify, " + label, verify % "io.jwt.verify_rs256", {"token": token, "key": fx.pem("rsa")})
    c.call("malformed tokens/verify, token not a string", verify % "io.jwt.verify_rs256", {"token": 1, "key": fx.pem("rsa")})

    # io.jwt.decode.
    decode = "io.jwt.decode(input.token)"
    for alg in ("HS256", "RS256", "ES384", "EdDSA"):
        c.call("decode/%s token" % alg, decode, {"token": signed[alg]})
    hs_header = b64(compact({"alg": "HS256"}))
    claims_segment = b64(compact({"sub": "alice"}))
    decode_tokens = [
        ("empty string", ""),
        ("no dots", "abc"),
        ("two sections", hs_header + "." + claims_segment),
        ("four sections", hs_header + "." + claims_segment + ".c2ln.x"),
        ("empty sections", ".."),
        ("header not base64url", "*" + hs_header + "." + claims_segment + ".c2ln"),
        ("header of one base64 character too many", hs_header + "x." + claims_segment + ".c2ln"),
        ("header padded", hs_header + "==." + claims_segment + ".c2ln"),
        ("header not JSON", b64("nope") + "." + claims_segment + ".c2ln"),
        ("header a JSON array", b64("[1]") + "." + claims_segment + ".c2ln"),
        ("header JSON with trailing text", b64('{"alg":"x"} 1') + "." + claims_segment + ".c2ln"),
        ("header without alg", b64("{}") + "." + claims_segment + ".c2ln"),
        ("header with repeated members", b64('{"a":1,"a":2}') + "." + claims_segment + ".c2ln"),
        ("header not UTF-8", b64(b'{"alg":"\xff"}') + "." + claims_segment + ".c2ln"),
        ("JWE header", b64(compact({"alg": "dir", "enc": "A128GCM"})) + "." + claims_segment + ".c2ln"),
        ("payload not base64url", hs_header + ".***.c2ln"),
        ("payload of one base64 character too many", hs_header + ".abcde.c2ln"),
        ("payload not JSON", hs_header + "." + b64("hello") + ".c2ln"),
        ("payload a JSON array", hs_header + "." + b64("[1,2]") + ".c2ln"),
        ("payload empty", hs_header + "..c2ln"),
        ("payload numbers keep their text", hs_header + "." + b64('{"n":1.50,"m":1e3,"big":123456789012345678901234567890}')
         + ".c2ln"),
        ("payload escapes and surrogates", hs_header + "."
         + b64(r'{"s":"\u00e9\ud83d\ude00\/\"\\\b\f\n\r\t","lone":"\ud800","pair":"\ud800\u0041"}') + ".c2ln"),
        ("payload with nested repeated members", hs_header + "." + b64('{"a":{"b":1,"b":2},"c":[{"d":1,"d":3}]}')
         + ".c2ln"),
        ("payload followed by null", hs_header + "." + b64("{} null") + ".c2ln"),
        ("payload with a raw tab in a string", hs_header + "." + b64('{"t":"a\tb"}') + ".c2ln"),
        ("payload with numbers beyond doubles", hs_header + "." + b64('{"e":1e400,"f":-1e-400,"z":-0}') + ".c2ln"),
        ("payload nested 600 deep", hs_header + "." + b64('{"deep":' + "[" * 600 + "]" * 600 + "}") + ".c2ln"),
        ("signature empty", hs_header + "." + claims_segment + "."),
        ("signature padded", hs_header + "." + claims_segment + ".c2k="),
        ("signature of one base64 character too many", hs_header + "." + claims_segment + ".a"),
        ("signature in the standard alphabet", hs_header + "." + claims_segment + ".ab+/"),
        ("signature with a line break", hs_header + "." + claims_segment + ".c2\nln"),
        ("nested token", fx.token("nested", "HS256", SECRET, header={"alg": "HS256", "cty": "JWT"},
                                  payload_text=signed["HS256"])),
        ("nested quoted token", fx.token("nested quoted", "HS256", SECRET, header={"alg": "HS256", "cty": "JWT"},
                                         payload_text='"' + signed["HS256"] + '"')),
        ("nested token that is not one", b64(compact({"cty": "JWT"})) + "." + b64("'x.y'") + "."),
        ("cty jwt in lowercase is not nested", b64(compact({"cty": "jwt"})) + "." + claims_segment + "."),
    ]
    for label, token in decode_tokens:
        c.call("decode/" + label, decode, {"token": token})
    c.call("decode/token not a string", decode, {"token": ["a.b.c"]})
    c.add("decode/constant token", "p := io.jwt.decode(%s)" % json.dumps(signed["HS256"]))
    c.add("decode/constant token of the wrong type", "p := io.jwt.decode(1)")
    c.add("decode/output operand form",
          "p := claims.sub if io.jwt.decode(input.token, [_, claims, _])", {"token": signed["HS256"]})

    # io.jwt.decode_verify.
    dv = "io.jwt.decode_verify(input.token, input.constraints)"

    def dv_case(note, token, constraints, **options):
        c.call("decode_verify/" + note, dv, {"token": token, "constraints": constraints}, **options)

    base = {"time": TIME, "aud": "api"}
    for alg, key in ALGORITHMS:
        dv_case("%s valid with a PEM key" % alg, signed[alg], dict(base, cert=fx.pem(key)))
    for alg in ("HS256", "HS384", "HS512"):
        dv_case("%s valid" % alg, signed[alg], dict(base, secret=SECRET.decode()))
    dv_case("RS256 valid with a certificate", signed["RS256"], dict(base, cert=fx.certificate("rsa")))
    dv_case("ES256 valid with a JWK", signed["ES256"], dict(base, cert=compact(fx.jwk("p256"))))
    dv_case("RS256 valid with a JWKS", signed["RS256"], dict(base, cert=jwks(fx.jwk("p256"), jwk_rsa)))
    dv_case("HS256 valid with an oct JWK", signed["HS256"], dict(base, cert=compact({"kty": "oct", "k": b64(SECRET)})))
    dv_case("RS256 valid with a private JWK", signed["RS256"], dict(base, cert=compact(fx.private_jwk("rsa"))))
    dv_case("EdDSA valid with a private JWK", signed["EdDSA"], dict(base, cert=compact(fx.private_jwk("ed25519"))))
    dv_case("RS256 1024-bit key", rs1024, dict(base, cert=fx.pem("rsa-1024")))
    dv_case("kid selects the key", kid_token,
            dict(base, cert=jwks(dict(fx.jwk("rsa-other"), kid="k1"), dict(jwk_rsa, kid="k2"))))
    dv_case("kid selects a key that does not verify", kid_token,
            dict(base, cert=jwks(dict(jwk_rsa, kid="k1"), dict(fx.jwk("rsa-other"), kid="k2"))))
    dv_case("key pinned to another alg", signed["RS256"], dict(base, cert=jwks(dict(jwk_rsa, alg="PS256"))))
    dv_case("empty JWKS", signed["RS256"], dict(base, cert=jwks()))
    dv_case("tampered payload", tampered_payload(signed["RS256"], dict(CLAIMS, sub="mallory")),
            dict(base, cert=fx.pem("rsa")))
    dv_case("tampered signature", tampered_signature(signed["ES256"]), dict(base, cert=fx.pem("p256")))
    dv_case("wrong secret", signed["HS256"], dict(base, secret="another-secret"))
    dv_case("wrong key", signed["RS256"], dict(base, cert=fx.pem("rsa-other")))
    dv_case("key of the wrong type", signed["RS256"], dict(base, cert=fx.pem("p256")))
    dv_case("secret for an RS256 token", signed["RS256"], dict(base, secret=SECRET.decode()))
    dv_case("public key PEM as the HS256 secret", fx.token("HS256 keyed by PEM", "HS256", fx.pem("rsa").encode()),
            dict(base, cert=fx.pem("rsa")))
    dv_case("PS256 with a salt other than the hash length", fx.token("PS256 salt 0", "PS256", fx.keys["rsa"], salt=0),
            dict(base, cert=fx.pem("rsa")))

    # Claims and constraints.
    def claims_token(label, claims, alg="HS256", header=None):
        return fx.token(label, alg, SECRET, claims=claims, header=header)

    hs = dict(base, secret=SECRET.decode())
    dv_case("time/at the expiry", signed["HS256"], dict(hs, time=EXP * 10**9))
    dv_case("time/a nanosecond before the expiry", signed["HS256"], dict(hs, time=EXP * 10**9 - 1))
    dv_case("time/a millisecond before the expiry", signed["HS256"], dict(hs, time=EXP * 10**9 - 10**6))
    dv_case("time/at not-before", signed["HS256"], dict(hs, time=NBF * 10**9))
    dv_case("time/a nanosecond before not-before", signed["HS256"], dict(hs, time=NBF * 10**9 - 1))
    dv_case("time/a second before not-before", signed["HS256"], dict(hs, time=(NBF - 1) * 10**9))
    dv_case("time/as a float", signed["HS256"], dict(hs, time=2.5e18))
    dv_case("time/zero", claims_token("no times", {"sub": "alice", "aud": "api"}), dict(hs, time=0))
    fractional = claims_token("exp with a fraction", dict(CLAIMS, exp=2000000000.5))
    dv_case("time/fractional exp after now", fractional, dict(hs, time=2000000000400000000))
    dv_case("time/fractional exp at now", fractional, dict(hs, time=2000000000500000000))
    dv_case("time/fractional exp within a double's precision", fractional, dict(hs, time=2000000000499999999))
    dv_case("time/not a number", signed["HS256"], dict(hs, time="2033"))
    dv_case("time/negative", signed["HS256"], dict(hs, time=-1))
    dv_case("time/from the clock when not given, valid until 2100", signed["HS256"],
            {"secret": SECRET.decode(), "aud": "api"})
    dv_case("time/from the clock when not given, expired in 2001",
            claims_token("expired in 2001", dict(CLAIMS, exp=NBF + 3600)), {"secret": SECRET.decode(), "aud": "api"})
    dv_case("time/exp not a number", claims_token("exp a string", dict(CLAIMS, exp="2100")), hs)
    dv_case("time/nbf not a number", claims_token("nbf a string", dict(CLAIMS, nbf=True)), hs)
    dv_case("time/expired token with nbf not a number",
            claims_token("expired with nbf a string", dict(CLAIMS, exp=NBF + 1, nbf="x")), hs)
    dv_case("time/no exp or nbf", claims_token("no times", {"sub": "alice", "aud": "api"}), hs)

    dv_case("iss/matches", signed["HS256"], dict(hs, iss="https://issuer.example"))
    dv_case("iss/differs", signed["HS256"], dict(hs, iss="https://other.example"))
    dv_case("iss/claim missing", claims_token("no iss", {k: v for k, v in CLAIMS.items() if k != "iss"}),
            dict(hs, iss="https://issuer.example"))
    dv_case("iss/claim present without a constraint", signed["HS256"], hs)
    dv_case("iss/not a string", signed["HS256"], dict(hs, iss=1))

    no_aud = claims_token("no aud", {k: v for k, v in CLAIMS.items() if k != "aud"})
    aud_list = claims_token("aud list", dict(CLAIMS, aud=["web", "api"]))
    dv_case("aud/string matches", signed["HS256"], hs)
    dv_case("aud/string differs", signed["HS256"], dict(hs, aud="web"))
    dv_case("aud/list contains it", aud_list, hs)
    dv_case("aud/list lacks it", aud_list, dict(hs, aud="admin"))
    dv_case("aud/claim present without a constraint", signed["HS256"], {"time": TIME, "secret": SECRET.decode()})
    dv_case("aud/list present without a constraint", aud_list, {"time": TIME, "secret": SECRET.decode()})
    dv_case("aud/claim missing with a constraint", no_aud, hs)
    dv_case("aud/claim missing without a constraint", no_aud, {"time": TIME, "secret": SECRET.decode()})
    dv_case("aud/claim a number", claims_token("aud a number", dict(CLAIMS, aud=1)), dict(hs, aud="1"))
    dv_case("aud/list with a number", claims_token("aud list with a number", dict(CLAIMS, aud=[1, "api"])), hs)
    dv_case("aud/not a string", signed["HS256"], dict(hs, aud=["api"]))

    dv_case("alg/matches", signed["HS256"], dict(hs, alg="HS256"))
    dv_case("alg/differs", signed["HS256"], dict(hs, alg="HS384"))
    dv_case("alg/differs from an RS256 token", signed["RS256"], dict(base, cert=fx.pem("rsa"), alg="PS256"))
    dv_case("alg/not a string", signed["HS256"], dict(hs, alg=256))

    dv_case("header/no alg", fx.token("HS256 header without alg", "HS256", SECRET, header={"typ": "JWT"}), hs)
    dv_case("header/alg none", fx.token("HS256 header alg none", "HS256", SECRET, header={"alg": "none"}), hs)
    dv_case("header/unknown alg", fx.token("HS256 header alg HS999", "HS256", SECRET, header={"alg": "HS999"}), hs)
    dv_case("header/crit names an unknown member", fx.token(
        "HS256 crit foo", "HS256", SECRET, header={"alg": "HS256", "crit": ["foo"], "foo": 1}), hs)
    dv_case("header/crit names a member the header lacks", fx.token(
        "HS256 crit absent", "HS256", SECRET, header={"alg": "HS256", "crit": ["foo"]}), hs)
    dv_case("header/crit not a list", fx.token(
        "HS256 crit string", "HS256", SECRET, header={"alg": "HS256", "crit": "foo"}), hs)
    dv_case("header/kid not a string", fx.token(
        "HS256 kid number", "HS256", SECRET, header={"alg": "HS256", "kid": 5}), hs)
    dv_case("header/typ not a string", fx.token(
        "HS256 typ number", "HS256", SECRET, header={"alg": "HS256", "typ": 5}), hs)
    dv_case("header/JWE", fx.token("HS256 enc", "HS256", SECRET, header={"alg": "HS256", "enc": "A128GCM"}), hs)

    nested = fx.token("nested", "HS256", SECRET, header={"alg": "HS256", "cty": "JWT"}, payload_text=signed["HS256"])
    dv_case("nested/verified at every level", nested, hs)
    dv_case("nested/lowercase cty", fx.token("nested lowercase cty", "HS256", SECRET,
                                             header={"alg": "HS256", "cty": "jwt"}, payload_text=signed["HS256"]), hs)
    dv_case("nested/inner token signed with another key", fx.token(
        "nested inner RS256", "HS256", SECRET, header={"alg": "HS256", "cty": "JWT"}, payload_text=signed["RS256"]), hs)
    dv_case("nested/quoted inner token", fx.token("nested quoted", "HS256", SECRET, header={"alg": "HS256", "cty": "JWT"},
                                                  payload_text='"' + signed["HS256"] + '"'), hs)

    dv_case("payload/not JSON", fx.token("HS256 payload not JSON", "HS256", SECRET, payload_text="hello"), hs)
    dv_case("payload/a JSON array", fx.token("HS256 payload array", "HS256", SECRET, payload_text="[1]"), hs)
    dv_case("payload/numbers keep their text", fx.token(
        "HS256 payload numbers", "HS256", SECRET, payload_text='{"aud":"api","exp":4102444800.0,"n":1.50}'), hs)

    dv_case("constraints/unknown constraint", signed["HS256"], dict(hs, foo=1))
    dv_case("constraints/errors reported in key order", signed["HS256"], {"zzz": 1, "alg": 1, "time": "x"})
    dv_case("constraints/cert not a string", signed["HS256"], dict(base, cert=1))
    dv_case("constraints/secret not a string", signed["HS256"], dict(base, secret=1))
    dv_case("constraints/cert and secret", signed["HS256"], dict(hs, cert=fx.pem("rsa")))
    dv_case("constraints/no key", signed["HS256"], base)
    dv_case("constraints/empty secret", signed["HS256"], dict(base, secret=""))
    dv_case("constraints/malformed cert", signed["RS256"], dict(base, cert='{"kty": "RSA"}'))
    dv_case("constraints/constraint errors come before token errors", "not a token", dict(base, cert=1))
    dv_case("token/not a token", "abc", hs)
    dv_case("token/two sections", "a.b", hs)
    dv_case("token/signature not base64url", signed["HS256"] + "*", hs)
    dv_case("token/header not JSON", b64("x") + "." + b64("{}") + ".", hs)
    dv_case("token/not a string", 7, hs)
    c.call("decode_verify/constraints not an object", dv, {"token": signed["HS256"], "constraints": ["secret"]})
    c.add("decode_verify/constant constraints of the wrong type", 'p := io.jwt.decode_verify("a.b.c", "secret")')
    c.add("decode_verify/constant operands and a time", "p := io.jwt.decode_verify(%s, %s)" % (
        json.dumps(signed["HS256"]), json.dumps(dict(hs, time=TIME))))

    # io.jwt.encode_sign_raw and encode_sign. HMAC, RSA PKCS #1 and EdDSA signatures are deterministic and compared
    # as text; ECDSA and PSS ones are randomized, so those tokens are checked by verifying them.
    oct_jwk = {"kty": "oct", "k": b64(SECRET)}
    raw = "io.jwt.encode_sign_raw(input.header, input.payload, input.key)"

    def raw_case(note, header_text, payload_text, key, **options):
        c.call("encode_sign_raw/" + note, raw, {"header": header_text, "payload": payload_text, "key": key}, **options)

    for alg, key in (("HS256", oct_jwk), ("HS384", oct_jwk), ("HS512", oct_jwk), ("RS256", fx.private_jwk("rsa")),
                     ("RS512", fx.private_jwk("rsa")), ("EdDSA", fx.private_jwk("ed25519"))):
        raw_case("%s" % alg, compact({"alg": alg, "typ": "JWT"}), compact({"sub": "alice"}), compact(key))
    raw_case("header and payload kept as written", '{"alg": "HS256",  "typ": "JWT"}', '{ "sub" : "alice" }',
             compact(oct_jwk))
    raw_case("payload not JSON with another typ", compact({"alg": "HS256", "typ": "text"}), "hello", compact(oct_jwk))
    raw_case("payload not JSON without a typ", compact({"alg": "HS256"}), "hello", compact(oct_jwk))
    raw_case("payload not JSON with typ JWT", compact({"alg": "HS256", "typ": "JWT"}), "hello", compact(oct_jwk))
    raw_case("first key of a set", compact({"alg": "HS256"}), "{}", jwks(oct_jwk, fx.private_jwk("rsa")))
    raw_case("empty set", compact({"alg": "HS256"}), "{}", jwks())
    raw_case("no alg", compact({"typ": "JWT"}), "{}", compact(oct_jwk))
    raw_case("alg not a string", compact({"alg": 256}), "{}", compact(oct_jwk))
    raw_case("alg none", compact({"alg": "none"}), "{}", compact(oct_jwk))
    raw_case("unknown alg", compact({"alg": "XYZ"}), "{}", compact(oct_jwk))
    raw_case("header a JSON array", "[1]", "{}", compact(oct_jwk))
    raw_case("header not JSON", "not json", "{}", compact(oct_jwk),
             error_part="io.jwt.encode_sign_raw: missing or invalid 'alg' header: cannot parse JSON")
    raw_case("RS256 with an oct key", compact({"alg": "RS256"}), "{}", compact(oct_jwk))
    raw_case("RS256 with a public key", compact({"alg": "RS256"}), "{}", compact(jwk_rsa))
    raw_case("HS256 with an RSA key", compact({"alg": "HS256"}), "{}", compact(fx.private_jwk("rsa")))
    raw_case("ES256 with an RSA key", compact({"alg": "ES256"}), "{}", compact(fx.private_jwk("rsa")))
    raw_case("EdDSA with an EC key", compact({"alg": "EdDSA"}), "{}", compact(fx.private_jwk("p256")))
    raw_case("key not JSON", compact({"alg": "HS256"}), "{}", "secret")
    raw_case("oct key with an empty k", compact({"alg": "HS256"}), "{}", '{"kty": "oct", "k": ""}')
    c.call("encode_sign_raw/key not a string", raw, {"header": compact({"alg": "HS256"}), "payload": "{}", "key": 1})
    round_trip = """
token := io.jwt.encode_sign_raw(input.header, input.payload, input.key)

p := [io.jwt.%s(token, input.public), io.jwt.decode(token)[1]]
"""
    for alg, key in (("ES256", "p256"), ("ES384", "p384"), ("ES512", "p521"), ("PS256", "rsa"), ("PS512", "rsa")):
        c.add("encode_sign_raw/%s signs what verify_%s accepts" % (alg, alg.lower()),
              round_trip % builtin_name(alg)[len("io.jwt."):],
              {"header": compact({"alg": alg}), "payload": compact({"sub": "alice"}),
               "key": compact(fx.private_jwk(key)), "public": fx.pem(key)})

    sign_obj = "io.jwt.encode_sign(input.header, input.payload, input.key)"
    c.call("encode_sign/HS256 with claims written as Go writes JSON", sign_obj,
           {"header": {"typ": "JWT", "alg": "HS256"}, "payload": {"sub": "a<b>&c", "z": [1, {"b": 1, "a": 2}]},
            "key": oct_jwk})
    c.call("encode_sign/RS384", sign_obj, {"header": {"alg": "RS384"}, "payload": {"sub": "alice"},
                                           "key": fx.private_jwk("rsa")})
    c.call("encode_sign/a payload that is a string", sign_obj, {"header": {"alg": "HS256"}, "payload": "text",
                                                                "key": oct_jwk})
    c.call("encode_sign/a key member of the wrong type", sign_obj, {"header": {"alg": "HS256"}, "payload": {},
                                                                    "key": {"kty": "oct", "k": 1}})
    c.add("encode_sign/round trip through decode_verify", """
token := io.jwt.encode_sign({"alg": "ES256"}, {"sub": "alice", "aud": "api", "exp": %d}, input.key)

p := io.jwt.decode_verify(token, {"cert": input.public, "aud": "api", "time": %d})
""" % (EXP, TIME), {"key": fx.private_jwk("p256"), "public": compact(fx.jwk("p256"))})
    c.add("encode_sign/numbers keep their text", 'p := io.jwt.encode_sign({"alg": "HS256"}, {"n": 1.50, "m": 1e3}, %s)'
          % json.dumps(oct_jwk))
    c.add("encode_sign/constant operands of the wrong type", 'p := io.jwt.encode_sign("x", {}, {})')

    # Policies as they use the builtins, and the difference strict builtin errors make.
    policy = '''
default allow := false

allow if {
    [valid, _, claims] := «io.jwt.decode_verify(input.token, {"secret": input.secret, "aud": "api", "time": %d})»
    valid
    claims.sub == "alice"
}
''' % TIME
    c.add("policies/allow with a valid token", policy, {"token": signed["HS256"], "secret": SECRET.decode()},
          query="data.test.allow = x")
    c.add("policies/deny with a wrong secret", policy, {"token": signed["HS256"], "secret": "nope"},
          query="data.test.allow = x")
    c.add("policies/strict: a malformed token is an error", policy, {"token": "garbage", "secret": "s"},
          query="data.test.allow = x")
    c.add("policies/lenient: a malformed token leaves the default", policy, {"token": "garbage", "secret": "s"},
          query="data.test.allow = x", lenient=True)
    c.add("policies/lenient: an empty secret leaves the default", policy, {"token": signed["HS256"], "secret": ""},
          query="data.test.allow = x", lenient=True)
    negated = '''
deny if not «io.jwt.verify_rs256(input.token, input.key)»
'''
    c.add("policies/strict: not over a failing verify is an error", negated, {"token": signed["RS256"], "key": "x"},
          query="data.test.deny = x")
    c.add("policies/lenient: not over a failing verify succeeds", negated, {"token": signed["RS256"], "key": "x"},
          query="data.test.deny = x", lenient=True)
    c.add("policies/not over a false verify", negated,
          {"token": signed["RS256"], "key": fx.pem("rsa-other")}, query="data.test.deny = x")
    decoded = '''
claims := «io.jwt.decode(input.token)»[1]

subject := claims.sub
'''
    c.add("policies/lenient: decode of a malformed token is undefined", decoded, {"token": "a.b"},
          query="data.test = x", lenient=True)
    c.add("policies/lenient: decode of a payload that is not JSON", decoded,
          {"token": hs_header + "." + b64("hello") + "."}, query="data.test = x", lenient=True)
    c.add("policies/lenient: verify with a malformed JWK", "p := «io.jwt.verify_es256(input.token, input.key)»",
          {"token": signed["ES256"], "key": '{"kty": "EC"}'}, lenient=True)
    c.add("policies/lenient: decode_verify with an expiry that is not a number",
          "p := «io.jwt.decode_verify(input.token, input.constraints)»",
          {"token": claims_token("exp a string", dict(CLAIMS, exp="2100")), "constraints": hs}, lenient=True)
    c.add("policies/decode_verify of an expired token answers false, not undefined",
          "p := io.jwt.decode_verify(input.token, input.constraints)",
          {"token": claims_token("expired in 2001", dict(CLAIMS, exp=NBF + 3600)), "constraints": hs})
    verified_claims = '''
jwks := `%s`

claims := payload if {
    %s := io.jwt.decode_verify(input.token, {"cert": jwks, "aud": "api", "time": %d})%s
}

is_alice if claims.sub == "alice"
'''
    c.add("policies/claims from a verified JWKS token",
          verified_claims % (jwks(fx.jwk("p256"), jwk_rsa), "[valid, _, payload]", TIME, "\n    valid"),
          {"token": signed["RS256"]}, query="data.test.is_alice = x")
    c.add("policies/a constant in an assignment pattern is a compile error",
          verified_claims % (jwks(fx.jwk("p256"), jwk_rsa), "[true, _, payload]", TIME, ""),
          {"token": signed["RS256"]}, query="data.test.is_alice = x")
    return c.cases


# -- the oracle ---------------------------------------------------------------------------------------------------

MARK_OPEN, MARK_CLOSE = "«", "»"


def strip_marks(text):
    return text.replace(MARK_OPEN, "").replace(MARK_CLOSE, "")


def undefined_call(text):
    """The module with the marked call replaced by a reference that is never defined."""
    start = text.index(MARK_OPEN)
    end = text.index(MARK_CLOSE)
    return text[:start] + "input.__no_such_member__" + text[end + 1:]


def main():
    sys.setrecursionlimit(20000)  # the deepest case nests 600 arrays
    fx = Fixtures("--new-keys" in sys.argv[1:])
    cases = build(fx)
    fx.save()

    strict = [dict(case, modules=[strip_marks(m) for m in case["modules"]]) for case in cases]
    lenient = [dict(case, modules=[undefined_call(m) for m in case["modules"]]) for case in cases if case.get("lenient")]
    answers = builtin_cases.evaluate(strict + lenient)
    strict_answers, lenient_answers = answers[:len(strict)], iter(answers[len(strict):])

    out = ["# Generated by scripts/make-token-cases.py from scripts/token-fixtures.json: every expectation is\n",
           "# the answer of OPA v1.20 (../shared/tools/opa-oracle). Edit the script and regenerate.\n",
           "cases:\n"]
    counts = {"strict": 0, "lenient": 0}
    for case, envelope in zip(strict, strict_answers):
        result = json.loads(envelope)
        if case.get("lenient"):
            error = (result.get("error") or {}).get("message", "")
            if "eval_builtin_error" not in error and "eval_type_error" not in error:
                raise SystemExit("%s: the module raises no builtin error, so strictness changes nothing: %s"
                                 % (case["note"], envelope))
            envelope = next(lenient_answers)
            counts["lenient"] += 1
        else:
            counts["strict"] += 1
        written = {k: v for k, v in case.items() if k in ("note", "modules", "input", "query")}
        part = case.get("error_part")
        chunk = []
        builtin_cases.write_case(written, envelope, chunk)
        if part:
            message = (result.get("error") or {}).get("message", "")
            if part not in message:
                raise SystemExit("%s: OPA's error does not contain %r: %s" % (case["note"], part, message))
            chunk = [line if not line.startswith("  want_error: ") else "  want_error: " + builtin_cases.quoted(part) + "\n"
                     for line in chunk]
        out.extend(chunk)
    with open(target, "w", encoding="utf-8") as f:
        f.write("".join(out))
    print("%s: %d cases (%d lenient)" % (os.path.relpath(target, root), len(cases), counts["lenient"]))


if __name__ == "__main__":
    main()
