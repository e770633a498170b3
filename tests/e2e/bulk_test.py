"""Bulk uploads: put file -r over parallel streams, and put file --untar of tar
streams (file or stdin, compressed or not), each in one atomic commit; bad
archives leave no commit behind."""

import io
import os
import random
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

from harness import TUSK, TuskTestCase, read_tree


class BulkTest(TuskTestCase):
    def commits(self, repo):
        return self.tusk("list", "commit", "%s@master" % repo, "--json").json_lines()

    def make_tree(self, root, n):
        rng = random.Random(3)
        files = {}
        for i in range(n):
            rel = "d%d/sub%d/f%d.bin" % (i % 7, i % 3, i)
            data = rng.randbytes(rng.randint(0, 5000))
            files[rel] = data
            self.write(os.path.join(root, rel), data)
        big = rng.randbytes(3 << 20)
        files["big.bin"] = big
        self.write(os.path.join(root, "big.bin"), big)
        return files

    def check_files(self, repo, base, files):
        out = self.path("export-" + repo + base.replace("/", "_"))
        self.tusk("get", "file", "%s@master:%s" % (repo, base), "-o", out)
        got = read_tree(out)
        self.assertEqual(sorted(got), sorted(files))
        for k, v in files.items():
            self.assertEqual(got[k], v, k)

    def test_parallel_put_is_one_commit(self):
        files = self.make_tree("tree", 500)
        self.tusk("create", "repo", "par")
        r = self.tusk("put", "file", "-r", "par@master:/in", "-f", self.path("tree"),
                      "--parallel", "4", "--json").json()
        self.assertEqual(int(r["files"]), len(files))
        self.assertEqual(r["commit"]["state"], "FINISHED")
        self.assertEqual(len(self.commits("par")), 1)
        self.check_files("par", "/in", files)
        # Into a commit the user opened: written there, left open.
        self.tusk("start", "commit", "par@master")
        self.tusk("put", "file", "-r", "par@master:/again", "-f", self.path("tree"), "--parallel", "3")
        self.assertEqual(self.tusk("inspect", "branch", "par@master", "--json").json()["open_commit"] != "", True)
        self.tusk("finish", "commit", "par@master")
        self.check_files("par", "/again", files)
        self.tusk_fails(2, "put", "file", "-r", "par@master:/", "-f", self.path("tree"), "--parallel", "0")

    def staged(self, ref):
        return self.tusk("list", "file", ref, "--staged", "--json").json_lines()

    def interrupted_put(self, repo, tree, n, batch):
        """A put -r --parallel 2 into a new repo that stops after some batches
        landed: /in/zz is a file in the branch head, and the tree has a
        directory zz/ (a file/directory clash, sorted last). Returns the
        tree's files and the command."""
        files = self.make_tree(tree, n)
        self.tusk("create", "repo", repo)
        self.tusk("put", "file", "%s@master:/in/zz" % repo, "-f", "-", input=b"a file")
        self.write(tree + "/zz/last.txt", b"sorted last")
        cmd = ("put", "file", "-r", "%s@master:/in" % repo, "-f", self.path(tree), "--parallel", "2",
               "--batch", str(batch))
        self.tusk_fails(4, *cmd, mentions="Run the same command again to resume")
        return files, cmd

    def test_interrupted_put_resumes(self):
        files, cmd = self.interrupted_put("res", "rtree", 300, 25)
        branch = self.tusk("inspect", "branch", "res@master", "--json").json()
        self.assertNotEqual(branch["open_commit"], "")
        staged = {f["path"]: f for f in self.staged("res@master")}
        # At least the first batch landed; the clashing file did not. How many
        # of the others landed depends on which of the two parallel batches
        # was in flight when the clash stopped the put.
        self.assertGreaterEqual(len(staged), 25)
        self.assertLessEqual(len(staged), len(files))
        self.assertNotIn("/in/zz/last.txt", staged)
        # One staged file changes locally (same size): it must be sent again.
        changed = sorted(p for p in staged if p != "/in/big.bin" and staged[p]["size_bytes"] != "0")[0]
        rel = changed[len("/in/"):]
        files[rel] = bytes(b ^ 0xFF for b in files[rel])
        self.write(os.path.join("rtree", rel), files[rel])
        # Fix the clash and run the same command again.
        os.rename(self.path("rtree", "zz"), self.path("rtree", "zz_ok"))
        files["zz_ok/last.txt"] = b"sorted last"
        r = self.tusk(*cmd, "--json").json()
        self.assertEqual(int(r["skipped_files"]), len(staged) - 1)
        self.assertEqual(int(r["files"]), len(files) - len(staged) + 1)
        self.assertEqual(r["commit"]["state"], "FINISHED")  # put started it, so put finishes it
        self.assertEqual(r["commit"]["id"], branch["open_commit"])
        files["zz"] = b"a file"
        self.check_files("res", "/in", files)
        self.assertEqual(len(self.commits("res")), 2)

        # A commit the user opened: a rerun sends nothing and leaves it open.
        self.tusk("start", "commit", "res@master")
        up = ("put", "file", "-r", "res@master:/copy", "-f", self.path("rtree"))
        self.tusk(*up)
        self.assertEqual(len(self.staged("res@master")), len(files) - 1)
        r = self.tusk(*up)
        self.assertIn("resuming", r.err)
        self.assertIn("skipped %d files" % (len(files) - 1), r.out)
        self.assertIn("(open)", r.out)
        self.tusk("finish", "commit", "res@master")
        del files["zz"]
        self.check_files("res", "/copy", files)
        self.tusk_fails(4, "list", "file", "res@master", "--staged", mentions="no open commit")

    def bg(self, *args, stdin=None):
        return subprocess.Popen([TUSK, "--address", self.server.address] + [str(a) for a in args],
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_for(self, what, pred, timeout=30):
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                self.fail("timed out waiting for " + what)
            time.sleep(0.05)

    def test_an_unrelated_put_waits_for_an_interrupted_put(self):
        # An interrupted put -r --parallel leaves its commit open with the
        # batches that arrived. A put of another file on the branch must not
        # join (and finish) that commit: it waits, and gets its own commit
        # once the first put is resumed and done.
        files, cmd = self.interrupted_put("owned", "itree", 120, 10)
        owned = self.tusk("inspect", "branch", "owned@master", "--json").json()["open_commit"]
        self.assertNotEqual(owned, "")
        other = self.bg("put", "file", "owned@master:/other.txt", "-f", self.write("other.txt", b"other\n"))
        os.rename(self.path("itree", "zz"), self.path("itree", "zz_ok"))
        files["zz_ok/last.txt"] = b"sorted last"
        r = self.tusk(*cmd, "--json").json()
        self.assertEqual(r["commit"]["id"], owned)
        out, err = other.communicate(timeout=60)
        self.assertEqual(other.returncode, 0, err)
        self.assertNotIn(b"(open)", out)
        # The upload's commit holds all of its files and nothing else.
        got = {f["path"] for f in self.tusk("glob", "file", "owned@%s:/**" % owned, "--json").json_lines()
               if f.get("type") == "FILE"}
        self.assertEqual(got, {"/in/" + p for p in files} | {"/in/zz"})
        head = self.tusk("inspect", "commit", "owned@master", "--json").json()
        self.assertEqual(head["parent"], owned)
        self.assertEqual(self.tusk("get", "file", "owned@master:/other.txt").stdout, b"other\n")

    def test_a_put_does_not_join_another_clients_automatic_commit(self):
        self.tusk("create", "repo", "auto")
        # Client A streams a file from a pipe: its automatic commit stays open.
        a = self.bg("put", "file", "auto@master:/big.bin", "-f", "-", stdin=subprocess.PIPE)
        a.stdin.write(os.urandom(1 << 20))
        a.stdin.flush()
        self.wait_for("A's automatic commit", lambda: self.tusk(
            "inspect", "branch", "auto@master", "--json").json().get("open_commit", "") != "")
        b = self.bg("put", "file", "auto@master:/b.txt", "-f", self.write("b.txt", b"from b\n"))
        a.kill()  # A never finishes: its commit is dropped
        a.wait()
        out, err = b.communicate(timeout=60)
        self.assertEqual(b.returncode, 0, err)
        self.assertNotIn(b"(open)", out)
        self.assertEqual(self.tusk("get", "file", "auto@master:/b.txt").stdout, b"from b\n")
        self.tusk_fails(3, "inspect", "file", "auto@master:/big.bin")
        # Many concurrent single-file puts: each gets a commit of its own.
        def put(i):
            return self.tusk("put", "file", "auto@master:/many/%d" % i, "-f", "-",
                             input=b"%d\n" % i, check=False)
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(put, range(48)))
        for r in results:
            self.assertEqual(r.returncode, 0, r.err)
            self.assertNotIn("(open)", r.out)
        listed = self.tusk("glob", "file", "auto@master:/many/*", "--json").json_lines()
        self.assertEqual(len(listed), 48)
        self.assertEqual(len(self.commits("auto")), 49)

    def test_untar_file_and_stdin(self):
        files = {"a/one.txt": b"one\n", "a/b/two.bin": bytes(range(256)) * 100, "top": b""}
        for mode, name in (("w:gz", "t.tgz"), ("w", "t.tar")):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode=mode) as t:
                for rel, data in files.items():
                    info = tarfile.TarInfo("./" + rel)
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
                link = tarfile.TarInfo("a/link")
                link.type = tarfile.SYMTYPE
                link.linkname = "one.txt"
                t.addfile(link)
            self.write(name, buf.getvalue())
        self.tusk("create", "repo", "tar")
        r = self.tusk("put", "file", "tar@master:/x", "--untar", "-f", self.path("t.tgz"))
        self.assertIn("skipped 1 archive entries", r.err)
        self.check_files("tar", "/x", files)
        with open(self.path("t.tar"), "rb") as f:
            self.tusk("put", "file", "tar@master:/y", "--untar", "-f", "-", input=f.read())
        self.check_files("tar", "/y", files)
        self.assertEqual(len(self.commits("tar")), 2)

    def test_bad_archives_leave_no_commit(self):
        self.tusk("create", "repo", "bad")
        self.tusk("put", "file", "bad@master:/keep", "-f", "-", input=b"keep")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for name in ("ok.txt", "../escape.txt"):
                info = tarfile.TarInfo(name)
                info.size = 5
                t.addfile(info, io.BytesIO(b"hello"))
        self.tusk_fails(1, "put", "file", "bad@master:/", "--untar", "-f", "-", input=buf.getvalue(),
                        mentions="climbs out of the destination")
        good = io.BytesIO()
        with tarfile.open(fileobj=good, mode="w") as t:
            for i in range(20):
                info = tarfile.TarInfo("f%d" % i)
                info.size = 100000
                t.addfile(info, io.BytesIO(os.urandom(100000)))
        truncated = good.getvalue()[:1000000]
        self.tusk_fails(1, "put", "file", "bad@master:/", "--untar", "-f", "-", input=truncated)
        self.tusk_fails(1, "put", "file", "bad@master:/", "--untar", "-f", "-", input=b"not a tar")
        self.assertEqual(len(self.commits("bad")), 1)
        self.tusk_fails(2, "put", "file", "-r", "bad@master:/", "--untar", "-f", "-")
        self.tusk("fsck")
