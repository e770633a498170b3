"""End-to-end PFS tests: a real tuskd driven by the real tusk CLI."""

import hashlib
import os
import random
import unittest

from harness import TuskTestCase


class PfsEndToEnd(TuskTestCase):
    def test_files_history_diff_revert(self):
        t = self.tusk
        t("create", "repo", "e2e", "--description", "end to end")
        rng = random.Random(7)
        binary = bytes(rng.getrandbits(8) for _ in range(70000)) + b"\x00\xff" * 100
        big = rng.randbytes(9 * 1024 * 1024 + 12345)  # several chunks
        tree = {
            "top.txt": b"top level\n",
            "nested/a/b/c/deep.txt": b"deep\n",
            "nested/a/sibling.bin": binary,
            "empty.dat": b"",
            "unicodé/日本語 ファイル.txt": "héllo wörld\n".encode(),
            "big/blob.bin": big,
        }
        src = self.path("src")
        for rel, data in tree.items():
            self.write(os.path.join("src", rel), data)
        r = t("put", "file", "-r", "e2e@master:/", "-f", src, "--json").json()
        self.assertEqual(int(r["files"]), len(tree))
        first = r["commit"]["id"]
        self.assertEqual(r["commit"]["state"], "FINISHED")

        for rel, data in tree.items():
            got = t("get", "file", "e2e@master:/" + rel).stdout
            self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest(), rel)
        info = t("inspect", "file", "e2e@master:/big/blob.bin", "--json").json()
        self.assertEqual(int(info["size_bytes"]), len(big))
        self.assertGreater(int(info["chunk_count"]), 3)
        self.assertEqual(t("inspect", "file", "e2e@master:/empty.dat", "--json").json()["size_bytes"], "0")

        # The whole tree back into a directory, byte for byte.
        out = self.path("out")
        t("get", "file", "e2e@master:/", "-o", out)
        for rel, data in tree.items():
            with open(os.path.join(out, rel), "rb") as f:
                self.assertEqual(f.read(), data, rel)

        # Listing and globbing.
        names = [f["path"] for f in t("list", "file", "e2e@master:/nested/a", "--json").json_lines()]
        self.assertEqual(names, ["/nested/a/b", "/nested/a/sibling.bin"])
        globbed = [f["path"] for f in t("glob", "file", "e2e@master:/**/*.txt", "--json").json_lines()]
        self.assertEqual(sorted(globbed), sorted(["/top.txt", "/nested/a/b/c/deep.txt",
                                                  "/unicodé/日本語 ファイル.txt"]))

        # Append, delete: each its own commit.
        t("put", "file", "e2e@master:/top.txt", "-f", "-", "--append", input=b"more\n")
        self.assertEqual(t("get", "file", "e2e@master:/top.txt").stdout, b"top level\nmore\n")
        t("delete", "file", "e2e@master:/nested/a/b")
        self.tusk_fails(3, "inspect", "file", "e2e@master:/nested/a/b/c/deep.txt")

        # Modify the middle of the big file: only a few chunks are new.
        changed = bytearray(big)
        changed[4 * 1024 * 1024: 4 * 1024 * 1024 + 1000] = b"\x01" * 1000
        p = self.write("changed.bin", bytes(changed))
        r = t("put", "file", "e2e@master:/big/blob.bin", "-f", p, "--json").json()
        self.assertLess(int(r["new_bytes"]), 6 * 1024 * 1024)

        # History, newest first; refs with ^ and ~N.
        commits = t("list", "commit", "e2e@master", "--json").json_lines()
        self.assertEqual(len(commits), 4)
        self.assertEqual(commits[-1]["id"], first)
        for newer, older in zip(commits, commits[1:]):
            self.assertEqual(newer["parent"], older["id"])
        self.assertEqual(t("inspect", "commit", "e2e@master~3", "--json").json()["id"], first)
        self.assertEqual(t("inspect", "commit", "e2e@master^^^", "--json").json()["id"], first)
        self.assertEqual(t("get", "file", "e2e@master~3:/top.txt").stdout, b"top level\n")
        self.assertEqual(t("get", "file", "e2e@master~2:/top.txt").stdout, b"top level\nmore\n")
        self.assertEqual(t("list", "commit", "e2e@master", "-n", "2", "--json").out.count("\n"), 2)

        # Diff against the parent and against the first commit.
        diff = t("diff", "commit", "e2e@master", "--json").json_lines()
        self.assertEqual([(d["change"], d["path"]) for d in diff], [("MODIFIED", "/big/blob.bin")])
        diff = t("diff", "commit", "e2e@master", "e2e@" + first, "--json").json_lines()
        self.assertEqual(sorted((d["change"], d["path"]) for d in diff), sorted([
            ("MODIFIED", "/big/blob.bin"), ("MODIFIED", "/top.txt"),
            ("DELETED", "/nested/a/b/c/deep.txt")]))
        human = t("diff", "commit", "e2e@master", "e2e@" + first).out
        self.assertIn("- /nested/a/b/c/deep.txt", human)

        # Branch from an old commit: shares data, diverges independently.
        t("create", "branch", "e2e@old", "--head", first)
        t("put", "file", "e2e@old:/only-on-old", "-f", "-", input=b"old\n")
        self.assertEqual(t("get", "file", "e2e@old:/nested/a/b/c/deep.txt").stdout, b"deep\n")
        self.tusk_fails(3, "get", "file", "e2e@master:/only-on-old")
        branches = {b["name"]: b for b in t("list", "branch", "e2e", "--json").json_lines()}
        self.assertEqual(set(branches), {"master", "old"})

        # Revert: a new commit whose tree equals the first commit's.
        r = t("revert", "e2e@master", "--to", first, "--json").json()
        self.assertEqual(r["root"], t("inspect", "commit", "e2e@" + first, "--json").json()["root"])
        self.assertEqual(r["parent"], commits[0]["id"])
        self.assertEqual(t("get", "file", "e2e@master:/big/blob.bin").stdout, big)
        self.assertEqual(t("diff", "commit", "e2e@master", "e2e@" + first).out, "")

        fsck = t("fsck", "--json").json_lines()
        self.assertEqual(int(fsck[-1]["problems"]), 0)
        self.assertGreaterEqual(int(fsck[-1]["commits"]), 6)

    def test_several_files_and_flags_a_command_does_not_take(self):
        t = self.tusk
        t("create", "repo", "many")
        a = self.write("many/a.txt", b"alpha\n")
        b = self.write("many/b.txt", b"beta\n")
        r = t("put", "file", "many@master:/in/", "-f", a, "-f", b, "--json").json()
        self.assertEqual(int(r["files"]), 2)
        self.assertEqual(t("get", "file", "many@master:/in/a.txt").stdout, b"alpha\n")
        self.assertEqual(t("get", "file", "many@master:/in/b.txt").stdout, b"beta\n")
        self.assertEqual(len(t("list", "commit", "many", "--json").json_lines()), 1)
        # A flag the command does not take is bad usage, before any call.
        self.tusk_fails(2, "list", "repo", "--untar", "--staged", mentions="does not take --untar")
        self.tusk_fails(2, "create", "repo", "x", "--description", "a", "--description", "b",
                        mentions="given more than once")
        self.tusk_fails(2, "put", "file", "many@master:/c.txt", "-f", a, "-f", a,
                        mentions="would both be")

    def test_open_commit_workflow(self):
        t = self.tusk
        t("create", "repo", "open")
        cid = t("start", "commit", "open@master", "-m", "two files").out.strip()
        self.assertRegex(cid, "^[0-9a-f]{32}$")
        t("put", "file", "open@master:/one", "-f", "-", input=b"1")
        t("put", "file", "open@" + cid + ":/two", "-f", "-", input=b"2")
        # Not readable before it is finished, and the branch has no head yet.
        self.tusk_fails(3, "get", "file", "open@master:/one")
        info = t("inspect", "commit", "open@" + cid, "--json").json()
        self.assertEqual(info["state"], "OPEN")
        self.tusk_fails(4, "start", "commit", "open@master")
        done = t("finish", "commit", "open@master", "--json").json()
        self.assertEqual(done["id"], cid)
        self.assertEqual(done["file_count"], "2")
        self.assertEqual(t("get", "file", "open@master:/two").stdout, b"2")
        # Writing to a finished commit is an error.
        self.tusk_fails(4, "put", "file", "open@" + cid + ":/three", "-f", "-", input=b"3")
        self.tusk_fails(4, "finish", "commit", "open@" + cid)

    def test_repo_and_branch_admin(self):
        t = self.tusk
        t("create", "repo", "adm")
        self.tusk_fails(4, "create", "repo", "adm")
        repos = [r["name"] for r in t("list", "repo", "--json").json_lines()]
        self.assertIn("adm", repos)
        t("put", "file", "adm@master:/f", "-f", "-", input=b"x")
        t("create", "branch", "adm@dev", "--head", "master")
        t("delete", "branch", "adm@dev")
        self.tusk_fails(3, "inspect", "branch", "adm@dev")
        t("start", "commit", "adm@master")
        self.tusk_fails(4, "delete", "repo", "adm")
        t("delete", "repo", "adm", "--force")
        self.tusk_fails(3, "inspect", "repo", "adm")
        self.assertIn("tusk", t("version").out)
        v = t("version", "--json").json()
        self.assertEqual(v["client"]["version"], v["server"]["version"])
        self.assertEqual(t("--help").returncode, 0)
        self.assertIn("Usage: tusk put file", t("put", "file", "--help").out)


if __name__ == "__main__":
    unittest.main()
