"""tusk's AWS SigV4 signer against an independent implementation: botocore's
S3SigV4Auth (Debian's python3-botocore) signs the same requests, and the
Authorization headers must be equal. The requests are random but seeded:
unicode and reserved characters in keys, query strings (empty values, reserved
characters, several parameters), empty and non-empty bodies, unsigned
payloads, session tokens, regions."""

import datetime
import hashlib
import os
import random
import subprocess
import unittest

import sys

try:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
except ImportError:
    # CMake may have found a Python without botocore (a pyenv one, say);
    # Debian's python3-botocore (scripts/install-deps.sh) is for Debian's
    # Python: run this file there instead.
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        sys.exit(subprocess.run(["/usr/bin/python3", "-m", "unittest", "-v", "sigv4_botocore_test"],
                                cwd=os.path.dirname(os.path.abspath(__file__))).returncode)
    raise

from harness import BIN_DIR

SIGN = os.path.join(BIN_DIR, "tusk-sigv4-sign")

KEY_CHARS = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
             + list("-_.~/ +=&?%$@:,;!*'()") + ["é", "ü", "中", "文", "😀", "ß", "\u00a0"])
QUERY_CHARS = list("abcXYZ019-_.~ +=/%:@,é中")


class Config:
    """What botocore reads from request.context['client_config']."""

    def __init__(self, sign_payload):
        self.s3 = {"payload_signing_enabled": sign_payload}


def botocore_authorization(method, url, body, when, access, secret, token, region, unsigned):
    creds = botocore.credentials.Credentials(access, secret, token or None)
    auth = botocore.auth.S3SigV4Auth(creds, "s3", region)
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body)
    req.context["client_config"] = Config(not unsigned)
    # What add_auth does, with the time fixed instead of now.
    req.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    auth._modify_request_before_signing(req)
    canonical = auth.canonical_request(req)
    string_to_sign = auth.string_to_sign(req, canonical)
    signature = auth.signature(string_to_sign, req)
    auth._inject_signature_to_request(req, signature)
    return req.headers["Authorization"]


class SigV4BotocoreTest(unittest.TestCase):

    def test_random_requests_sign_like_botocore(self):
        rng = random.Random(20261121)
        cases = []
        for i in range(400):
            method = rng.choice(["GET", "PUT", "HEAD", "DELETE", "POST"])
            key = "".join(rng.choice(KEY_CHARS) for _ in range(rng.randint(1, 24)))
            key = key.lstrip("/") or "k"
            params = []
            for _ in range(rng.choice([0, 0, 1, 2, 3, 5])):
                name = "".join(rng.choice(QUERY_CHARS) for _ in range(rng.randint(1, 8)))
                value = "".join(rng.choice(QUERY_CHARS) for _ in range(rng.randint(0, 10)))
                if "=" in name or "&" in name or "&" in value:
                    continue
                params.append((name, value))
            # botocore sorts by name, then value; equal names would compare values
            names = [p[0] for p in params]
            if len(set(names)) != len(names):
                params = params[:1]
            body = b"" if method in ("GET", "HEAD", "DELETE") or rng.random() < 0.3 else \
                os.urandom(rng.randint(1, 3000))
            unsigned = method == "PUT" and rng.random() < 0.2
            payload = "UNSIGNED-PAYLOAD" if unsigned else hashlib.sha256(body).hexdigest()
            when = datetime.datetime(2020 + rng.randint(0, 6), rng.randint(1, 12), rng.randint(1, 28),
                                     rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
            token = "" if rng.random() < 0.6 else "tok/" + str(rng.randint(0, 10**9)) + "=="
            region = rng.choice(["us-east-1", "eu-west-3", "ap-southeast-2"])
            base = rng.choice(["http://127.0.0.1:4568/bucket", "https://b.s3.eu-west-3.amazonaws.com",
                               "http://localhost:9000/my-bucket"])
            access = "AKID" + str(i)
            secret = "secret/" + str(rng.random())
            query = "&".join("%s=%s" % p for p in params)
            epoch = int(when.replace(tzinfo=datetime.timezone.utc).timestamp())
            cases.append((method, base, key, query, epoch, payload, access, secret, token, region,
                          body, when, unsigned))
        lines = "".join("\t".join(str(x) for x in c[:10]) + "\n" for c in cases)
        out = subprocess.run([SIGN], input=lines.encode("utf-8"), capture_output=True,
                             check=True, timeout=60).stdout.decode("utf-8").splitlines()
        self.assertEqual(len(out), len(cases))
        mismatches = []
        for c, line in zip(cases, out):
            self.assertFalse(line.startswith("error"), (c[:4], line))
            url, ours = line.split("\t")
            theirs = botocore_authorization(c[0], url, c[10], c[11], c[6], c[7], c[8], c[9], c[12])
            if ours != theirs:
                mismatches.append((c[0], url, ours, theirs))
        self.assertEqual(mismatches, [], "%d of %d differ; first: %r" % (
            len(mismatches), len(cases), mismatches[:1]))


if __name__ == "__main__":
    unittest.main()
