"""Bad input gets a clear error naming what was wrong, and the server keeps serving."""

import os
import signal
import subprocess
import time
import unittest

from harness import TUSK, TuskTestCase


class BadInput(TuskTestCase):
    def setUp(self):
        r = self.tusk("list", "repo", "--json", check=False)
        if "bad" not in r.out:
            self.tusk("create", "repo", "bad")
            self.tusk("put", "file", "bad@master:/dir/file", "-f", "-", input=b"content")

    def tearDown(self):
        # Whatever happened, the server still answers.
        self.assertEqual(self.tusk("list", "repo").returncode, 0)

    def test_names(self):
        self.tusk_fails(1, "create", "repo", "has space", mentions="has space")
        self.tusk_fails(1, "create", "repo", "sl/ash", mentions="sl/ash")
        self.tusk_fails(1, "create", "repo", "x" * 64, mentions="longer than 63")
        self.tusk_fails(1, "create", "branch", "bad@.hidden", mentions=".hidden")
        self.tusk_fails(1, "create", "branch", "bad@a..b", mentions="..")
        self.tusk_fails(1, "start", "commit", "bad@0123456789abcdef0123456789abcdef",
                        mentions="looks like a commit id")

    def test_unknown_refs(self):
        self.tusk_fails(3, "inspect", "commit", "bad@nosuchbranch", mentions="nosuchbranch")
        self.tusk_fails(3, "inspect", "commit", "bad@ffffffffffffffffffffffffffffffff",
                        mentions="ffffffffffffffffffffffffffffffff")
        self.tusk_fails(3, "inspect", "commit", "bad@master~9", mentions="no parent")
        self.tusk_fails(3, "get", "file", "nosuchrepo@master:/x", mentions="nosuchrepo")
        self.tusk_fails(1, "inspect", "commit", "bad@master~x", mentions="master~x")
        self.tusk_fails(2, "frobnicate", "repo")
        self.tusk_fails(2, "list", "commit", "bad", "--bogus-flag")

    def test_path_escapes(self):
        self.tusk_fails(1, "put", "file", "bad@master:/../etc/passwd", "-f", "-", input=b"x",
                        mentions="'..'")
        self.tusk_fails(1, "put", "file", "bad@master:/a/../../b", "-f", "-", input=b"x", mentions="'..'")
        self.tusk_fails(1, "get", "file", "bad@master:/dir/../..", mentions="'..'")
        self.tusk_fails(1, "put", "file", "bad@master:/./x", "-f", "-", input=b"x", mentions="'.'")

    def test_file_directory_clashes(self):
        self.tusk_fails(4, "put", "file", "bad@master:/dir/file/below", "-f", "-", input=b"x",
                        mentions="/dir/file is a file")
        self.tusk_fails(4, "put", "file", "bad@master:/dir", "-f", "-", input=b"x",
                        mentions="is a directory")
        # Nothing was committed by the failed puts.
        self.assertEqual(len(self.tusk("list", "commit", "bad@master", "--json").json_lines()), 1)
        self.tusk_fails(1, "get", "file", "bad@master:/dir", mentions="is a directory")
        self.tusk_fails(3, "delete", "file", "bad@master:/nothing/here", mentions="/nothing/here")

    def test_truncated_upload(self):
        # A client killed in the middle of a large upload: the server sees the stream
        # end without its close message and commits nothing.
        before = len(self.tusk("list", "commit", "bad", "--json").json_lines())
        proc = subprocess.Popen(
            [TUSK, "--address", self.server.address, "put", "file", "bad@master:/huge", "-f", "-"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        chunk = os.urandom(1 << 20)
        for _ in range(24):
            proc.stdin.write(chunk)
        proc.stdin.flush()
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdin.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            b = self.tusk("inspect", "branch", "bad@master", "--json").json()
            if not b.get("open_commit"):
                break
            time.sleep(0.05)
        self.assertEqual(b.get("open_commit", ""), "", "the interrupted automatic commit was not dropped")
        self.tusk_fails(3, "inspect", "file", "bad@master:/huge")
        self.assertEqual(len(self.tusk("list", "commit", "bad", "--json").json_lines()), before)
        self.assertIn("ended before it was closed", self.server.log())

    def test_missing_local_file(self):
        self.tusk_fails(3, "put", "file", "bad@master:/x", "-f", self.path("does-not-exist"),
                        mentions="does-not-exist")
        self.tusk_fails(2, "put", "file", "bad@master:/x")


if __name__ == "__main__":
    unittest.main()
