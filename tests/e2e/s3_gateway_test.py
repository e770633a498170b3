"""The S3 gateway (tuskd --s3-listen) against real S3 clients from Debian:
awscli, boto3, s3cmd and rclone; and hand-made requests for what those
clients cannot send (aws-chunked bodies with trailers, hostile keys,
truncated bodies, malformed XML)."""

import base64
import binascii
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from harness import TuskTestCase, read_tree, start_tuskd

REGION = "us-east-1"


def s3_port(tmp):
    with open(os.path.join(tmp, "s3port")) as f:
        return int(f.read().strip())


class Raw:
    """Requests exactly as written (no client library in between)."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=b"", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, dict(r.getheaders()), data


def error_code(body):
    text = body.decode(errors="replace")
    start = text.find("<Code>")
    return text[start + 6:text.find("</Code>")] if start >= 0 else ""


def chunked_body(data, chunk_size, trailer=None, signer=None):
    """An aws-chunked body; `signer(chunk)` gives each chunk's signature."""
    out = b""
    pieces = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for p in pieces:
        ext = (";chunk-signature=" + signer(p)) if signer else ""
        out += ("%x%s\r\n" % (len(p), ext)).encode() + p
        if p or not trailer:
            out += b"\r\n"
    if trailer:
        for k, v in trailer.items():
            out += ("%s:%s\r\n" % (k, v)).encode()
        out += b"\r\n"
    return out


def crc32_b64(data):
    return base64.b64encode(binascii.crc32(data).to_bytes(4, "big")).decode()


class GatewayTestCase(TuskTestCase):
    auth = False

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        args = ["--s3-listen", "127.0.0.1:0", "--s3-port-file", os.path.join(cls.tmp, "s3port"),
                "--http-listen", "127.0.0.1:0", "--http-port-file",
                os.path.join(cls.tmp, "httpport")]
        cls.key = cls.secret = "anything"
        if cls.auth:
            root_file = os.path.join(cls.tmp, "root.token")
            args += ["--auth", "--root-token-file", root_file]
        cls.server, cls.s3 = start_tuskd(cls.tmp, args=args)
        if cls.auth:
            with open(root_file) as f:
                cls.key = cls.secret = f.read().strip()
            cls.tusk_env = {"TUSK_TOKEN": cls.key}
        cls.port = s3_port(cls.tmp)
        cls.endpoint = "http://127.0.0.1:%d" % cls.port
        cls.raw = Raw(cls.port)

    def metrics(self):
        from metrics_test import fetch, parse
        with open(os.path.join(self.tmp, "httpport")) as f:
            status, text = fetch(int(f.read().strip()), "/metrics")
        self.assertEqual(status, 200)
        return text, parse(text)

    def aws(self, *args, check=True, key=None, secret=None):
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": key or self.key,
                    "AWS_SECRET_ACCESS_KEY": secret or self.secret,
                    "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null",
                    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PAGER": ""})
        cmd = ["aws", "--endpoint-url", self.endpoint] + [str(a) for a in args]
        if args[0] == "s3api":
            cmd += ["--output", "json"]
        elif args[1] in ("cp", "sync", "mv"):
            cmd.append("--no-progress")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        if check and p.returncode != 0:
            self.fail("%s: %s\n%s\ntuskd log:\n%s" % (" ".join(cmd), p.stdout, p.stderr,
                                                       self.server.log()))
        return p

    def s3api(self, *args):
        out = self.aws("s3api", *args).stdout
        return json.loads(out) if out.strip() else {}

    def s3api_fails(self, code, *args):
        p = self.aws("s3api", *args, check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn(code, p.stderr)
        return p

    def boto(self, key=None, secret=None):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=key or self.key,
                            aws_secret_access_key=secret or self.secret,
                            config=Config(s3={"addressing_style": "path"},
                                          signature_version="s3v4",
                                          retries={"max_attempts": 1}))

    def commits(self, repo):
        return self.tusk("list", "commit", repo + "@master", "--json").json_lines()



class AwsCliTest(GatewayTestCase):
    def test_cp_sync_ls_rm_and_time_travel(self):
        self.aws("s3", "mb", "s3://sales")
        self.assertIn("sales", self.aws("s3", "ls").stdout)
        src = self.path("src")
        files = {"orders/2026.csv": b"id,amount\n1,10\n", "orders/2025.csv": b"id,amount\n0,5\n",
                 "readme.txt": b"sales data\n", "deep/a/b/c.bin": os.urandom(3000),
                 "big.bin": os.urandom(12 << 20)}  # multipart (above awscli's 8 MiB)
        for rel, data in files.items():
            self.write(os.path.join("src", rel), data)
        self.aws("s3", "sync", src, "s3://sales/master/")
        listing = self.aws("s3", "ls", "--recursive", "s3://sales/master/").stdout
        for rel, data in files.items():
            self.assertIn("%d master/%s" % (len(data), rel), " ".join(listing.split()))
        # The files are in the repo, for tusk too.
        got = self.tusk("get", "file", "sales@master:/orders/2026.csv").stdout
        self.assertEqual(got, files["orders/2026.csv"])
        # Down again, compared byte for byte.
        down = self.path("down")
        self.aws("s3", "sync", "s3://sales/master/", down)
        self.assertEqual(read_tree(down), files)
        # A delimiter listing: directories as prefixes.
        top = self.aws("s3", "ls", "s3://sales/master/").stdout
        self.assertIn("PRE orders/", top)
        self.assertIn("readme.txt", top)
        # Each write was a commit; the old state is a ref away.
        before = self.commits("sales")[0]["id"]
        self.put_stdin("s3://sales/master/readme.txt", b"v2\n")
        self.aws("s3", "rm", "s3://sales/master/orders/2025.csv")
        self.assertEqual(self.aws("s3", "cp", "s3://sales/master/readme.txt", "-").stdout, "v2\n")
        self.assertEqual(self.aws("s3", "cp", "s3://sales/master~2/readme.txt", "-").stdout,
                         "sales data\n")
        self.assertEqual(self.aws("s3", "cp", "s3://sales/%s/readme.txt" % before, "-").stdout,
                         "sales data\n")
        self.assertNotIn("2025.csv", self.aws("s3", "ls", "--recursive", "s3://sales/master/").stdout)
        self.assertIn("2025.csv", self.aws("s3", "ls", "--recursive", "s3://sales/master~1/").stdout)
        # The bucket's root lists branches.
        self.tusk("create", "branch", "sales@dev", "--head", "master")
        roots = self.aws("s3", "ls", "s3://sales/").stdout
        self.assertIn("PRE dev/", roots)
        self.assertIn("PRE master/", roots)

    def put_stdin(self, url, data):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.key, AWS_SECRET_ACCESS_KEY=self.secret,
                   AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null")
        p = subprocess.run(["aws", "--endpoint-url", self.endpoint, "s3", "cp", "-", url],
                           input=data, capture_output=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_ranges_conditions_versions_and_etags(self):
        self.tusk("create", "repo", "ver")
        body = self.write("v1", b"0123456789" * 100)
        put1 = self.s3api("put-object", "--bucket", "ver", "--key", "master/f.txt", "--body", body)
        etag = put1["ETag"]
        v1 = put1["VersionId"]
        self.assertEqual(len(v1), 32)
        head = self.s3api("head-object", "--bucket", "ver", "--key", "master/f.txt")
        self.assertEqual(head["ContentLength"], 1000)
        self.assertEqual(head["ETag"], etag)
        # The ETag is the content hash (tusk's own hash of the file) and
        # the chunk count.
        info = self.tusk("inspect", "file", "ver@master:/f.txt", "--json").json()
        self.assertEqual(etag.strip('"'), "%s-%d" % (info["hash"], info.get("chunk_count", 0)))
        out = self.path("range.out")
        r = self.s3api("get-object", "--bucket", "ver", "--key", "master/f.txt", "--range",
                       "bytes=5-14", out)
        self.assertEqual(r["ContentRange"], "bytes 5-14/1000")
        self.assertEqual(open(out, "rb").read(), b"5678901234")
        self.s3api("get-object", "--bucket", "ver", "--key", "master/f.txt", "--range",
                   "bytes=-3", out)
        self.assertEqual(open(out, "rb").read(), b"789")
        self.s3api_fails("InvalidRange", "get-object", "--bucket", "ver", "--key", "master/f.txt",
                         "--range", "bytes=1000-", out)
        self.s3api_fails("304", "head-object", "--bucket", "ver", "--key", "master/f.txt",
                         "--if-none-match", etag)
        self.s3api_fails("412", "head-object", "--bucket", "ver", "--key", "master/f.txt",
                         "--if-match", '"0000"')
        self.s3api_fails("304", "head-object", "--bucket", "ver", "--key", "master/f.txt",
                         "--if-modified-since", "2999-01-01T00:00:00Z")
        self.s3api("head-object", "--bucket", "ver", "--key", "master/f.txt", "--if-modified-since",
                   "2001-01-01T00:00:00Z")
        # A second version, and the same bytes again: the ETag comes back.
        body2 = self.write("v2", b"changed")
        v2 = self.s3api("put-object", "--bucket", "ver", "--key", "master/f.txt", "--body",
                        body2)["VersionId"]
        v3put = self.s3api("put-object", "--bucket", "ver", "--key", "master/f.txt", "--body", body)
        self.assertEqual(v3put["ETag"], etag)
        self.s3api("get-object", "--bucket", "ver", "--key", "master/f.txt", "--version-id", v2, out)
        self.assertEqual(open(out, "rb").read(), b"changed")
        self.s3api("delete-object", "--bucket", "ver", "--key", "master/f.txt")
        versions = self.s3api("list-object-versions", "--bucket", "ver", "--prefix", "master/")
        ids = [v["VersionId"] for v in versions["Versions"]]
        self.assertEqual(ids, [v3put["VersionId"], v2, v1])
        self.assertFalse(any(v["IsLatest"] for v in versions["Versions"]))
        self.assertEqual(len(versions["DeleteMarkers"]), 1)
        self.assertTrue(versions["DeleteMarkers"][0]["IsLatest"])
        self.s3api_fails("404", "head-object", "--bucket", "ver", "--key", "master/f.txt")
        self.assertEqual(self.s3api("get-bucket-versioning", "--bucket", "ver")["Status"], "Enabled")

    def test_multipart_upload(self):
        self.tusk("create", "repo", "mp")
        up = self.s3api("create-multipart-upload", "--bucket", "mp", "--key", "master/obj.bin")
        uid = up["UploadId"]
        p1 = os.urandom(5 << 20)
        p2 = b"tail bytes"
        e1 = self.s3api("upload-part", "--bucket", "mp", "--key", "master/obj.bin", "--upload-id",
                        uid, "--part-number", 1, "--body", self.write("p1", p1))["ETag"]
        e2 = self.s3api("upload-part", "--bucket", "mp", "--key", "master/obj.bin", "--upload-id",
                        uid, "--part-number", 2, "--body", self.write("p2", p2))["ETag"]
        parts = self.s3api("list-parts", "--bucket", "mp", "--key", "master/obj.bin",
                           "--upload-id", uid)["Parts"]
        self.assertEqual([(p["PartNumber"], p["Size"]) for p in parts], [(1, 5 << 20), (2, 10)])
        uploads = self.s3api("list-multipart-uploads", "--bucket", "mp")["Uploads"]
        self.assertEqual([u["UploadId"] for u in uploads], [uid])
        # Nothing is visible before Complete.
        self.s3api_fails("404", "head-object", "--bucket", "mp", "--key", "master/obj.bin")
        bad = json.dumps({"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}]})
        self.s3api_fails("InvalidPart", "complete-multipart-upload", "--bucket", "mp", "--key",
                         "master/obj.bin", "--upload-id", uid, "--multipart-upload", bad)
        small = json.dumps({"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
        self.s3api_fails("InvalidPartOrder", "complete-multipart-upload", "--bucket", "mp", "--key",
                         "master/obj.bin", "--upload-id", uid, "--multipart-upload", small)
        good = json.dumps({"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
        done = self.s3api("complete-multipart-upload", "--bucket", "mp", "--key", "master/obj.bin",
                          "--upload-id", uid, "--multipart-upload", good)
        self.assertEqual(len(done["VersionId"]), 32)
        out = self.path("mp.out")
        self.s3api("get-object", "--bucket", "mp", "--key", "master/obj.bin", out)
        self.assertEqual(open(out, "rb").read(), p1 + p2)
        self.assertEqual(self.s3api("list-multipart-uploads", "--bucket", "mp").get("Uploads", []),
                         [])
        # A part below 5 MiB that is not the last is refused; abort ends an upload.
        uid2 = self.s3api("create-multipart-upload", "--bucket", "mp", "--key", "master/b")["UploadId"]
        f1 = self.s3api("upload-part", "--bucket", "mp", "--key", "master/b", "--upload-id", uid2,
                        "--part-number", 1, "--body", self.write("s1", b"small"))["ETag"]
        f2 = self.s3api("upload-part", "--bucket", "mp", "--key", "master/b", "--upload-id", uid2,
                        "--part-number", 2, "--body", self.write("s2", b"small"))["ETag"]
        self.s3api_fails("EntityTooSmall", "complete-multipart-upload", "--bucket", "mp", "--key",
                         "master/b", "--upload-id", uid2, "--multipart-upload",
                         json.dumps({"Parts": [{"PartNumber": 1, "ETag": f1},
                                               {"PartNumber": 2, "ETag": f2}]}))
        self.s3api("abort-multipart-upload", "--bucket", "mp", "--key", "master/b", "--upload-id",
                   uid2)
        self.s3api_fails("NoSuchUpload", "list-parts", "--bucket", "mp", "--key", "master/b",
                         "--upload-id", uid2)
        # Parts survive a restart of tuskd.
        uid3 = self.s3api("create-multipart-upload", "--bucket", "mp", "--key", "master/c")["UploadId"]
        g1 = self.s3api("upload-part", "--bucket", "mp", "--key", "master/c", "--upload-id", uid3,
                        "--part-number", 1, "--body", self.write("g1", b"kept"))["ETag"]
        self.server.stop()
        self.server.start()
        type(self).port = s3_port(self.tmp)
        type(self).endpoint = "http://127.0.0.1:%d" % self.port
        type(self).raw = Raw(self.port)
        self.s3api("complete-multipart-upload", "--bucket", "mp", "--key", "master/c",
                   "--upload-id", uid3, "--multipart-upload",
                   json.dumps({"Parts": [{"PartNumber": 1, "ETag": g1}]}))
        self.assertEqual(self.aws("s3", "cp", "s3://mp/master/c", "-").stdout, "kept")
        # Server-side copies of a big object: awscli copies above 8 MiB with
        # UploadPartCopy, within a repo and across repos.
        big = os.urandom(20 << 20)
        self.aws("s3", "cp", self.write("bigsrc", big), "s3://mp/master/src.bin")
        self.aws("s3", "cp", "s3://mp/master/src.bin", "s3://mp/master/copy.bin")
        self.tusk("create", "repo", "mp2")
        self.aws("s3", "cp", "s3://mp/master/src.bin", "s3://mp2/master/x.bin")
        for url in ("s3://mp/master/copy.bin", "s3://mp2/master/x.bin"):
            self.aws("s3", "cp", url, self.path("copy.out"))
            self.assertEqual(open(self.path("copy.out"), "rb").read(), big, url)
        uid4 = self.s3api("create-multipart-upload", "--bucket", "mp", "--key",
                          "master/ranged")["UploadId"]
        etags = []
        for n, rng in ((1, "bytes=0-5242879"), (2, "bytes=5242880-5242889")):
            r = self.s3api("upload-part-copy", "--bucket", "mp", "--key", "master/ranged",
                           "--upload-id", uid4, "--part-number", n, "--copy-source",
                           "mp/master/src.bin", "--copy-source-range", rng)
            etags.append(r["CopyPartResult"]["ETag"])
        self.s3api_fails("InvalidRange", "upload-part-copy", "--bucket", "mp", "--key",
                         "master/ranged", "--upload-id", uid4, "--part-number", 3,
                         "--copy-source", "mp/master/src.bin", "--copy-source-range",
                         "bytes=0-99999999")
        self.s3api("complete-multipart-upload", "--bucket", "mp", "--key", "master/ranged",
                   "--upload-id", uid4, "--multipart-upload", json.dumps(
                       {"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]}))
        self.s3api("get-object", "--bucket", "mp", "--key", "master/ranged", out)
        self.assertEqual(open(out, "rb").read(), big[:5242890])

    def test_metrics(self):
        from metrics_test import PROMTOOL

        def value(samples, name, **labels):
            total = 0.0
            for key, v in samples.items():
                base, _, rest = key.partition("{")
                have = dict(re.findall(r'(\w+)="([^"]*)"', rest))
                if base == name and all(have.get(k) == w for k, w in labels.items()):
                    total += v
            return total

        self.tusk("create", "repo", "met")
        self.aws("s3", "cp", self.write("m", b"x" * 5000), "s3://met/master/m")
        self.aws("s3", "cp", "s3://met/master/m", "-")
        self.aws("s3", "cp", "s3://met/master/nothing", "-", check=False)
        text, samples = self.metrics()
        self.assertGreaterEqual(value(samples, "tusk_s3_requests_total", op="PutObject",
                                      code="200"), 1)
        self.assertGreaterEqual(value(samples, "tusk_s3_requests_total", op="GetObject",
                                      code="200"), 1)
        self.assertGreaterEqual(value(samples, "tusk_s3_requests_total", code="404"), 1)
        self.assertGreaterEqual(value(samples, "tusk_s3_received_bytes_total"), 5000)
        self.assertGreaterEqual(value(samples, "tusk_s3_sent_bytes_total"), 5000)
        self.assertIn("tusk_s3_request_duration_seconds_bucket", text)
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())

    def test_writes_join_an_open_commit(self):
        self.tusk("create", "repo", "batch")
        self.aws("s3", "cp", self.write("x0", b"zero"), "s3://batch/master/x0")
        n_before = len(self.commits("batch"))
        self.tusk("start", "commit", "batch@master")
        for i in range(1, 4):
            self.aws("s3", "cp", self.write("x%d" % i, b"n%d" % i), "s3://batch/master/x%d" % i)
        # Through S3 the branch shows its open commit (read your writes);
        # its head has not moved.
        self.assertIn("x2", self.aws("s3", "ls", "s3://batch/master/").stdout)
        self.assertEqual(self.aws("s3", "cp", "s3://batch/master/x2", "-").stdout, "n2")
        self.assertNotIn("/x2", [f["path"] for f in self.tusk(
            "list", "file", "batch@master:/", "--json").json_lines()])
        # A delete in the open commit: of a staged file, and of a committed one.
        self.aws("s3", "rm", "s3://batch/master/x3")
        self.aws("s3", "rm", "s3://batch/master/x0")
        listing = self.aws("s3", "ls", "s3://batch/master/").stdout
        self.assertNotIn("x3", listing)
        self.assertNotIn("x0", listing)
        self.aws("s3", "cp", self.write("x0b", b"zero again"), "s3://batch/master/x0")
        self.tusk("finish", "commit", "batch@master")
        commits = self.commits("batch")
        self.assertEqual(len(commits), n_before + 1)
        listing = self.aws("s3", "ls", "s3://batch/master/").stdout
        for name in ("x0", "x1", "x2"):
            self.assertIn(name, listing)
        self.assertNotIn("x3", listing)
        self.assertEqual(self.aws("s3", "cp", "s3://batch/master/x0", "-").stdout, "zero again")

    def test_diff_object_and_pachyderm_buckets(self):
        self.tusk("create", "repo", "dif")
        self.aws("s3", "cp", self.write("a", b"A"), "s3://dif/master/a.txt")
        self.aws("s3", "cp", self.write("b", b"B"), "s3://dif/master/b.txt")
        self.aws("s3", "cp", self.write("a2", b"AA"), "s3://dif/master/a.txt")
        self.aws("s3", "rm", "s3://dif/master/b.txt")
        lines = self.aws("s3", "cp", "s3://dif/master/.tusk/diff/master~3.jsonl", "-").stdout
        changes = {j["path"]: j for j in map(json.loads, lines.splitlines())}
        self.assertEqual(changes["/a.txt"]["change"], "modified")
        self.assertEqual(changes["/a.txt"]["new_size"], 2)
        self.assertEqual(changes["/a.txt"]["old_size"], 1)
        self.assertNotIn("/b.txt", changes)  # added and deleted within the span
        lines = self.aws("s3", "cp", "s3://dif/master/.tusk/diff/master~1.jsonl", "-").stdout
        self.assertEqual(json.loads(lines)["change"], "deleted")
        # Pachyderm style: bucket BRANCH.REPO, key PATH; and COMMIT.BRANCH.REPO.
        self.assertEqual(self.aws("s3", "cp", "s3://master.dif/a.txt", "-").stdout, "AA")
        head = self.commits("dif")[0]["id"]
        parent = self.commits("dif")[1]["id"]
        self.assertEqual(self.aws("s3", "cp", "s3://%s.master.dif/b.txt" % parent, "-").stdout, "B")
        self.assertEqual(self.aws("s3", "cp", "s3://%s.master.dif/a.txt" % head, "-").stdout, "AA")
        self.aws("s3", "cp", self.write("c", b"C"), "s3://master.dif/c.txt")
        self.assertIn("c.txt", self.aws("s3", "ls", "s3://master.dif/").stdout)
        p = self.aws("s3", "cp", self.write("d", b"D"), "s3://%s.master.dif/d.txt" % head,
                     check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("MethodNotAllowed", p.stderr)

    def test_many_objects_list_in_pages(self):
        self.tusk("create", "repo", "many")
        src = self.path("many")
        for i in range(1203):
            self.write(os.path.join("many", "d%d" % (i % 3), "f%04d" % i), b"%d" % i)
        self.tusk("put", "file", "many@master:/", "-f", src, "-r")
        c = self.boto()
        keys = []
        pages = 0
        for page in c.get_paginator("list_objects_v2").paginate(
                Bucket="many", Prefix="master/", PaginationConfig={"PageSize": 250}):
            keys += [o["Key"] for o in page.get("Contents", [])]
            pages += 1
        v1_keys = []
        for page in c.get_paginator("list_objects").paginate(
                Bucket="many", Prefix="master/", PaginationConfig={"PageSize": 300}):
            v1_keys += [o["Key"] for o in page.get("Contents", [])]
        self.assertEqual(v1_keys, keys)
        self.assertEqual(len(keys), 1203)
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(pages, 5)
        v1 = self.s3api("list-objects", "--bucket", "many", "--prefix", "master/d1/",
                        "--delimiter", "/")
        self.assertEqual(len(v1["Contents"]), 401)
        dirs = self.s3api("list-objects-v2", "--bucket", "many", "--prefix", "master/",
                          "--delimiter", "/")
        self.assertEqual([p["Prefix"] for p in dirs["CommonPrefixes"]],
                         ["master/d0/", "master/d1/", "master/d2/"])
        # Keys sort as S3 sorts them: "a.txt" before "a/...".
        self.aws("s3", "cp", self.write("s1", b"1"), "s3://many/master/a/x")
        self.aws("s3", "cp", self.write("s2", b"2"), "s3://many/master/a.txt")
        self.aws("s3", "cp", self.write("s3", b"3"), "s3://many/master/a-b")
        page = self.s3api("list-objects-v2", "--bucket", "many", "--prefix", "master/a")
        self.assertEqual([c["Key"] for c in page["Contents"]],
                         ["master/a-b", "master/a.txt", "master/a/x"])


class EnginePatternsTest(GatewayTestCase):
    """The requests DuckDB, Spark (s3a), Trino and pandas make, replayed with
    boto3: those engines cannot be installed here."""

    def test_a_spark_job_writes_and_duckdb_reads(self):
        import botocore.exceptions
        self.tusk("create", "repo", "lake")
        c = self.boto()
        n_before = len(self.commits("lake"))
        # The job's output lands as one commit: it runs inside an open commit.
        self.tusk("start", "commit", "lake@master")
        # s3a: mkdirs writes an empty marker; tasks write under _temporary.
        c.put_object(Bucket="lake", Key="master/events/_temporary/", Body=b"")
        parts = {}
        for i in range(3):
            data = os.urandom(50000 + i) + b"PAR1"
            parts["part-%05d.parquet" % i] = data
            c.put_object(Bucket="lake", Key="master/events/_temporary/0/task_%d/part-%05d.parquet"
                         % (i, i), Body=data)
        # The committer renames: copy, then delete the task files.
        for i in range(3):
            name = "part-%05d.parquet" % i
            c.copy_object(Bucket="lake", Key="master/events/" + name, CopySource={
                "Bucket": "lake", "Key": "master/events/_temporary/0/task_%d/%s" % (i, name)})
        tmp = c.list_objects_v2(Bucket="lake", Prefix="master/events/_temporary/")["Contents"]
        c.delete_objects(Bucket="lake", Delete={"Objects": [{"Key": o["Key"]} for o in tmp]})
        c.put_object(Bucket="lake", Key="master/events/_SUCCESS", Body=b"")
        self.tusk("finish", "commit", "lake@master")
        self.assertEqual(len(self.commits("lake")), n_before + 1)
        # s3a getFileStatus of the directory: HEAD fails, a listing of one key says "directory".
        with self.assertRaises(botocore.exceptions.ClientError):
            c.head_object(Bucket="lake", Key="master/events")
        probe = c.list_objects_v2(Bucket="lake", Prefix="master/events/", Delimiter="/", MaxKeys=1)
        self.assertEqual(probe["KeyCount"], 1)
        self.assertTrue(probe["IsTruncated"])
        listing = c.list_objects_v2(Bucket="lake", Prefix="master/events/")["Contents"]
        self.assertEqual(sorted(o["Key"][len("master/events/"):] for o in listing),
                         sorted(list(parts) + ["_SUCCESS"]))
        # DuckDB's read_parquet: HEAD for the size, the footer from the end, then column ranges.
        for name, data in parts.items():
            key = "master/events/" + name
            size = c.head_object(Bucket="lake", Key=key)["ContentLength"]
            self.assertEqual(size, len(data))
            tail = c.get_object(Bucket="lake", Key=key, Range="bytes=%d-%d" % (size - 8, size - 1))
            self.assertEqual(tail["Body"].read(), data[-8:])
            self.assertEqual(tail["ContentRange"], "bytes %d-%d/%d" % (size - 8, size - 1, size))
            mid = c.get_object(Bucket="lake", Key=key, Range="bytes=1000-40999")["Body"].read()
            self.assertEqual(mid, data[1000:41000])
        # Time travel in a query: the commit before the job has no events.
        old = c.list_objects_v2(Bucket="lake", Prefix="master~1/events/")
        self.assertEqual(old["KeyCount"], 0)


class BadInputTest(GatewayTestCase):
    def setUp(self):
        if not getattr(type(self), "made", False):
            self.tusk("create", "repo", "bad")
            self.raw.request("PUT", "/bad/master/keep.txt", b"keep")
            type(self).made = True

    def files(self):
        return sorted(f["path"] for f in
                      self.tusk("list", "file", "bad@master:/", "--json").json_lines())

    def test_hostile_keys_and_refs(self):
        for path, code in [("/bad/master/a/../b", "InvalidArgument"),
                           ("/bad/master/a%00b", "InvalidArgument"),
                           ("/bad/master/%FF%FE", "InvalidArgument"),
                           ("/Bad_Bucket!/master/x", "InvalidBucketName")]:
            status, _, body = self.raw.request("PUT", path, b"x")
            self.assertEqual(status, 400, (path, body))
            self.assertEqual(error_code(body), code, (path, body))
        head = self.commits("bad")[0]["id"]
        for ref in (head, "master~1", "master^"):
            status, _, body = self.raw.request("PUT", "/bad/%s/x" % ref, b"x")
            self.assertEqual((status, error_code(body)), (405, "MethodNotAllowed"), body)
        status, _, body = self.raw.request("GET", "/nosuch/master/x")
        self.assertEqual((status, error_code(body)), (404, "NoSuchBucket"))
        status, _, body = self.raw.request("GET", "/bad/master/nothing")
        self.assertEqual((status, error_code(body)), (404, "NoSuchKey"))
        self.assertIn(b"<RequestId>", body)
        self.assertNotIn("/b", self.files())
        self.assertNotIn("/x", self.files())

    def test_malformed_xml_and_truncated_bodies(self):
        for doc in [b"<Delete><Object><Key>master/keep.txt</Key>", b"not xml",
                    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><Delete/>',
                    b"<Delete></Delete>"]:
            status, _, body = self.raw.request("POST", "/bad?delete", doc)
            self.assertEqual((status, error_code(body)), (400, "MalformedXML"), (doc, body))
        # A body cut short: the connection ends before Content-Length bytes.
        s = socket.create_connection(("127.0.0.1", self.port))
        s.sendall(b"PUT /bad/master/cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                  + b"y" * 5000)
        s.close()
        # A put-if-absent on an existing key.
        status, _, body = self.raw.request("PUT", "/bad/master/keep.txt", b"new",
                                           {"If-None-Match": "*"})
        self.assertEqual((status, error_code(body)), (412, "PreconditionFailed"), body)
        status, _, _ = self.raw.request("PUT", "/bad/master/fresh.txt", b"new",
                                        {"If-None-Match": "*"})
        self.assertEqual(status, 200)
        # A wrong Content-MD5 and a wrong signed payload hash (auth off: the
        # hash is not checked, the MD5 is).
        status, _, body = self.raw.request("PUT", "/bad/master/md5.txt", b"abc",
                                           {"Content-MD5": base64.b64encode(b"0" * 16).decode()})
        self.assertEqual((status, error_code(body)), (400, "BadDigest"), body)
        time.sleep(0.5)
        files = self.files()
        self.assertIn("/fresh.txt", files)
        self.assertNotIn("/cut.bin", files)
        self.assertNotIn("/md5.txt", files)
        _, _, body = self.raw.request("GET", "/bad/master/keep.txt")
        self.assertEqual(body, b"keep")

    def test_aws_chunked_with_trailing_checksum(self):
        data = os.urandom(200000)
        headers = {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                   "Content-Encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
                   "x-amz-decoded-content-length": str(len(data))}
        body = chunked_body(data, 65536, trailer={"x-amz-checksum-crc32": crc32_b64(data)})
        status, h, resp = self.raw.request("PUT", "/bad/master/chunked.bin", body, headers)
        self.assertEqual(status, 200, resp)
        _, _, got = self.raw.request("GET", "/bad/master/chunked.bin")
        self.assertEqual(got, data)  # never the framing
        # A wrong trailer checksum: refused, nothing written.
        body = chunked_body(data, 65536, trailer={"x-amz-checksum-crc32": crc32_b64(b"other")})
        status, _, resp = self.raw.request("PUT", "/bad/master/chunked2.bin", body, headers)
        self.assertEqual((status, error_code(resp)), (400, "BadDigest"), resp)
        # Framing cut off before the last chunk.
        body = chunked_body(data, 65536)[:100000]
        h2 = dict(headers)
        del h2["x-amz-trailer"]
        h2["x-amz-content-sha256"] = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        status, _, resp = self.raw.request("PUT", "/bad/master/chunked3.bin", body, h2)
        self.assertEqual((status, error_code(resp)), (400, "IncompleteBody"), resp)
        self.assertNotIn("/chunked2.bin", self.files())
        self.assertNotIn("/chunked3.bin", self.files())

    def test_server_keeps_serving(self):
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.port))
            s.sendall(b"GARBAGE \x00\x01\x02 NOT HTTP\r\n\r\n")
            s.close()
        status, _, _ = self.raw.request("GET", "/bad/master/keep.txt")
        self.assertEqual(status, 200)


class CrashTest(GatewayTestCase):
    """Writers race through the gateway while tuskd is killed; every write it
    acknowledged is there after the restart, a GC and an index rebuild, and
    no object is ever partial."""

    def restart(self, *once):
        self.server.start(once=once)
        type(self).port = s3_port(self.tmp)
        type(self).endpoint = "http://127.0.0.1:%d" % self.port
        type(self).raw = Raw(self.port)

    def test_kill9_during_concurrent_puts_and_multipart(self):
        import random
        import threading
        self.tusk("create", "repo", "crash")
        acked = {}
        sent = {}
        lock = threading.Lock()
        stop = threading.Event()
        port = self.port

        def writer(t):
            rnd = random.Random(t)
            n = 0
            while not stop.is_set():
                key = "master/w%d/obj%04d" % (t, n)
                data = rnd.randbytes(rnd.randint(1, 300000))
                with lock:
                    sent[key] = hashlib.sha256(data).hexdigest()
                try:
                    status, _, _ = Raw(port).request("PUT", "/crash/" + key, data)
                except OSError:
                    return
                if status == 200:
                    with lock:
                        acked[key] = sent[key]
                n += 1

        def multipart(t):
            rnd = random.Random(100 + t)
            n = 0
            while not stop.is_set():
                key = "master/mp%d/obj%03d" % (t, n)
                parts = [rnd.randbytes(5 << 20), rnd.randbytes(rnd.randint(1, 100000))]
                with lock:
                    sent[key] = hashlib.sha256(b"".join(parts)).hexdigest()
                try:
                    raw = Raw(port)
                    st, _, body = raw.request("POST", "/crash/%s?uploads" % key)
                    if st != 200:
                        return
                    uid = body.decode().split("<UploadId>")[1].split("<")[0]
                    etags = []
                    for i, p in enumerate(parts, 1):
                        st, h, _ = raw.request("PUT", "/crash/%s?partNumber=%d&uploadId=%s" %
                                               (key, i, uid), p)
                        if st != 200:
                            return
                        etags.append(h["ETag"])
                    doc = "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(
                        "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % (i, e)
                        for i, e in enumerate(etags, 1))
                    st, _, _ = raw.request("POST", "/crash/%s?uploadId=%s" % (key, uid),
                                           doc.encode())
                except OSError:
                    return
                if st == 200:
                    with lock:
                        acked[key] = sent[key]
                n += 1

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
        threads += [threading.Thread(target=multipart, args=(t,)) for t in range(2)]
        for th in threads:
            th.start()
        deadline = time.time() + 30
        while time.time() < deadline and (
                len(acked) < 80 or not any(k.startswith("master/mp") for k in acked)):
            time.sleep(0.05)
        self.server.kill9()
        stop.set()
        for th in threads:
            th.join(timeout=60)
        self.assertGreater(len(acked), 20)
        self.assertTrue(any(k.startswith("master/mp") for k in acked), "no multipart completed")
        print("kill -9 with %d writes acknowledged, %d sent" % (len(acked), len(sent)))

        def check(where):
            for key, digest in sent.items():
                status, _, body = self.raw.request("GET", "/crash/" + key)
                if key in acked:
                    self.assertEqual(status, 200, "%s: acknowledged %s lost" % (where, key))
                if status == 200:
                    # Whole or absent: never a prefix or a mix.
                    self.assertEqual(hashlib.sha256(body).hexdigest(), digest, (where, key))

        self.restart()
        check("after kill -9")
        self.tusk("gc", "--grace", "0s")
        check("after gc")
        self.server.stop()
        self.restart("--rebuild-index")
        check("after an index rebuild")
        self.tusk("fsck")

    def test_parts_survive_restart_gc_and_rebuild(self):
        self.tusk("create", "repo", "parts")
        st, _, body = self.raw.request("POST", "/parts/master/big.bin?uploads")
        uid = body.decode().split("<UploadId>")[1].split("<")[0]
        p1 = os.urandom(5 << 20)
        p2 = os.urandom(1000)
        etags = []
        for i, p in enumerate([p1, p2], 1):
            st, h, _ = self.raw.request("PUT", "/parts/master/big.bin?partNumber=%d&uploadId=%s" %
                                        (i, uid), p)
            self.assertEqual(st, 200)
            etags.append(h["ETag"])
        self.server.kill9()
        self.restart()
        self.tusk("gc", "--grace", "0s")
        self.server.stop()
        self.restart("--rebuild-index")
        self.tusk("gc", "--grace", "0s")
        doc = "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(
            "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % (i, e)
            for i, e in enumerate(etags, 1))
        st, _, body = self.raw.request("POST", "/parts/master/big.bin?uploadId=" + uid,
                                       doc.encode())
        self.assertEqual(st, 200, body)
        st, _, body = self.raw.request("GET", "/parts/master/big.bin")
        self.assertEqual(body, p1 + p2)
        # Ended: its parts are garbage now, and GC takes them.
        self.tusk("gc", "--grace", "0s")
        st, _, body = self.raw.request("GET", "/parts/master/big.bin")
        self.assertEqual(body, p1 + p2)
        self.tusk("fsck")


class ClientsTest(GatewayTestCase):
    """boto3, s3cmd and rclone against the gateway, with authentication off."""

    def test_boto3(self):
        self.tusk("create", "repo", "py")
        c = self.boto()
        c.put_object(Bucket="py", Key="master/df.csv", Body=b"a,b\n1,2\n")
        self.assertEqual(c.get_object(Bucket="py", Key="master/df.csv")["Body"].read(),
                         b"a,b\n1,2\n")
        pages = c.get_paginator("list_objects_v2").paginate(Bucket="py", Prefix="master/")
        self.assertEqual([o["Key"] for p in pages for o in p.get("Contents", [])],
                         ["master/df.csv"])
        c.copy_object(Bucket="py", Key="master/copy.csv",
                      CopySource={"Bucket": "py", "Key": "master/df.csv"})
        self.tusk("create", "repo", "py2")
        c.copy_object(Bucket="py2", Key="master/x.csv",
                      CopySource={"Bucket": "py", "Key": "master/df.csv"})
        self.assertEqual(c.get_object(Bucket="py2", Key="master/x.csv")["Body"].read(),
                         b"a,b\n1,2\n")
        res = c.delete_objects(Bucket="py", Delete={"Objects": [{"Key": "master/df.csv"},
                                                                {"Key": "master/none"}]})
        self.assertEqual(sorted(d["Key"] for d in res["Deleted"]), ["master/df.csv", "master/none"])
        keys = [o["Key"] for o in c.list_objects_v2(Bucket="py", Prefix="master/")["Contents"]]
        self.assertEqual(keys, ["master/copy.csv"])
        # The upload_file transfer manager (multipart with threads).
        big = self.write("big", os.urandom(20 << 20))
        from boto3.s3.transfer import TransferConfig
        c.upload_file(big, "py", "master/big.bin",
                      Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20,
                                            max_concurrency=4))
        c.download_file("py", "master/big.bin", self.path("big.out"),
                        Config=TransferConfig(multipart_threshold=5 << 20,
                                              multipart_chunksize=5 << 20, max_concurrency=4))
        self.assertEqual(open(big, "rb").read(), open(self.path("big.out"), "rb").read())
        self.assertEqual(c.get_bucket_location(Bucket="py").get("LocationConstraint"), None)

    def test_s3cmd(self):
        if not shutil.which("s3cmd"):
            self.skipTest("s3cmd is not installed")
        self.tusk("create", "repo", "cmd")
        cfg = self.write("s3cfg", ("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = "
                                   "127.0.0.1:%d\nhost_bucket = 127.0.0.1:%d\nuse_https = False\n"
                                   "signature_v2 = False\n" % (self.key, self.secret, self.port,
                                                               self.port)).encode())

        def s3cmd(*args):
            p = subprocess.run(["s3cmd", "-c", cfg] + list(args), capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            return p.stdout

        s3cmd("put", self.write("sc.txt", b"from s3cmd"), "s3://cmd/master/sc.txt")
        self.assertIn("s3://cmd/master/sc.txt", s3cmd("ls", "--recursive", "s3://cmd/"))
        s3cmd("get", "--force", "s3://cmd/master/sc.txt", self.path("sc.out"))
        self.assertEqual(open(self.path("sc.out"), "rb").read(), b"from s3cmd")
        s3cmd("del", "s3://cmd/master/sc.txt")
        self.assertNotIn("sc.txt", s3cmd("ls", "--recursive", "s3://cmd/"))

    def test_rclone_sync_both_ways(self):
        if not shutil.which("rclone"):
            self.skipTest("rclone is not installed")
        self.tusk("create", "repo", "rc")
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env.update(RCLONE_CONFIG="/dev/null", RCLONE_CONFIG_TUSK_TYPE="s3",
                   RCLONE_CONFIG_TUSK_PROVIDER="Other", RCLONE_CONFIG_TUSK_ENDPOINT=self.endpoint,
                   RCLONE_CONFIG_TUSK_ACCESS_KEY_ID=self.key,
                   RCLONE_CONFIG_TUSK_SECRET_ACCESS_KEY=self.secret,
                   RCLONE_CONFIG_TUSK_FORCE_PATH_STYLE="true", RCLONE_CONFIG_TUSK_REGION=REGION)

        def rclone(*args, check=True):
            p = subprocess.run(["rclone"] + list(args), capture_output=True, text=True, env=env,
                               timeout=300)
            if check:
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            return p

        src = self.path("rsrc")
        for i in range(30):
            self.write(os.path.join("rsrc", "part-%02d" % (i % 4), "f%d.dat" % i), os.urandom(i * 97))
        self.write(os.path.join("rsrc", "large.bin"), os.urandom(9 << 20))
        rclone("sync", src, "tusk:rc/master/data")
        rclone("check", src, "tusk:rc/master/data")
        # A change on the tusk side, then back down.
        self.aws("s3", "rm", "s3://rc/master/data/part-00/f0.dat")
        self.aws("s3", "cp", self.write("n", b"new"), "s3://rc/master/data/new.txt")
        dst = self.path("rdst")
        rclone("sync", "tusk:rc/master/data", dst)
        rclone("check", "tusk:rc/master/data", dst)
        self.assertEqual(open(os.path.join(dst, "new.txt"), "rb").read(), b"new")
        self.assertFalse(os.path.exists(os.path.join(dst, "part-00", "f0.dat")))
        # The old version, read-only, is a path away.
        p = rclone("lsf", "-R", "tusk:rc/master~2/data")
        self.assertIn("part-00/f0.dat", p.stdout)


class S3fsTest(GatewayTestCase):
    def test_s3fs_mounts_a_branch_read_only(self):
        if not shutil.which("s3fs") or not shutil.which("fusermount"):
            self.skipTest("s3fs-fuse is not installed")
        try:
            os.close(os.open("/dev/fuse", os.O_RDWR))
        except OSError as e:
            self.skipTest("/dev/fuse is not usable here: %s" % e)
        self.tusk("create", "repo", "fs")
        self.aws("s3", "cp", self.write("b", b"hello fuse\n"), "s3://fs/master/a/b.txt")
        self.aws("s3", "cp", self.write("big", os.urandom(3 << 20)), "s3://fs/master/big.bin")
        mnt = self.path("mnt")
        os.makedirs(mnt)
        pw = self.write("s3fs.passwd", ("%s:%s" % (self.key, self.secret)).encode())
        os.chmod(pw, 0o600)
        proc = subprocess.Popen(["s3fs", "fs:/master", mnt, "-f", "-o", "url=" + self.endpoint,
                                 "-o", "use_path_request_style", "-o", "ro", "-o",
                                 "passwd_file=" + pw], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 15
            while time.time() < deadline and not os.path.ismount(mnt):
                if proc.poll() is not None:
                    self.fail("s3fs exited: %s" % proc.stderr.read().decode())
                time.sleep(0.1)
            self.assertTrue(os.path.ismount(mnt), "s3fs did not mount")
            self.assertEqual(sorted(os.listdir(mnt)), ["a", "big.bin"])
            self.assertEqual(open(os.path.join(mnt, "a", "b.txt"), "rb").read(), b"hello fuse\n")
            with open(os.path.join(mnt, "big.bin"), "rb") as f:
                f.seek(1 << 20)
                part = f.read(4096)
            _, _, want = self.raw.request("GET", "/fs/master/big.bin",
                                          headers={"Range": "bytes=%d-%d" % (1 << 20, (1 << 20) + 4095)})
            self.assertEqual(part, want)
            with self.assertRaises(OSError):
                with open(os.path.join(mnt, "new.txt"), "wb") as f:
                    f.write(b"no")
        finally:
            subprocess.run(["fusermount", "-u", mnt], capture_output=True, timeout=30)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


class AuthTest(GatewayTestCase):
    auth = True

    def token(self, *args):
        return self.tusk("auth", "create-token", *args).out.strip()

    def test_tokens_are_access_keys(self):
        import botocore.exceptions
        self.tusk("create", "repo", "sec")
        self.tusk("create", "repo", "other")
        root = self.boto()
        root.put_object(Bucket="sec", Key="master/a.txt", Body=b"secret data")
        reader = self.token("--name", "r", "--role", "reader", "--repo", "sec")
        rc = self.boto(reader, reader)
        self.assertEqual(rc.get_object(Bucket="sec", Key="master/a.txt")["Body"].read(),
                         b"secret data")
        self.assertEqual([b["Name"] for b in rc.list_buckets()["Buckets"]], ["sec"])
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            rc.put_object(Bucket="sec", Key="master/b.txt", Body=b"no")
        self.assertEqual(e.exception.response["Error"]["Code"], "AccessDenied")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            rc.get_object(Bucket="other", Key="master/a.txt")
        self.assertEqual(e.exception.response["Error"]["Code"], "AccessDenied")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.boto(reader, reader + "x").list_objects_v2(Bucket="sec")
        self.assertEqual(e.exception.response["Error"]["Code"], "SignatureDoesNotMatch")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.boto("tusk_00000000_nothing", "x").list_objects_v2(Bucket="sec")
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidAccessKeyId")
        status, _, body = self.raw.request("GET", "/sec/master/a.txt")
        self.assertEqual((status, error_code(body)), (403, "AccessDenied"))
        # Revoked: refused at once.
        info = self.tusk("auth", "list-tokens", "--json").json()["tokens"]
        rid = [t["id"] for t in info if t.get("name") == "r"][0]
        self.tusk("auth", "revoke-token", rid)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            rc.get_object(Bucket="sec", Key="master/a.txt")
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidAccessKeyId")
        # The token never shows in tuskd's log.
        self.assertNotIn(self.key, open(self.server.log_path, errors="replace").read())

    def test_presigned_urls(self):
        import urllib.request
        import urllib.error
        self.tusk("create", "repo", "pre")
        c = self.boto()
        put = c.generate_presigned_url("put_object", Params={"Bucket": "pre",
                                                             "Key": "master/up.txt"},
                                       ExpiresIn=300)
        req = urllib.request.Request(put, data=b"via presigned put", method="PUT")
        self.assertEqual(urllib.request.urlopen(req, timeout=30).status, 200)
        get = c.generate_presigned_url("get_object", Params={"Bucket": "pre", "Key": "master/up.txt"},
                                       ExpiresIn=300)
        self.assertEqual(urllib.request.urlopen(get, timeout=30).read(), b"via presigned put")
        expired = c.generate_presigned_url("get_object",
                                           Params={"Bucket": "pre", "Key": "master/up.txt"},
                                           ExpiresIn=1)
        time.sleep(2.5)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(expired, timeout=30)
        self.assertEqual(e.exception.code, 403)
        self.assertEqual(error_code(e.exception.read()), "AccessDenied")
        tampered = get.replace("up.txt", "other.txt")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(tampered, timeout=30)
        self.assertEqual(error_code(e.exception.read()), "SignatureDoesNotMatch")
        # Signature version 2 (boto3's old default for presigned URLs) is
        # refused with a message that says so.
        import boto3
        from botocore.config import Config
        v2 = boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                          aws_access_key_id=self.key, aws_secret_access_key=self.secret,
                          config=Config(s3={"addressing_style": "path"}, signature_version="s3"))
        old = v2.generate_presigned_url("get_object", Params={"Bucket": "pre",
                                                              "Key": "master/up.txt"})
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(old, timeout=30)
        body = e.exception.read()
        self.assertEqual(error_code(body), "AuthorizationQueryParametersError")
        self.assertIn(b"version 4", body)

    def signed_chunked_put(self, path, data, tamper=False):
        """A PUT with STREAMING-AWS4-HMAC-SHA256-PAYLOAD: the seed signature
        from botocore's signer, each chunk's chained from it."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        chunk = 65536
        n = (len(data) + chunk - 1) // chunk
        enc_len = sum(len("%x;chunk-signature=" % min(chunk, len(data) - i * chunk)) + 64 + 4 +
                      min(chunk, len(data) - i * chunk) for i in range(n))
        enc_len += len("0;chunk-signature=") + 64 + 4
        headers = {"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                   "Content-Encoding": "aws-chunked",
                   "x-amz-decoded-content-length": str(len(data)),
                   "Content-Length": str(enc_len), "Host": "127.0.0.1:%d" % self.port}
        req = AWSRequest(method="PUT", url=self.endpoint + path, headers=headers)
        SigV4Auth(Credentials(self.key, self.secret), "s3", REGION).add_auth(req)
        auth = req.headers["Authorization"]
        seed = auth.split("Signature=")[1]
        amz_date = req.headers["X-Amz-Date"]
        scope = "%s/%s/s3/aws4_request" % (amz_date[:8], REGION)

        def h(key, msg):
            return hmac.new(key, msg.encode(), hashlib.sha256).digest()

        key = h(h(h(h(("AWS4" + self.secret).encode(), amz_date[:8]), REGION), "s3"),
                "aws4_request")
        prev = [seed]

        def signer(piece):
            if tamper and piece:
                piece = b"X" + piece[1:]
            s = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev[0],
                           hashlib.sha256(b"").hexdigest(), hashlib.sha256(piece).hexdigest()])
            prev[0] = hmac.new(key, s.encode(), hashlib.sha256).hexdigest()
            return prev[0]

        body = chunked_body(data, chunk, signer=signer)
        self.assertEqual(len(body), enc_len)
        send = {k: v for k, v in req.headers.items()}
        return self.raw.request("PUT", path, body, send)

    def test_signed_chunked_upload(self):
        self.tusk("create", "repo", "chk")
        data = os.urandom(150000)
        status, _, body = self.signed_chunked_put("/chk/master/signed.bin", data)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.boto().get_object(Bucket="chk", Key="master/signed.bin")["Body"].read(),
                         data)
        status, _, body = self.signed_chunked_put("/chk/master/forged.bin", data, tamper=True)
        self.assertEqual((status, error_code(body)), (403, "SignatureDoesNotMatch"), body)
        keys = [o["Key"] for o in self.boto().list_objects_v2(Bucket="chk")["Contents"]]
        self.assertEqual(keys, ["master/signed.bin"])


if __name__ == "__main__":
    unittest.main()
