"""DAGs of pipelines as Pachyderm 2.x runs them: one job per pipeline per
commit set, with every input from that set (a diamond images -> edges ->
montage, montage reading images too), and an upstream failure that blocks
what is downstream of it instead of leaking into it; `logs -f` following
jobs in time order, live while a datum runs."""

import json
import subprocess
import threading
import time

from harness import TUSK, PipelineTestCase

EDGES = {"pipeline": {"name": "edges"},
         "transform": {"cmd": ["sh", "-c", "for f in /pfs/images/*; do "
                                           "echo \"edge of $(cat $f)\" > /pfs/out/$(basename $f); done"]},
         "input": {"pfs": {"repo": "images", "glob": "/*"}}}

# Each image next to its edge: a line per image, "<image> | <edge>".
MONTAGE = {"pipeline": {"name": "montage"},
           "transform": {"cmd": ["sh", "-c", "sleep 0.3; for f in /pfs/images/*; do "
                                             "echo \"$(cat $f) | $(cat /pfs/edges/$(basename $f) "
                                             "2>/dev/null || echo missing)\" >> /pfs/out/montage; done"]},
           "input": {"cross": [{"pfs": {"repo": "images", "glob": "/"}},
                               {"pfs": {"repo": "edges", "glob": "/"}}]}}

FILTER = {"pipeline": {"name": "filter"},
          "transform": {"cmd": ["sh", "-c", "for f in /pfs/nums/*; do "
                                            "if grep -q bad $f; then echo bad input $f; exit 2; fi; "
                                            "cp $f /pfs/out/; done"]},
          "input": {"pfs": {"repo": "nums", "glob": "/*"}}}

SUM = {"pipeline": {"name": "sum"},
       "transform": {"cmd": ["sh", "-c", "cat /pfs/filter/* | awk '{s+=$1} END {print s+0}' > /pfs/out/sum"]},
       "input": {"pfs": {"repo": "filter", "glob": "/"}}}


class DagTest(PipelineTestCase):
    def create(self, spec, *extra):
        name = spec["pipeline"]["name"]
        self.tusk("create", "pipeline", "-f", self.write(name + ".json", json.dumps(spec).encode()), *extra)

    def update(self, spec, *extra):
        name = spec["pipeline"]["name"]
        return self.tusk("update", "pipeline", "-f", self.write(name + "-u.json", json.dumps(spec).encode()),
                         *extra)

    def test_diamond_runs_once_per_commit_set_on_consistent_inputs(self):
        self.tusk("create", "repo", "images")
        self.create(EDGES)
        self.create(MONTAGE)
        images = {}
        for i in range(3):
            images["img%d" % i] = "picture %d" % i
            c = self.put("images", "/img%d" % i, images["img%d" % i].encode())
            commits = self.wait_set(c)
            # One output commit per pipeline in the commit set.
            self.assertEqual(sorted(x["repo"] for x in commits), ["edges", "images", "montage"], commits)
            want = "".join("%s | edge of %s\n" % (v, v) for _, v in sorted(images.items()))
            self.assertEqual(self.files("montage"), {"montage": want})
            # montage's provenance: the images commit and the edges commit of this set.
            mont = self.head("montage")
            edges = self.head("edges")
            self.assertEqual(mont["commit_set"], c["commit_set"])
            self.assertEqual(edges["commit_set"], c["commit_set"])
            self.assertEqual(sorted((p["repo"], p["id"]) for p in mont["provenance"]),
                             [("edges", edges["id"]), ("images", c["id"])])
        # One montage job per images commit, each on that commit's set.
        jobs = self.jobs("montage")
        self.assertEqual(len(jobs), 3, jobs)
        self.assertTrue(all(j["state"] == "JOB_SUCCESS" for j in jobs), jobs)
        self.assertEqual(len(self.jobs("edges")), 3)

    def test_upstream_failure_blocks_downstream_and_keeps_its_output(self):
        self.tusk("create", "repo", "nums")
        self.create(FILTER)
        self.create(SUM)
        c = self.put("nums", "/a", b"5\n")
        self.wait_set(c)
        self.assertEqual(self.files("sum"), {"sum": "5\n"})

        c = self.put("nums", "/b", b"bad\n")
        commits = self.wait_set(c, code=1)
        self.assertEqual(sorted(x["repo"] for x in commits), ["filter", "nums", "sum"])
        failed = self.jobs("filter")[0]
        self.assertEqual(failed["state"], "JOB_FAILURE")
        blocked = self.jobs("sum")[0]
        self.assertEqual(blocked["state"], "JOB_UNRUNNABLE", blocked)
        self.assertIn("filter", blocked["reason"])
        self.assertIn(failed["id"], blocked["reason"])
        self.assertEqual(blocked["commit_set"], c["commit_set"])
        self.assertEqual(int(blocked.get("datums_processed", "0")), 0)
        # sum's output keeps its last good state.
        self.assertEqual(self.files("sum"), {"sum": "5\n"})
        self.assertIn("failed", self.tusk("inspect", "job", "sum@" + blocked["id"]).out)
        self.assertEqual(self.tusk("wait", "job", "sum@" + blocked["id"], check=False).returncode, 1)

        # Updating sum does not run it on the failed filter commit either.
        sum2 = dict(SUM, description="sum, updated")
        self.update(sum2)
        self.wait_jobs("sum", lambda jobs: len(jobs) == 3 and jobs[0]["state"] != "JOB_CREATED")
        again = self.jobs("sum")[0]
        self.assertEqual(again["state"], "JOB_UNRUNNABLE", again)
        self.assertEqual(self.files("sum"), {"sum": "5\n"})

        # Fixing filter runs it in a new commit set, and sum after it.
        fixed = json.loads(json.dumps(FILTER))
        fixed["transform"]["cmd"][2] = fixed["transform"]["cmd"][2].replace("grep -q bad", "grep -q never")
        self.update(fixed)
        self.wait_jobs("sum", lambda jobs: len(jobs) == 4 and jobs[0]["state"] == "JOB_SUCCESS", timeout=60)
        fjob = self.jobs("filter")[0]
        sjob = self.jobs("sum")[0]
        self.assertEqual(fjob["state"], "JOB_SUCCESS")
        self.assertNotEqual(fjob["commit_set"], c["commit_set"])
        self.assertEqual(sjob["commit_set"], fjob["commit_set"])
        self.assertEqual(self.files("sum"), {"sum": "5\n"})  # "bad" sums as 0
        self.put("nums", "/c", b"7\n")
        self.wait_jobs("sum", lambda jobs: len(jobs) == 5 and jobs[0]["state"] == "JOB_SUCCESS", timeout=60)
        self.assertEqual(self.files("sum"), {"sum": "12\n"})

    def test_logs_follow_is_live_and_in_time_order(self):
        self.tusk("create", "repo", "talkin")
        self.create({"pipeline": {"name": "talk"},
                     "transform": {"cmd": ["sh", "-c", "for f in /pfs/talkin/*; do n=$(basename $f); "
                                                       "echo start $n; sleep 1.5; echo end $n; "
                                                       "cp $f /pfs/out/; done"]},
                     "input": {"pfs": {"repo": "talkin", "glob": "/*"}}})
        follower = subprocess.Popen([TUSK, "--address", self.server.address, "logs", "-p", "talk", "-f"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = []  # (time, line)
        reader = threading.Thread(target=lambda: [seen.append((time.time(), line.strip()))
                                                 for line in follower.stdout], daemon=True)
        reader.start()
        try:
            names = ["f%d" % i for i in range(5)]
            for n in names:
                c = self.put("talkin", "/" + n, n.encode())
                self.wait_set(c)
            self.wait_for("every end line", lambda: sum(1 for _, l in seen if l.startswith("end ")) == 5,
                          timeout=30)
        finally:
            follower.kill()
            follower.wait()
        lines = [l for _, l in seen if l.startswith(("start ", "end "))]
        # Every datum's log, in the order the datums ran (job ids are random).
        self.assertEqual(lines, [x for n in names for x in ("start " + n, "end " + n)])
        plain = self.tusk("logs", "-p", "talk").out
        self.assertEqual(plain.count("end "), 5, plain)
        # Live: a datum's first line shows while it still runs (1.5 s before its end).
        when = {l: t for t, l in seen}
        for n in names:
            self.assertGreater(when["end " + n] - when["start " + n], 0.8, seen)

    def test_repos_of_pipelines_are_guarded(self):
        self.tusk("create", "repo", "guardin")
        self.create({"pipeline": {"name": "guarded"},
                     "transform": {"cmd": ["sh", "-c", "cp /pfs/guardin/* /pfs/out/"]},
                     "input": {"pfs": {"repo": "guardin", "glob": "/"}}})
        c = self.put("guardin", "/a", b"computed")
        self.wait_set(c)
        # Its input: refused, naming the pipeline; everything still works.
        self.tusk_fails(4, "delete", "repo", "guardin", mentions="pipeline guarded")
        # Its output: refused for writes (put, delete, start commit) and delete.
        self.tusk_fails(4, "put", "file", "guarded@master:/a", "-f", "-", input=b"by hand",
                        mentions="output of pipeline guarded")
        self.tusk_fails(4, "delete", "file", "guarded@master:/a", mentions="pipeline guarded")
        self.tusk_fails(4, "start", "commit", "guarded@master", mentions="pipeline guarded")
        self.tusk_fails(4, "delete", "repo", "guarded", mentions="delete pipeline guarded")
        self.assertEqual(self.files("guarded"), {"a": "computed"})
        c = self.put("guardin", "/b", b"more")
        self.wait_set(c)
        self.assertEqual(self.files("guarded"), {"a": "computed", "b": "more"})
        # Another branch of the output repo is the user's.
        self.tusk("put", "file", "guarded@scratch:/note", "-f", "-", input=b"mine")
        # --force writes anyway, as pachctl's does.
        self.tusk("put", "file", "guarded@master:/by-hand", "-f", "-", "--force", input=b"x")
        self.assertIn("by-hand", self.files("guarded"))


if __name__ == "__main__":
    import unittest
    unittest.main()
