"""Deleting commits and repos, retention, and garbage collection, on the local
store and (TUSK_E2E_STORE=s3) on s3rver: what nothing references is deleted
from the object store, what is shared or still in use stays."""

import os
import shutil
import unittest

from harness import TuskTestCase


def tree_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


class GcTest(TuskTestCase):

    def store_bytes(self):
        """Bytes the object store holds (s3rver keeps objects as files too)."""
        if self.s3:
            return tree_bytes(self.s3.data_dir)
        return tree_bytes(os.path.join(self.server.data_dir, "objects"))

    def gc(self):
        return self.tusk("gc", "--grace", "0s", "--json").json()

    def test_repo_delete_frees_what_is_not_shared(self):
        t = self.tusk
        t("create", "repo", "gca")
        t("create", "repo", "gcb")
        unique = self.write("gc1/unique.bin", os.urandom(20 << 20))
        shared = self.write("gc1/shared.bin", os.urandom(4 << 20))
        small = self.write("gc1/small.txt", b"shared small file\n")
        t("put", "file", "gca@master:/unique.bin", "-f", unique)
        t("put", "file", "gca@master:/shared.bin", "-f", shared)
        t("put", "file", "gca@master:/small.txt", "-f", small)
        t("put", "file", "gcb@master:/copy.bin", "-f", shared)
        t("put", "file", "gcb@master:/small.txt", "-f", small)
        before = self.store_bytes()
        t("delete", "repo", "gca")
        stats = self.gc()
        after = self.store_bytes()
        freed = before - after
        self.assertGreater(int(stats.get("packs_deleted", 0)) + int(stats.get("packs_rewritten", 0)), 0)
        self.assertGreaterEqual(freed, 19 << 20, stats)
        self.assertLess(freed, 21 << 20, stats)
        # The shared content survives.
        with open(shared, "rb") as f:
            self.assertEqual(t("get", "file", "gcb@master:/copy.bin").stdout, f.read())
        self.assertEqual(t("get", "file", "gcb@master:/small.txt").stdout, b"shared small file\n")
        self.assertIn("no problems", t("fsck").out)
        # The rest is gone: the same content is new again.
        out = t("put", "file", "gcb@master:/unique.bin", "-f", unique).out
        self.assertIn("20.0 MiB new", out)

    def test_delete_commit(self):
        t = self.tusk
        t("create", "repo", "dc")
        ids = []
        for i in range(3):
            f = self.write("dc/v%d" % i, os.urandom(1 << 20))
            t("put", "file", "dc@master:/data.bin", "-f", f)
            ids.append(t("inspect", "commit", "dc@master", "--json").json()["id"])
        r = self.tusk_fails(4, "delete", "commit", "dc@" + ids[1], mentions="child commit")
        self.tusk_fails(3, "delete", "commit", "dc@" + "0" * 32)
        out = t("delete", "commit", "dc@master").out
        self.assertIn(ids[1], out)  # master moved back
        self.assertEqual(t("inspect", "commit", "dc@master", "--json").json()["id"], ids[1])
        with open(self.path("dc/v1"), "rb") as f:
            self.assertEqual(t("get", "file", "dc@master:/data.bin").stdout, f.read())
        self.tusk_fails(3, "inspect", "commit", "dc@" + ids[2])
        stats = self.gc()
        self.assertGreaterEqual(int(stats.get("bytes_deleted", 0)), 1 << 20)
        self.assertIn("no problems", t("fsck").out)

    def test_open_commit_survives_gc(self):
        t = self.tusk
        t("create", "repo", "oc")
        cid = t("start", "commit", "oc@master").out.strip()
        data = os.urandom(3 << 20)
        t("put", "file", "oc@%s:/staged.bin" % cid, "-f", self.write("oc/staged.bin", data))
        t("put", "file", "oc@%s:/small.txt" % cid, "-f", self.write("oc/small.txt", b"tiny\n"))
        self.gc()
        t("finish", "commit", "oc@master")
        self.assertEqual(t("get", "file", "oc@master:/staged.bin").stdout, data)
        self.assertEqual(t("get", "file", "oc@master:/small.txt").stdout, b"tiny\n")
        self.assertIn("no problems", t("fsck").out)

    def small_pack_count(self):
        """Packs under 1 MiB in the object store."""
        root = self.s3.data_dir if self.s3 else os.path.join(self.server.data_dir, "objects")
        n = 0
        for d, _, files in os.walk(root):
            for f in files:
                if (f.endswith(".pack") or f.endswith(".pack._S3rver_object")) and \
                        os.path.getsize(os.path.join(d, f)) < (1 << 20):
                    n += 1
        return n

    def test_small_packs_are_merged(self):
        t = self.tusk
        t("create", "repo", "micro")
        for i in range(30):
            t("put", "file", "micro@master:/m/%02d.txt" % i, "-f",
              self.write("micro/%d" % i, b"record %d\n" % i))
        before = self.small_pack_count()
        # Strict log mode (S3): a log pack per commit; shipped (local): one
        # per batch shipped every 100 ms.
        self.assertGreaterEqual(before, 30 if self.s3 else 8)
        stats = self.gc()
        after = self.small_pack_count()
        # All merged into one, plus (shipped mode) the log pack that gc's own
        # checkpoint shipped, newer than the collection's start.
        self.assertLessEqual(after, 1 if self.s3 else 2, stats)
        self.assertGreaterEqual(int(stats.get("packs_rewritten", 0)) + int(stats.get("packs_deleted", 0)),
                                before - 2)
        for i in (0, 17, 29):
            self.assertEqual(t("get", "file", "micro@%s:/m/%02d.txt" % ("master", i)).stdout,
                             b"record %d\n" % i)
        first = t("list", "commit", "micro@master", "--json").json_lines()[-1]["id"]
        self.assertEqual(t("get", "file", "micro@%s:/m/00.txt" % first).stdout, b"record 0\n")
        self.assertIn("no problems", t("fsck").out)

    def test_retention_squashes_old_commits(self):
        t = self.tusk
        t("create", "repo", "stream")
        t("update", "repo", "stream", "--keep-last", "3")
        self.assertIn("last 3 commits", t("inspect", "repo", "stream").out)
        versions = []
        for i in range(6):
            data = os.urandom(1 << 20)
            versions.append(data)
            t("put", "file", "stream@master:/latest.bin", "-f", self.write("st/%d" % i, data))
            t("put", "file", "stream@master:/log/%d.txt" % i, "-f", self.write("st/l%d" % i, b"%d\n" % i))
        before = [c["id"] for c in t("list", "commit", "stream@master", "--json").json_lines()]
        self.assertEqual(len(before), 12)
        stats = self.gc()
        self.assertEqual(int(stats["commits_squashed"]), 9)
        commits = t("list", "commit", "stream@master", "--json").json_lines()
        self.assertEqual([c["id"] for c in commits], before[:3])
        self.assertEqual(commits[-1].get("parent", ""), "")
        self.assertEqual(commits[-1]["metadata"]["squashed_commits"], "9")
        # The head's files are all there; older versions of latest.bin are gone.
        self.assertEqual(t("get", "file", "stream@master:/latest.bin").stdout, versions[-1])
        names = sorted(f["path"] for f in t("glob", "file", "stream@master:/log/*", "--json").json_lines())
        self.assertEqual(names, ["/log/%d.txt" % i for i in range(6)])
        self.assertGreaterEqual(int(stats["bytes_deleted"]), 4 << 20)
        self.assertIn("no problems", t("fsck").out)

        # The index rebuilt from the object store (checkpoint + later logs)
        # shows the same history.
        self.server.stop()
        shutil.rmtree(os.path.join(self.server.data_dir, "index"))
        self.server.start(once=["--rebuild-index"])
        again = t("list", "commit", "stream@master", "--json").json_lines()
        self.assertEqual(again, commits)
        self.assertEqual(t("get", "file", "stream@master:/latest.bin").stdout, versions[-1])
        t("update", "repo", "stream", "--keep-all")
        self.assertIn("all history", t("inspect", "repo", "stream").out)


if __name__ == "__main__":
    unittest.main()
