"""Test harness: runs a real tuskd process and the real tusk CLI on loopback.

Binaries come from $TUSK_BIN_DIR (set by ctest). Every server listens on
127.0.0.1 on a port the kernel picks; every wait is bounded.
"""

import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

BIN_DIR = os.environ.get("TUSK_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
TUSKD = os.path.join(BIN_DIR, "tuskd")
TUSK = os.path.join(BIN_DIR, "tusk")
DEV_KAFKA = os.path.join(BIN_DIR, "tusk-dev-kafka")
INGEST = os.path.join(BIN_DIR, "tusk-ingest")
# Where TuskTestCase's tuskd keeps its objects: "local" (the data directory),
# "s3" (an s3rver started for the test class, path-style addressing) or
# "s3-vhost" (the same, virtual-host style: BUCKET.s3.localhost, which curl
# resolves to 127.0.0.1).
STORE = os.environ.get("TUSK_E2E_STORE", "local")


def stop_process(proc, timeout=15):
    """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def read_tree(root):
    """{relative path: bytes} of every file under a local directory."""
    got = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                got[os.path.relpath(p, root)] = f.read()
    return got


class Tuskd:
    """A tuskd process over a data directory; restartable on the same data."""

    def __init__(self, data_dir, log_path, extra_args=(), env=None):
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.env = env
        self.proc = None
        self.address = None

    def start(self, timeout=20, same_address=False, once=()):
        """Starts tuskd on a free port, or (same_address) where it was before;
        `once`: extra flags for this start only."""
        listen = self.address if same_address and self.address else "127.0.0.1:0"
        port_file = os.path.join(os.path.dirname(self.log_path), "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [TUSKD, "--data-dir", self.data_dir, "--listen", listen, "--port-file", port_file]
                + self.extra_args + list(once), stdout=log, stderr=log, env=self.env)
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
        if self.proc:
            stop_process(self.proc)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""


class MockKafka:
    """tusk-dev-kafka: a Kafka-protocol cluster on 127.0.0.1 (librdkafka's mock)."""

    def __init__(self, log_path, topics, partitions=4):
        self.log_path = log_path
        args = [DEV_KAFKA, "--partitions", str(partitions)]
        for t in topics:
            args += ["--topic", t]
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError("tusk-dev-kafka did not start")
        self.bootstrap = line

    def stop(self):
        stop_process(self.proc)
        self.proc.stdout.close()


class IngestMember:
    """A tusk-ingest process; restartable."""

    def __init__(self, address, source, log_path, member_id, extra=()):
        self.args = [INGEST, "--address", address, "--source", source, "--member-id", member_id,
                     "--max-backoff", "1s"] + list(extra)
        self.log_path = log_path
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout=30):
        """Stops it (SIGTERM); returns its exit code (-9 if it had to be killed)."""
        return stop_process(self.proc, timeout) if self.proc else None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


S3RVER = os.path.join(os.path.dirname(__file__), "..", "s3", "node_modules", ".bin", "s3rver")
AWS_CLI = "/usr/bin/aws"  # Debian's awscli (not a pyenv shim that may lack it)


class S3rver:
    """s3rver (npm, installed by scripts/test.sh into tests/s3) on 127.0.0.1,
    on a port the kernel picks. It accepts the credentials S3RVER/S3RVER."""

    ACCESS_KEY = "S3RVER"
    SECRET_KEY = "S3RVER"

    def __init__(self, data_dir, log_path):
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.endpoint = None

    def start(self, timeout=30, bucket=None, port=0):
        """Starts it on a free port (or `port`), creating `bucket` if given.
        Virtual-host requests go to BUCKET.s3.localhost."""
        os.makedirs(self.data_dir, exist_ok=True)
        self.log = open(self.log_path, "ab")
        args = [S3RVER, "-d", self.data_dir, "-a", "127.0.0.1", "-p", str(port),
                "--service-endpoint", "localhost"]
        if bucket:
            args += ["--configure-bucket", bucket]
        # s3rver makes ListObjectsV2 continuation tokens with DES, which
        # Node's OpenSSL 3 only offers through its legacy provider: without it
        # every truncated listing is a 500.
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        # Unbuffered: select() must see what readline() has not consumed yet.
        self.proc = subprocess.Popen(args, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log, bufsize=0)
        deadline = time.time() + timeout
        line = b""
        while time.time() < deadline and b"listening on" not in line:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.time()))
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
        if b"listening on" not in line:
            self.stop()
            raise RuntimeError("s3rver did not start; see " + self.log_path)
        self.endpoint = "http://" + line.decode().split()[-1]

    def env(self):
        return dict(os.environ, AWS_ACCESS_KEY_ID=self.ACCESS_KEY,
                    AWS_SECRET_ACCESS_KEY=self.SECRET_KEY, AWS_DEFAULT_REGION="us-east-1")

    def aws(self, *args, input=None):
        """Runs Debian's aws CLI against this server (an independent S3 client)."""
        return subprocess.run([AWS_CLI, "--endpoint-url", self.endpoint] + list(args), input=input,
                              env=self.env(), capture_output=True, check=True, timeout=120)

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.proc.stdout.close()
            self.log.close()
            self.proc = None

    def kill9(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
            self.log.close()
            self.proc = None

    def port(self):
        return int(self.endpoint.rsplit(":", 1)[1])


def start_tuskd(tmp, name="data", log="tuskd.log", args=()):
    """A started tuskd over tmp/name (with extra `args`); with STORE=s3 its
    objects go to a new s3rver (returned too, else None) under tmp/name-s3."""
    s3 = None
    extra, env = [], None
    if STORE in ("s3", "s3-vhost"):
        s3 = S3rver(os.path.join(tmp, name + "-s3"), os.path.join(tmp, name + "-s3rver.log"))
        s3.start(bucket="tusk")
        extra = ["--object-store", "s3://tusk/e2e", "--s3-endpoint", s3.endpoint]
        if STORE == "s3-vhost":
            extra = ["--object-store", "s3://tusk/e2e", "--s3-virtual-host",
                     "--s3-endpoint", "http://s3.localhost:%d" % s3.port()]
        env = s3.env()
    server = Tuskd(os.path.join(tmp, name), os.path.join(tmp, log), extra + list(args), env)
    try:
        server.start()
    except Exception:
        if s3:
            s3.stop()
        raise
    return server, s3


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
    """Starts a fresh tuskd per test class in a temporary directory, with the
    class's `tuskd_args`."""

    tuskd_args = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        cls.server, cls.s3 = start_tuskd(cls.tmp, args=cls.tuskd_args)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        if cls.s3:
            cls.s3.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # Extra environment for the CLI (TUSK_TOKEN, TUSK_TLS_CA...).
    tusk_env = {}

    def tusk(self, *args, input=None, check=True, timeout=120, env=None):
        cmd = [TUSK, "--address", self.server.address] + [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.update(self.tusk_env)
        full_env.update(env or {})
        proc = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=full_env)
        r = Result(proc)
        if check and r.returncode != 0:
            self.fail("%s failed (%d): %s\ntuskd log:\n%s" % (" ".join(cmd), r.returncode, r.err,
                                                             self.server.log()))
        return r

    def tusk_fails(self, expected_code, *args, input=None, mentions=None, env=None):
        r = self.tusk(*args, input=input, check=False, env=env)
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


class PipelineTestCase(TuskTestCase):
    """TuskTestCase with helpers for pipelines: commits, jobs, outputs."""

    def head(self, repo):
        return self.tusk("inspect", "commit", repo + "@master", "--json").json()

    def put(self, repo, path, data):
        self.tusk("put", "file", "%s@master:%s" % (repo, path), "-f", "-", input=data)
        return self.head(repo)

    def wait_set(self, commit, code=0):
        r = self.tusk("wait", "commitset", commit["commit_set"], "--json", check=False, timeout=120)
        self.assertEqual(r.returncode, code, r.err + self.server.log())
        return r.json_lines()

    def jobs(self, pipeline):
        return self.tusk("list", "job", "-p", pipeline, "--json").json_lines()

    def files(self, repo):
        out = {}
        for f in self.tusk("list", "file", repo + "@master:/", "--json").json_lines():
            out[f["path"].lstrip("/")] = self.tusk("get", "file", repo + "@master:" + f["path"]).out
        return out

    def wait_jobs(self, pipeline, ready, timeout=30):
        """Polls the pipeline's jobs (newest first) until ready(jobs), bounded."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ready(self.jobs(pipeline)):
                return
            time.sleep(0.05)

    def put_dir(self, repo, name, files):
        """Writes `files` (name -> text) to a local directory and puts it as one commit."""
        d = self.path(name)
        os.makedirs(d)
        for fname, body in files.items():
            with open(os.path.join(d, fname), "w") as f:
                f.write(body)
        self.tusk("put", "file", repo + "@master:/", "-f", d, "-r")
        return self.head(repo)

    def check_job(self, job, total, processed, skipped, failed=0):
        n = lambda k: int(job.get(k, "0"))
        self.assertEqual((n("datums_total"), n("datums_processed"), n("datums_skipped"), n("datums_failed")),
                         (total, processed, skipped, failed), job)

    def wait_for(self, what, ready, timeout=120):
        """Polls ready() until it returns something true (returned), bounded;
        fails with the tuskd log otherwise."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = ready()
            if v:
                return v
            time.sleep(0.2)
        self.fail("timed out waiting for %s; tuskd log:\n%s" % (what, self.server.log()))
