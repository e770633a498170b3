"""Test harness: runs a real tuskd process and the real tusk CLI on loopback.

Binaries come from $TUSK_BIN_DIR (set by ctest). Every server listens on
127.0.0.1 on a port the kernel picks; every wait is bounded.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

BIN_DIR = os.environ.get("TUSK_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
TUSKD = os.path.join(BIN_DIR, "tuskd")
TUSK = os.path.join(BIN_DIR, "tusk")


class Tuskd:
    """A tuskd process over a data directory; restartable on the same data."""

    def __init__(self, data_dir, log_path):
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.address = None

    def start(self, timeout=20):
        port_file = os.path.join(os.path.dirname(self.log_path), "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [TUSKD, "--data-dir", self.data_dir, "--listen", "127.0.0.1:0", "--port-file", port_file],
                stdout=log, stderr=log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("tuskd exited with %d; log:\n%s" % (self.proc.returncode, self.log()))
            if os.path.exists(port_file):
                with open(port_file) as f:
                    port = f.read().strip()
                if port:
                    self.address = "127.0.0.1:" + port
                    return
            time.sleep(0.02)
        raise RuntimeError("tuskd did not start within %ds" % timeout)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""


class Result:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def out(self):
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self):
        return self.stderr.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.out)

    def json_lines(self):
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


class TuskTestCase(unittest.TestCase):
    """Starts a fresh tuskd per test class in a temporary directory."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        cls.server = Tuskd(os.path.join(cls.tmp, "data"), os.path.join(cls.tmp, "tuskd.log"))
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tusk(self, *args, input=None, check=True, timeout=120):
        cmd = [TUSK, "--address", self.server.address] + [str(a) for a in args]
        proc = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
        r = Result(proc)
        if check and r.returncode != 0:
            self.fail("%s failed (%d): %s\ntuskd log:\n%s" % (" ".join(cmd), r.returncode, r.err,
                                                             self.server.log()))
        return r

    def tusk_fails(self, expected_code, *args, input=None, mentions=None):
        r = self.tusk(*args, input=input, check=False)
        self.assertEqual(r.returncode, expected_code,
                         "%s: exit %d, stderr: %s" % (args, r.returncode, r.err))
        if mentions:
            self.assertIn(mentions, r.err)
        return r

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, rel, data):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        return p
