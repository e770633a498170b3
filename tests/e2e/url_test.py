"""put file -f URL: http(s):// through a real HTTP server on loopback (with
ranges, retries and broken connections), and s3:// objects and prefixes on
s3rver, filled by Debian's aws CLI."""

import hashlib
import http.server
import os
import random
import threading

from harness import S3rver, TuskTestCase


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves the test's `files`; `faults` drives what goes wrong."""

    protocol_version = "HTTP/1.1"
    files = {}
    faults = {}
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.lstrip("/")
        Handler.requests.append((name, self.headers.get("Range")))
        fault = Handler.faults.get(name, {})
        if fault.get("unavailable", 0) > 0:
            fault["unavailable"] -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if name not in Handler.files:
            body = b"no such file"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = Handler.files[name]
        etag = '"%s"' % hashlib.sha256(data).hexdigest()[:16]
        start = 0
        rng = self.headers.get("Range")
        if rng and fault.get("ranges", True) and self.headers.get("If-Range") == etag:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", etag)
        if fault.get("ranges", True):
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        body = data[start:]
        if fault.get("cut", 0) > 0:
            # Send part of the body, then drop the connection.
            fault["cut"] -= 1
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class UrlTest(TuskTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        cls.base = "http://127.0.0.1:%d/" % cls.httpd.server_address[1]
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()
        cls.s3 = S3rver(os.path.join(cls.tmp, "s3"), os.path.join(cls.tmp, "s3rver.log"))
        try:
            cls.s3.start()
        except Exception:
            # tearDownClass does not run when setUpClass fails: stop what started.
            cls.httpd.shutdown()
            super().tearDownClass()
            raise
        os.environ.update(AWS_ACCESS_KEY_ID=S3rver.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=S3rver.SECRET_KEY,
                          AWS_ENDPOINT_URL=cls.s3.endpoint)

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()
        cls.s3.stop()
        super().tearDownClass()

    def get(self, ref):
        return self.tusk("get", "file", ref).stdout

    def commits(self, repo):
        return self.tusk("list", "commit", repo + "@master", "--json").json_lines()

    def test_http(self):
        rng = random.Random(5)
        big = rng.randbytes(3 << 20)
        Handler.files.update({"data/big.bin": big, "flaky.bin": big, "noranges.bin": big,
                              "busy.txt": b"finally\n"})
        Handler.faults.update({"flaky.bin": {"cut": 2}, "noranges.bin": {"cut": 1, "ranges": False},
                               "busy.txt": {"unavailable": 2}})
        self.tusk("create", "repo", "web")
        r = self.tusk("put", "file", "web@master", "-f", self.base + "data/big.bin", "--json").json()
        self.assertEqual(r["commit"]["state"], "FINISHED")
        self.assertEqual(self.get("web@master:/big.bin"), big)
        # A connection cut twice in the middle: resumed with ranges, twice.
        Handler.requests.clear()
        self.tusk("put", "file", "web@master:/resumed.bin", "-f", self.base + "flaky.bin")
        self.assertEqual(self.get("web@master:/resumed.bin"), big)
        ranges = [rg for name, rg in Handler.requests if name == "flaky.bin"]
        self.assertEqual(len(ranges), 3, Handler.requests)
        self.assertIsNone(ranges[0], Handler.requests)
        self.assertTrue(ranges[1] and ranges[2] and ranges[2] > ranges[1], Handler.requests)
        # 503 twice, then the file: retried.
        self.tusk("put", "file", "web@master:/busy.txt", "-f", self.base + "busy.txt")
        self.assertEqual(self.get("web@master:/busy.txt"), b"finally\n")
        before = len(self.commits("web"))
        # Cut without ranges: a clear error and no commit.
        self.tusk_fails(5, "put", "file", "web@master:/x.bin", "-f", self.base + "noranges.bin",
                        mentions="offers no ranges")
        # 404: not found, naming the URL; no commit.
        self.tusk_fails(3, "put", "file", "web@master:/y", "-f", self.base + "missing.txt",
                        mentions="missing.txt: HTTP 404")
        self.tusk_fails(1, "put", "file", "web@master", "-f", self.base,
                        mentions="give a destination")
        self.tusk_fails(2, "put", "file", "web@master", "-f", self.base + "x", "--untar")
        self.assertEqual(len(self.commits("web")), before)

    def test_s3(self):
        rng = random.Random(9)
        objects = {"day1/a.csv": b"id,v\n1,2\n", "day1/sub/caf\u00e9 + x.bin": rng.randbytes(70000),
                   "day1/big.bin": rng.randbytes(5 << 20), "day1/empty": b"",
                   "day2/other.txt": b"not in day1"}
        self.s3.aws("s3", "mb", "s3://dumps")
        for key, data in objects.items():
            self.s3.aws("s3", "cp", "-", "s3://dumps/" + key, input=data)
        self.tusk("create", "repo", "lake")
        # A prefix: every object beneath it, one commit.
        r = self.tusk("put", "file", "lake@master:/day1", "-f", "s3://dumps/day1/", "--json").json()
        self.assertEqual(int(r["files"]), 4)
        self.assertEqual(len(self.commits("lake")), 1)
        for key, data in objects.items():
            if key.startswith("day1/"):
                self.assertEqual(self.get("lake@master:/" + key), data, key)
        self.tusk_fails(3, "inspect", "file", "lake@master:/day2/other.txt")
        # The same over 3 parallel streams, with -r and no trailing slash.
        self.tusk("put", "file", "-r", "lake@master:/again", "-f", "s3://dumps/day1",
                  "--parallel", "3")
        self.assertEqual(self.get("lake@master:/again/big.bin"), objects["day1/big.bin"])
        # One object, by a key that needs encoding.
        self.tusk("put", "file", "lake@master:/one.bin", "-f", "s3://dumps/day1/sub/caf\u00e9 + x.bin")
        self.assertEqual(self.get("lake@master:/one.bin"), objects["day1/sub/caf\u00e9 + x.bin"])
        # Errors name the object; nothing is committed.
        n = len(self.commits("lake"))
        self.tusk_fails(3, "put", "file", "lake@master:/z", "-f", "s3://dumps/nope.txt",
                        mentions="s3://dumps/nope.txt: HTTP 404 NoSuchKey")
        self.tusk_fails(3, "put", "file", "lake@master:/z", "-f", "s3://nobucket/x",
                        mentions="NoSuchBucket")
        self.tusk_fails(3, "put", "file", "lake@master:/z/", "-f", "s3://dumps/none/",
                        mentions="no objects under")
        self.assertEqual(len(self.commits("lake")), n)


if __name__ == "__main__":
    import unittest
    unittest.main()
