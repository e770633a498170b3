"""Crash test: kill -9 tuskd at random moments during puts and finishes.

After every restart: every commit the client saw finished is intact, every
finished commit holds only whole batches (no partial commit is visible), an
open commit holds only whole puts, and `tusk fsck` passes.
"""

import hashlib
import os
import random
import shutil
import subprocess
import threading
import time
import unittest

from harness import TUSK, TuskTestCase

FILES_PER_BATCH = 8
ITERATIONS = 10


def batch_content(k, i):
    return hashlib.sha256(b"%d/%d" % (k, i)).digest() * (1 + (k * 7 + i) % 200)


class Workload(threading.Thread):
    """Writes batches until told to stop or the server dies: alternately a
    `put file -r` (an automatic commit) and start / put / finish."""

    def __init__(self, test, address, first_batch):
        super().__init__(daemon=True)
        self.test = test
        self.address = address
        self.k = first_batch
        self.acked = {}  # commit id -> batches it must contain
        self.stop = threading.Event()

    def run_tusk(self, *args, input=None):
        return subprocess.run([TUSK, "--address", self.address] + list(args), input=input,
                              capture_output=True, timeout=60)

    def make_batch(self, k):
        d = os.path.join(self.test.tmp, "batches", str(k))
        os.makedirs(d, exist_ok=True)
        for i in range(FILES_PER_BATCH):
            with open(os.path.join(d, "f%d" % i), "wb") as f:
                f.write(batch_content(k, i))
        return d

    def run(self):
        import json
        while not self.stop.is_set():
            k = self.k
            self.k += 1
            d = self.make_batch(k)
            if k % 2 == 0:
                r = self.run_tusk("put", "file", "-r", "crash@master:/b%d" % k, "-f", d, "--json")
                if r.returncode != 0:
                    return
                self.acked[json.loads(r.stdout)["commit"]["id"]] = k
            else:
                r = self.run_tusk("start", "commit", "crash@master")
                if r.returncode != 0:
                    return
                r = self.run_tusk("put", "file", "-r", "crash@master:/b%d" % k, "-f", d)
                if r.returncode != 0:
                    return
                r = self.run_tusk("finish", "commit", "crash@master", "--json")
                if r.returncode != 0:
                    return
                self.acked[json.loads(r.stdout)["id"]] = k


class CrashTest(TuskTestCase):
    def check_commit(self, commit):
        """A finished commit holds whole batches only, with the right bytes."""
        files = self.tusk("glob", "file", "crash@%s:/*/*" % commit["id"], "--json").json_lines()
        by_batch = {}
        for f in files:
            _, b, name = f["path"].split("/")
            by_batch.setdefault(int(b[1:]), []).append((name, f))
        for k, entries in by_batch.items():
            self.assertEqual(len(entries), FILES_PER_BATCH,
                             "commit %s holds a partial batch %d" % (commit["id"], k))
            for name, f in entries:
                i = int(name[1:])
                self.assertEqual(int(f["size_bytes"]), len(batch_content(k, i)))
        # Spot-check content of one file per commit.
        if by_batch:
            k = max(by_batch)
            got = self.tusk("get", "file", "crash@%s:/b%d/f0" % (commit["id"], k)).stdout
            self.assertEqual(got, batch_content(k, 0))
        return set(by_batch)

    def test_kill9_during_puts_and_finishes(self):
        self.tusk("create", "repo", "crash")
        rng = random.Random(int(os.environ.get("TUSK_CRASH_SEED", "1234")))
        acked = {}
        next_batch = 0
        for it in range(ITERATIONS):
            w = Workload(self, self.server.address, next_batch)
            w.start()
            # Some work lands in every round (a loaded machine is slow), then
            # the crash comes at a random moment of what follows.
            deadline = time.time() + 60
            while not w.acked and w.is_alive() and time.time() < deadline:
                time.sleep(0.01)
            self.assertTrue(w.acked, "no commit was acknowledged in round %d" % it)
            time.sleep(rng.uniform(0.05, 0.6))
            self.server.kill9()
            w.stop.set()
            w.join(timeout=60)
            self.assertFalse(w.is_alive())
            acked.update(w.acked)
            next_batch = w.k + 1
            self.server.start()

            # An open commit left by the crash holds whole puts: finish it and check.
            branch = self.tusk("inspect", "branch", "crash@master", "--json").json()
            if branch.get("open_commit"):
                self.tusk("finish", "commit", "crash@master")
            commits = self.tusk("list", "commit", "crash@master", "--json").json_lines()
            ids = {c["id"] for c in commits}
            for cid, k in acked.items():
                self.assertIn(cid, ids, "acknowledged commit %s (batch %d) lost" % (cid, k))
            prev = None
            for c in reversed(commits):
                self.assertEqual(c["state"], "FINISHED")
                batches = self.check_commit(c)
                if prev is not None:
                    self.assertTrue(prev <= batches, "history lost a batch")
                prev = batches
            for cid, k in acked.items():
                c = next(c for c in commits if c["id"] == cid)
                self.assertIn(k, self.check_commit(c))
            fsck = self.tusk("fsck", "--json", check=False)
            self.assertEqual(fsck.returncode, 0, fsck.out + fsck.err)
        print("%d commits acknowledged over %d crashes" % (len(acked), ITERATIONS))
        self.assertGreater(len(acked), ITERATIONS, "the workload barely ran")

        # After all those crashes, the object store rebuilds the same history:
        # every commit the index knows, with the same tree, and nothing else
        # (a change whose log was written just before a crash but whose index
        # write never happened was voided at the next start).
        before = {c["id"]: c for c in self.tusk("list", "commit", "crash", "--json").json_lines()}
        head_before = self.tusk("inspect", "branch", "crash@master", "--json").json()["head"]
        self.server.stop()
        shutil.rmtree(os.path.join(self.server.data_dir, "index"))
        self.server.start(once=["--rebuild-index"])
        after = {c["id"]: c for c in self.tusk("list", "commit", "crash", "--json").json_lines()}
        self.assertEqual(sorted(after), sorted(before))
        for cid, c in before.items():
            self.assertEqual(after[cid].get("root"), c.get("root"))
            self.assertEqual(after[cid].get("parent"), c.get("parent"))
        head_after = self.tusk("inspect", "branch", "crash@master", "--json").json()["head"]
        self.assertEqual(head_after, head_before)
        for cid in acked:
            self.check_commit(after[cid])
        fsck = self.tusk("fsck", "--json", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.out + fsck.err)

    def test_kill9_during_large_put(self):
        self.tusk("create", "repo", "bigcrash")
        self.tusk("put", "file", "bigcrash@master:/small", "-f", "-", input=b"small")
        data = os.urandom(48 << 20)
        p = self.write("big.bin", data)
        proc = subprocess.Popen([TUSK, "--address", self.server.address, "put", "file",
                                 "bigcrash@master:/big", "-f", p],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.25)
        self.server.kill9()
        proc.wait(timeout=30)
        self.server.start()
        commits = self.tusk("list", "commit", "bigcrash@master", "--json").json_lines()
        if len(commits) == 2:  # the put finished before the kill: then it is whole
            self.assertEqual(self.tusk("get", "file", "bigcrash@master:/big").stdout, data)
        else:
            self.assertEqual(len(commits), 1)
            self.tusk_fails(3, "inspect", "file", "bigcrash@master:/big")
        self.assertEqual(self.tusk("get", "file", "bigcrash@master:/small").stdout, b"small")
        self.tusk("fsck")


if __name__ == "__main__":
    unittest.main()
