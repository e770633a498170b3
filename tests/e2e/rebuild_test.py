"""The object store holds the truth: delete tuskd's index (RocksDB), start it
with --rebuild-index, and every repo, branch, commit and file comes back byte
for byte; so do pipelines' ended jobs and the datums that succeeded, so the
first job after a rebuild reruns none of them. Runs on the local store and
(TUSK_E2E_STORE=s3) on s3rver."""

import hashlib
import json
import os
import re
import shutil
import unittest

from harness import PipelineTestCase, TuskTestCase


class RebuildIndexTest(TuskTestCase):

    def build_history(self):
        t = self.tusk
        t("create", "repo", "images", "--description", "pictures")
        t("create", "repo", "logs")
        t("create", "repo", "scratch")
        small = self.write("in/a.txt", b"alpha\n")
        t("put", "file", "images@master:/a.txt", "-f", small)
        # A directory of small files (one pack) and a large random file
        # (several chunks, packs of its own).
        for i in range(150):
            self.write("tree/d%d/f%03d.txt" % (i % 3, i), ("file %d\n" % i).encode() * (i + 1))
        t("put", "file", "images@master:/tree", "-f", self.path("tree"), "-r")
        big = self.write("in/big.bin", os.urandom(9 << 20) + b"\0" * (3 << 20))
        t("put", "file", "images@master:/big.bin", "-f", big)
        t("create", "branch", "images@dev", "--head", "master^")
        t("put", "file", "images@dev:/dev-only.txt", "-f", self.write("in/dev.txt", b"dev\n"))
        t("delete", "file", "images@master:/a.txt")
        t("revert", "images@master", "--to", "master^")
        # A commit with an explicit message and metadata-free finish.
        cid = t("start", "commit", "logs@master", "-m", "first logs").out.strip()
        t("put", "file", "logs@%s:/2026/11/21.log" % cid, "-f", self.write("in/l1", b"x" * 1000))
        t("finish", "commit", "logs@master")
        t("create", "branch", "logs@tmp", "--head", "master")
        t("delete", "branch", "logs@tmp")
        t("put", "file", "scratch@master:/gone.txt", "-f", small)
        t("delete", "repo", "scratch")
        # Left open: an open commit is not durable and does not come back.
        t("start", "commit", "logs@master", "-m", "left open")

    def snapshot(self):
        """Everything a user can see, as comparable data."""
        t = self.tusk
        snap = {}
        repos = sorted(r["name"] for r in t("list", "repo", "--json").json_lines())
        snap["repos"] = repos
        for repo in repos:
            snap[repo + "/inspect"] = t("inspect", "repo", repo, "--json").json()
            branches = t("list", "branch", repo, "--json").json_lines()
            for b in branches:
                b.pop("open_commit", None)  # open commits are not durable
            snap[repo + "/branches"] = sorted(branches, key=lambda b: b["name"])
            commits = [c for c in t("list", "commit", repo, "--json").json_lines()
                       if c.get("state") == "FINISHED"]
            snap[repo + "/commits"] = sorted(commits, key=lambda c: c["id"])
            for c in commits:
                ref = "%s@%s" % (repo, c["id"])
                files = t("glob", "file", ref + ":/**", "--json").json_lines()
                snap[ref + "/files"] = files
                if not files:
                    continue
                out = self.path("get", c["id"])
                shutil.rmtree(out, ignore_errors=True)
                t("get", "file", ref + ":/", "-o", out)
                for f in files:
                    if f.get("type") == "FILE":
                        with open(out + f["path"], "rb") as fh:
                            snap[ref + ":" + f["path"]] = hashlib.sha256(fh.read()).hexdigest()
        return snap

    def test_rebuild_index_restores_everything(self):
        self.build_history()
        before = self.snapshot()
        self.assertEqual(before["repos"], ["images", "logs"])
        self.assertGreaterEqual(len(before["images/commits"]), 6)

        self.server.stop()
        index = os.path.join(self.server.data_dir, "index")
        shutil.rmtree(index)
        # A new index over a store that holds data is refused, with the way out.
        with self.assertRaises(RuntimeError) as ctx:
            self.server.start()
        self.assertIn("--rebuild-index", str(ctx.exception))

        self.server.start(once=["--rebuild-index"])
        self.assertIn("rebuilt:", self.server.log())
        after = self.snapshot()
        self.assertEqual(sorted(before), sorted(after))
        for key in before:
            self.assertEqual(before[key], after[key], key)
        self.assertIn("no problems", self.tusk("fsck").out)

        # New work after the rebuild goes on from where the history ended.
        self.tusk("put", "file", "images@master:/after.txt", "-f", self.path("in/a.txt"))
        head = self.tusk("inspect", "commit", "images@master", "--json").json()
        self.assertEqual(head["parent"], before["images/branches"][1]["head"]
                         if before["images/branches"][1]["name"] == "master"
                         else before["images/branches"][0]["head"])

        # Rebuilding again (index present) keeps the old one aside.
        self.server.stop()
        self.server.start(once=["--rebuild-index"])
        kept = [d for d in os.listdir(self.server.data_dir) if d.startswith("index.old-")]
        self.assertEqual(len(kept), 1)
        self.assertEqual(self.tusk("get", "file", "images@master:/after.txt").stdout, b"alpha\n")

    def test_writes_after_a_rebuild_survive_the_next_one(self):
        # kill -9, restart (the rest of the reserved log numbers is declared
        # void), lose the index and rebuild, acknowledged puts, a clean
        # stop, lose the index again and rebuild: the puts are all there.
        t = self.tusk
        t("create", "repo", "again")
        t("put", "file", "again@master:/0.txt", "-f", self.write("in/0.txt", b"zero\n"))
        self.server.kill9()
        self.server.start()
        self.server.stop()
        shutil.rmtree(os.path.join(self.server.data_dir, "index"))
        self.server.start(once=["--rebuild-index"])
        acked = {}
        for i in range(1, 4):
            data = ("put %d\n" % i).encode()
            t("put", "file", "again@master:/%d.txt" % i, "-f", self.write("in/%d.txt" % i, data))
            acked["/%d.txt" % i] = data
        head = t("inspect", "commit", "again@master", "--json").json()["id"]
        self.server.stop()
        shutil.rmtree(os.path.join(self.server.data_dir, "index"))
        self.server.start(once=["--rebuild-index"])
        self.assertIn(" 0 never applied", self.server.log().rsplit("rebuilt:", 1)[1].splitlines()[0])
        self.assertEqual(t("inspect", "commit", "again@master", "--json").json()["id"], head)
        for path, data in acked.items():
            self.assertEqual(t("get", "file", "again@master:" + path).stdout, data)
        self.assertIn("no problems", t("fsck").out)


class PipelineRebuildTest(PipelineTestCase):
    """Pipelines across a rebuild (a tuskd of its own: its repos do not mix
    with RebuildIndexTest's)."""

    def rebuild(self, once=()):
        self.server.stop()
        shutil.rmtree(os.path.join(self.server.data_dir, "index"))
        self.server.start(once=["--rebuild-index"] + list(once))

    def test_pipeline_history_survives_a_rebuild(self):
        # Each datum's output carries a nonce: a datum run again would change it.
        t = self.tusk
        t("create", "repo", "pin")
        self.put_dir("pin", "pin0", {"f%d" % i: "in %d\n" % i for i in range(6)})
        spec = {"pipeline": {"name": "ppl"},
                "transform": {"cmd": ["sh", "-c", "for f in /pfs/pin/*; do "
                                      "(cat $f; head -c 8 /dev/urandom | od -An -tx8) "
                                      "> /pfs/out/$(basename $f); done"]},
                "input": {"pfs": {"repo": "pin", "glob": "/*"}}}
        spec_file = self.write("ppl.json", json.dumps(spec).encode())
        t("create", "pipeline", "-f", spec_file)
        self.wait_set(self.head("pin"))
        self.put_dir("pin", "pin1", {"f6": "in 6\n", "f7": "in 7\n"})
        self.wait_set(self.head("pin"))
        self.check_job(self.jobs("ppl")[0], 8, 2, 6)
        # A new salt: every datum runs again, and the old hashes are stale.
        t("update", "pipeline", "-f", spec_file, "--reprocess")
        self.wait_for("the reprocessing job", lambda: len(self.jobs("ppl")) == 3 and
                      self.jobs("ppl")[0]["state"] == "JOB_SUCCESS")
        self.check_job(self.jobs("ppl")[0], 8, 8, 0)
        before_jobs = [(j["id"], j["state"]) for j in self.jobs("ppl")]
        before = self.files("ppl")
        self.assertEqual(len(before), 8)
        # Paused, an input change makes a job that is not durable: after the
        # rebuild, a job over the heads catches up.
        t("stop", "pipeline", "ppl")
        t("delete", "file", "pin@master:/f0")

        self.rebuild()
        self.assertEqual([(j["id"], j["state"]) for j in self.jobs("ppl")][-3:], before_jobs)
        t("start", "pipeline", "ppl")
        self.wait_for("the catch-up job", lambda: len(self.jobs("ppl")) == 4 and
                      self.jobs("ppl")[0]["state"] == "JOB_SUCCESS")
        # Nothing ran again: 7 datums, all skipped; f0's output is gone.
        self.check_job(self.jobs("ppl")[0], 7, 0, 7)
        after = self.files("ppl")
        del before["f0"]
        self.assertEqual(after, before)
        # And on from there, incrementally.
        self.put_dir("pin", "pin2", {"f8": "in 8\n"})
        self.wait_set(self.head("pin"))
        self.check_job(self.jobs("ppl")[0], 8, 1, 7)
        self.assertEqual({k: v for k, v in self.files("ppl").items() if k != "f8"}, before)
        self.assertIn("no problems", t("fsck").out)

        # Job history retention: the oldest jobs go, and their going is
        # logged (a rebuild does not bring them back).
        self.server.stop()
        self.server.start(once=["--job-history", "2"])
        for i in range(9, 12):
            self.put_dir("pin", "pin%d" % i, {"f%d" % i: "in %d\n" % i})
            self.wait_set(self.head("pin"))
        kept = [j["id"] for j in self.jobs("ppl")]
        self.assertLessEqual(len(kept), 3, kept)
        # The first jobs' datums (salt 0) and f0's are no current datum's.
        with open(self.server.log_path, errors="replace") as f:
            pruned = re.search(r"pruned (\d+) jobs .* and (\d+) datum outputs", f.read())
        self.assertTrue(pruned, self.server.log())
        self.assertGreaterEqual(int(pruned.group(2)), 8, pruned.group(0))
        r = t("inspect", "job", "ppl@" + before_jobs[-1][0], check=False)
        self.assertNotEqual(r.returncode, 0, "the first job was pruned")
        gc = t("gc", "--json").json()
        self.rebuild(once=["--job-history", "2"])
        # The kept jobs, and a catch-up job that runs nothing.
        self.wait_for("the catch-up job", lambda: self.jobs("ppl")[0]["state"] == "JOB_SUCCESS"
                      and self.jobs("ppl")[0]["id"] not in kept)
        jobs = self.jobs("ppl")
        self.assertEqual([j["id"] for j in jobs[1:]], kept)
        self.check_job(jobs[0], 11, 0, 11)
        outputs = self.files("ppl")
        self.assertEqual(sorted(outputs), sorted(["f%d" % i for i in range(1, 12)]))
        self.assertEqual({k: outputs[k] for k in before}, before)
        self.assertIn("no problems", t("fsck").out)
        self.assertTrue(gc)


if __name__ == "__main__":
    unittest.main()
