"""Faults that must not need a restart: an idle put stream (its automatic
commit is aborted and the branch freed), a full disk (clear errors, recovery
once space is back, nothing half-written), oversized messages and hostile
input (refused with an error that names the problem)."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import TUSK, Tuskd, TuskTestCase


class IdleStreamTest(TuskTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        cls.s3 = None
        cls.server = Tuskd(os.path.join(cls.tmp, "data"), os.path.join(cls.tmp, "tuskd.log"),
                           ["--put-idle-timeout", "1s"])
        cls.server.start()

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


if __name__ == "__main__":
    unittest.main()
