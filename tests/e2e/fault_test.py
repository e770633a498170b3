"""Faults that must not need a restart: an idle put stream (its automatic
commit is aborted and the branch freed), a full disk (clear errors, recovery
once space is back, nothing half-written), oversized messages and hostile
input (refused with an error that names the problem)."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import TUSK, TUSKD, TuskTestCase, stop_process


def have_bwrap_tmpfs():
    try:
        return subprocess.run(["bwrap", "--dev-bind", "/", "/", "--size", "1048576", "--tmpfs", "/mnt",
                               "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@unittest.skipUnless(have_bwrap_tmpfs(), "needs bubblewrap with --size (a small tmpfs)")
class DiskFullTest(TuskTestCase):
    """tuskd on a 64 MiB tmpfs (bubblewrap), 30 MiB of it taken by a ballast
    file that the test can have removed: a put that does not fit fails with
    RESOURCE_EXHAUSTED naming the cause, leaves no commit behind, and once
    the ballast is gone tuskd writes again without a restart."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        cls.s3 = None
        cls.mnt = os.path.join(cls.tmp, "disk")
        os.makedirs(cls.mnt)
        cls.free_flag = os.path.join(cls.tmp, "free")
        cls.freed_flag = os.path.join(cls.tmp, "freed")
        port_file = os.path.join(cls.tmp, "port")
        script = (
            'dd if=/dev/zero of="$M/ballast" bs=1M count=30 status=none\n'
            '"$TUSKD" --data-dir "$M/data" --listen 127.0.0.1:0 --port-file "$PORT" &\n'
            'pid=$!\n'
            'trap \'kill -TERM $pid; wait $pid; exit\' TERM\n'
            'while [ ! -e "$FREE" ]; do sleep 0.05; done\n'
            'rm -f "$M/ballast"; touch "$FREED"\n'
            'wait $pid\n')
        env = dict(os.environ, M=cls.mnt, TUSKD=TUSKD, PORT=port_file, FREE=cls.free_flag,
                   FREED=cls.freed_flag)
        cls.log_path = os.path.join(cls.tmp, "tuskd.log")
        with open(cls.log_path, "ab") as log:
            cls.proc = subprocess.Popen(
                ["bwrap", "--dev-bind", "/", "/", "--size", str(64 << 20), "--tmpfs", cls.mnt,
                 "--die-with-parent", "sh", "-c", script], env=env, stdout=log, stderr=log,
                start_new_session=True)
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if cls.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tuskd on a tmpfs did not start: " + open(cls.log_path).read())
            time.sleep(0.05)

        class Server:
            address = "127.0.0.1:" + open(port_file).read().strip()

            def log(self):
                with open(cls.log_path, errors="replace") as f:
                    return f.read()
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        # bwrap does not pass signals on: stop the whole group (bwrap, the
        # script and tuskd), or tuskd outlives the test.
        try:
            os.killpg(cls.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        stop_process(cls.proc)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_disk_full_then_space_back(self):
        self.tusk("create", "repo", "full")
        self.tusk("put", "file", "full@master:/small", "-f", "-", input=b"small")
        big = self.write("big.bin", os.urandom(40 << 20))
        r = self.tusk_fails(1, "put", "file", "full@master:/big.bin", "-f", big)
        self.assertIn("RESOURCE_EXHAUSTED", r.err)
        self.assertIn("no space left", r.err)
        self.assertNotIn("is tuskd running", r.err)
        # Nothing half-written: no open commit, no new commit.
        self.assertEqual(self.tusk("inspect", "branch", "full@master", "--json").json().get("open_commit", ""), "")
        self.assertEqual(len(self.tusk("list", "commit", "full@master", "--json").json_lines()), 1)
        # Small writes (they go into the index) until the index's disk is
        # full too: RocksDB stops writing after such a failure.
        failed = None
        for i in range(150):
            r = self.tusk("put", "file", "full@master:/s%d" % i, "-f", "-", input=os.urandom(512 << 10),
                          check=False)
            if r.returncode != 0:
                failed = r
                break
        self.assertIsNotNone(failed, "the disk never filled up")
        self.assertIn("RESOURCE_EXHAUSTED", failed.err)
        acked = i
        # Space comes back; tuskd writes again without a restart.
        open(self.free_flag, "w").close()
        deadline = time.monotonic() + 10
        while not os.path.exists(self.freed_flag):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.tusk("put", "file", "full@master:/after", "-f", "-", input=b"after")
        # The failed upload's packs go at the next gc, without the grace wait.
        # (How many it left depends on which of its parallel pack writes
        # found space; tuskd says.)
        left = sum(int(m) for m in re.findall(r"a failed upload leaves (\d+) packs", self.server.log()))
        gc = self.tusk("gc", "--json").json()
        self.assertGreaterEqual(int(gc.get("packs_deleted", "0")), left, gc)
        if left:
            self.assertGreaterEqual(int(gc.get("bytes_deleted", "0")), 1 << 20, gc)
        mid = self.write("mid.bin", os.urandom(6 << 20))
        self.tusk("put", "file", "full@master:/mid.bin", "-f", mid)
        self.assertEqual(self.tusk("get", "file", "full@master:/small").stdout, b"small")
        for j in range(acked):
            self.assertEqual(len(self.tusk("get", "file", "full@master:/s%d" % j).stdout), 512 << 10)
        self.tusk_fails(3, "inspect", "file", "full@master:/s%d" % acked)
        self.assertEqual(self.tusk("get", "file", "full@master:/after").stdout, b"after")
        with open(mid, "rb") as f:
            self.assertEqual(self.tusk("get", "file", "full@master:/mid.bin").stdout, f.read())
        self.assertIn("no problems", self.tusk("fsck").out)


class IdleStreamTest(TuskTestCase):
    tuskd_args = ("--put-idle-timeout", "1s")

    def test_an_idle_put_stream_frees_the_branch(self):
        self.tusk("create", "repo", "idle")
        # A client that sends a little and then nothing, without closing.
        idle = subprocess.Popen([TUSK, "--address", self.server.address, "put", "file",
                                 "idle@master:/stuck", "-f", "-"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        idle.stdin.write(b"x" * (1536 << 10))  # more than the CLI's 1 MiB message
        idle.stdin.flush()
        deadline = time.monotonic() + 20
        while self.tusk("inspect", "branch", "idle@master", "--json").json().get("open_commit", "") == "":
            self.assertLess(time.monotonic(), deadline, "the idle stream never opened its commit")
            time.sleep(0.05)
        # Another writer gets the branch once the idle stream is aborted
        # (well within the 30 s a writer waits), and so does start commit.
        started = time.monotonic()
        self.tusk("put", "file", "idle@master:/other", "-f", "-", input=b"other")
        self.assertLess(time.monotonic() - started, 15)
        self.assertEqual(self.tusk("get", "file", "idle@master:/other").stdout, b"other")
        self.tusk_fails(3, "inspect", "file", "idle@master:/stuck")
        _, err = idle.communicate(input=b"late", timeout=30)
        self.assertNotEqual(idle.returncode, 0)
        self.assertIn(b"sent nothing for 1s", err)
        cid = self.tusk("start", "commit", "idle@master").out.strip()
        self.tusk("finish", "commit", "idle@" + cid)


class OversizedAndHostileInputTest(TuskTestCase):
    def test_an_oversized_pipeline_spec_is_refused_at_create(self):
        self.tusk("create", "repo", "bigspecin")
        big = {"pipeline": {"name": "bigspec"},
               "transform": {"cmd": ["sh"], "stdin": ["true # " + "x" * 1000] * 4500},
               "input": {"pfs": {"repo": "bigspecin", "glob": "/"}}}
        r = self.tusk_fails(1, "create", "pipeline", "-f", self.write("big.json", json.dumps(big).encode()))
        self.assertIn("the limit is 1048576", r.err)
        self.tusk_fails(3, "inspect", "pipeline", "bigspec")
        # Just under the limit: created, and its job runs (the lease carries
        # the whole transform).
        big["transform"]["stdin"] = ["true # " + "x" * 1000] * 900 + ["cp /pfs/bigspecin/f /pfs/out/f"]
        self.tusk("create", "pipeline", "-f", self.write("ok.json", json.dumps(big).encode()))
        self.tusk("put", "file", "bigspecin@master:/f", "-f", "-", input=b"data")
        cs = self.tusk("inspect", "commit", "bigspecin@master", "--json").json()["commit_set"]
        self.tusk("wait", "commitset", cs, timeout=120)
        self.assertEqual(self.tusk("get", "file", "bigspec@master:/f").stdout, b"data")

    def test_an_alias_bomb_is_refused(self):
        yaml = "pipeline: {name: lol}\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for i in range(1, 9):
            yaml += "l%d: &l%d [%s]\n" % (i, i, ", ".join(["*l%d" % (i - 1)] * 9))
        started = time.monotonic()
        r = self.tusk_fails(1, "create", "pipeline", "-f", self.write("bomb.yaml", yaml.encode()),
                            mentions="billion laughs")
        self.assertLess(time.monotonic() - started, 20, r.err)

    def raw_tusk(self, *args):
        return subprocess.run([TUSK, "--address", self.server.address] + list(args), capture_output=True,
                              timeout=60)

    def test_invalid_utf8_is_named(self):
        self.tusk("create", "repo", "utf")
        r = self.raw_tusk("create", "repo", b"bad\xff")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"not valid UTF-8", r.stderr)
        r = self.raw_tusk("put", "file", b"utf@master:/a\xfe.txt", "-f", self.write("u.txt", b"u"))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"not valid UTF-8", r.stderr)
        d = self.path("utfdir")
        os.makedirs(d)
        with open(os.path.join(os.fsencode(d), b"ok.txt"), "wb") as f:
            f.write(b"ok")
        with open(os.path.join(os.fsencode(d), b"caf\xe9.txt"), "wb") as f:  # Latin-1, not UTF-8
            f.write(b"latin")
        r = self.raw_tusk("put", "file", "-r", "utf@master:/d", "-f", d)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"not valid UTF-8", r.stderr)
        self.assertIn(b"caf\\xe9", r.stderr)
        self.assertNotIn(b"INTERNAL", r.stderr)
        self.assertEqual(len(self.tusk("list", "commit", "utf@master", "--json").json_lines()), 0)

    def test_a_missing_or_truncated_pack_is_corrupt_data(self):
        self.tusk("create", "repo", "packs")
        for name in ("one", "two"):
            self.tusk("put", "file", "packs@master:/%s.bin" % name, "-f",
                      self.write(name + ".bin", os.urandom(3 << 20)))
        objects = os.path.join(self.server.data_dir, "objects", "packs")
        packs = sorted((os.path.getsize(os.path.join(dp, f)), os.path.join(dp, f))
                       for dp, _, fs in os.walk(objects) for f in fs if f.endswith(".pack"))
        big = [p for size, p in packs if size > (2 << 20)]
        self.assertEqual(len(big), 2)
        os.truncate(big[0], 1 << 20)
        os.unlink(big[1])
        for name in ("one", "two"):
            r = self.tusk_fails(6, "get", "file", "packs@master:/%s.bin" % name)
            self.assertIn("packs/", r.err)
            self.assertRegex(r.err, "is (missing|truncated)")
            self.assertNotIn("is tuskd running", r.err)
        self.tusk_fails(6, "fsck")


if __name__ == "__main__":
    unittest.main()
