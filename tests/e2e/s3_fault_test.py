"""Faults in S3 under tuskd: 500s for a while (a proxy on the wire between
tuskd and s3rver), 500s for longer than the retries last, and s3rver killed
and restarted in the middle of a large put. The put completes after retries
or fails with a clear error; either way no commit points at a missing object
and fsck passes."""

import http.client
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import S3rver, Tuskd, TUSK, Result


class FaultProxy:
    """An HTTP proxy to s3rver that answers 500 (S3's InternalError) to the
    next `n` requests, or to every request while failing_all is set."""

    def __init__(self, upstream_port):
        self.lock = threading.Lock()
        self.fail_next = 0
        self.failing_all = False
        self.failed = 0
        self.forwarded = 0
        self.connections = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with proxy.lock:
                    proxy.connections += 1

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    fail = proxy.failing_all or proxy.fail_next > 0
                    if fail:
                        proxy.fail_next = max(0, proxy.fail_next - 1)
                        proxy.failed += 1
                    else:
                        proxy.forwarded += 1
                if fail:
                    err = (b"<?xml version=\"1.0\"?><Error><Code>InternalError</Code>"
                           b"<Message>injected by the test</Message></Error>")
                    self.send_response(500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(err)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(err)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3FaultTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tusk-s3fault-")
        self.s3_port = free_port()
        self.s3 = S3rver(os.path.join(self.tmp, "s3"), os.path.join(self.tmp, "s3rver.log"))
        self.s3.start(bucket="tusk", port=self.s3_port)
        self.proxy = FaultProxy(self.s3_port)
        self.server = None

    def tearDown(self):
        if self.server:
            self.server.stop()
        self.proxy.stop()
        self.s3.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_tuskd(self, endpoint, retries):
        self.server = Tuskd(os.path.join(self.tmp, "data"), os.path.join(self.tmp, "tuskd.log"),
                            ["--object-store", "s3://tusk/faults", "--s3-endpoint", endpoint,
                             "--s3-retries", str(retries), "--cache-size", "0"],
                            self.s3.env())
        self.server.start()

    def tusk(self, *args, check=True):
        proc = subprocess.run([TUSK, "--address", self.server.address] + list(args),
                              capture_output=True, timeout=300)
        r = Result(proc)
        if check and r.returncode != 0:
            self.fail("tusk %s: %s\n%s" % (args, r.err, self.server.log()))
        return r

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def assert_consistent(self, repo):
        """fsck is clean and every commit's files read back."""
        self.assertIn("no problems", self.tusk("fsck").out)
        for c in self.tusk("list", "commit", repo, "--json").json_lines():
            if c.get("state") == "FINISHED" and c.get("file_count", "0") != "0":
                out = os.path.join(self.tmp, "get-" + c["id"])
                self.tusk("get", "file", "%s@%s:/" % (repo, c["id"]), "-o", out)

    def test_500s_for_a_while_then_the_put_completes(self):
        self.start_tuskd(self.proxy.endpoint, retries=8)
        self.tusk("create", "repo", "f")
        data = os.urandom(40 << 20)
        path = self.write("big.bin", data)
        with self.proxy.lock:
            self.proxy.fail_next = 12
        self.tusk("put", "file", "f@master:/big.bin", "-f", path)
        self.assertEqual(self.proxy.failed, 12)
        self.assertEqual(self.tusk("get", "file", "f@master:/big.bin").stdout, data)
        self.assert_consistent("f")
        # Connections are kept alive and reused: 20 more reads (no cache in
        # this tuskd) open no new connection to the server.
        self.tusk("put", "file", "f@master:/small.txt", "-f", self.write("s.txt", b"small\n"))
        with self.proxy.lock:
            conns, reqs = self.proxy.connections, self.proxy.forwarded
        for _ in range(20):
            self.assertEqual(self.tusk("get", "file", "f@master:/small.txt").stdout, b"small\n")
        with self.proxy.lock:
            self.assertGreaterEqual(self.proxy.forwarded - reqs, 20)
            self.assertEqual(self.proxy.connections, conns)

    def test_500s_beyond_the_retries_fail_clearly(self):
        self.start_tuskd(self.proxy.endpoint, retries=2)
        self.tusk("create", "repo", "g")
        self.tusk("put", "file", "g@master:/before.txt", "-f", self.write("a.txt", b"before\n"))
        with self.proxy.lock:
            self.proxy.failing_all = True
        r = self.tusk("put", "file", "g@master:/big.bin", "-f",
                      self.write("big.bin", os.urandom(20 << 20)), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("HTTP 500", r.err)
        self.assertIn("s3://tusk/faults/", r.err)  # names the object
        self.assertEqual(r.returncode, 5)  # worth retrying
        self.assertNotIn("is tuskd running", r.err)  # tuskd answered; its store did not
        with self.proxy.lock:
            self.proxy.failing_all = False
        commits = self.tusk("list", "commit", "g@master", "--json").json_lines()
        self.assertEqual(len(commits), 1)  # the failed put left no commit
        self.tusk("put", "file", "g@master:/after.txt", "-f", self.write("b.txt", b"after\n"))
        self.assert_consistent("g")

    def test_s3_killed_and_restarted_mid_put(self):
        self.start_tuskd(self.s3.endpoint, retries=10)
        self.tusk("create", "repo", "k")
        data = os.urandom(150 << 20)
        path = self.write("big.bin", data)
        put = subprocess.Popen([TUSK, "--address", self.server.address, "put", "file",
                                "k@master:/big.bin", "-f", path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Wait until some packs are in, then kill s3rver and bring it back.
        deadline = time.time() + 30
        objects = os.path.join(self.tmp, "s3", "tusk", "faults", "packs")
        while time.time() < deadline and put.poll() is None:
            n = sum(len(f) for _, _, f in os.walk(objects)) if os.path.isdir(objects) else 0
            if n >= 6:
                break
            time.sleep(0.05)
        self.s3.kill9()
        time.sleep(1.0)
        self.s3.start(bucket="tusk", port=self.s3_port)
        out, err = put.communicate(timeout=300)
        if put.returncode == 0:
            self.assertEqual(self.tusk("get", "file", "k@master:/big.bin").stdout, data)
        else:
            # A clear error, naming what failed.
            self.assertRegex(err.decode(), r"s3://|HTTP|connect")
            self.assertEqual(self.tusk("list", "commit", "k@master", "--json").json_lines(), [])
        self.assert_consistent("k")


if __name__ == "__main__":
    unittest.main()
