"""Pipelines end to end: real tuskd, real tusk-runner processes started by
tuskd, real commands in the sandbox. A two-stage word count kept up to date
as files are added, changed and deleted (outputs and datum counts of every
job), a failing command (retries, logs, failed output commit, nothing
downstream, a fix that reruns only the failed datum), a runner killed with -9
in the middle of a datum, and tuskd killed with -9 in the middle of a job."""

import collections
import json
import os
import signal
import subprocess
import time

from harness import PipelineTestCase, TuskTestCase

MAP = """pipeline: {name: wc-map}
transform:
  cmd: [sh]
  stdin:
    - "for f in $(find /pfs/text -type f); do"
    - "  tr -s ' \\\\n' '\\\\n\\\\n' < $f | grep -v '^$' | sort | uniq -c |"
    - "  while read n w; do echo $n > /pfs/out/$w; done"
    - "done"
input: {pfs: {repo: text, glob: "/*"}}
parallelism_spec: {constant: 2}
"""

REDUCE = """pipeline: {name: wc-reduce}
transform:
  cmd: [sh, -c, "for f in /pfs/wc-map/*; do awk '{s+=$1} END {print s}' $f > /pfs/out/$(basename $f); done"]
input: {pfs: {repo: wc-map, glob: /}}
"""


def counts(files):
    c = collections.Counter()
    for text in files.values():
        c.update(text.split())
    return dict(c)


class PipelineTest(PipelineTestCase):
    def test_word_count_follows_changes(self):
        self.tusk("create", "repo", "text")
        self.tusk("create", "pipeline", "-f", self.write("map.yaml", MAP.encode()))
        self.tusk("create", "pipeline", "-f", self.write("reduce.yaml", REDUCE.encode()))
        # Branch provenance: each output branch names its input branch, and
        # each input branch lists what is computed from it.
        branch = lambda b: self.tusk("inspect", "branch", b, "--json").json()
        self.assertEqual(branch("wc-map@master")["provenance"], [{"repo": "text", "name": "master"}])
        self.assertEqual(branch("wc-reduce@master")["provenance"], [{"repo": "wc-map", "name": "master"}])
        self.assertEqual(branch("text@master")["subvenance"], [{"repo": "wc-map", "name": "master"}])
        self.assertEqual(branch("text@master")["provenance"], [])
        self.assertIn("Provenance: wc-map@master", self.tusk("inspect", "branch", "wc-reduce@master").out)
        text = {"a.txt": "the cat saw the dog\n", "b.txt": "the dog ran\n"}
        self.put("text", "/a.txt", text["a.txt"].encode())
        c = self.put("text", "/b.txt", text["b.txt"].encode())
        commits = self.wait_set(c)
        self.assertEqual({x["repo"] for x in commits}, {"text", "wc-map", "wc-reduce"})
        want = {w: "%d\n" % n for w, n in counts(text).items()}
        self.assertEqual(self.files("wc-reduce"), want)
        # Per-file counts, concatenated in datum (path) order.
        self.assertEqual(self.files("wc-map")["the"], "2\n1\n")
        self.check_job(self.jobs("wc-map")[0], 2, 1, 1)

        # Provenance: reduce <- map <- text, one commit set.
        red = self.head("wc-reduce")
        self.assertEqual(red["commit_set"], c["commit_set"])
        self.assertEqual([(p["repo"], p["id"]) for p in red["provenance"]],
                         [("wc-map", self.head("wc-map")["id"])])
        prov = self.tusk("inspect", "commit", "wc-reduce@master", "--provenance").out
        self.assertIn("text@" + c["id"], prov)
        sub = self.tusk("inspect", "commit", "text@master", "--subvenance").out
        self.assertIn("wc-reduce@" + red["id"], sub)

        steps = [
            ("add", "c.txt", "a cat\n", 3, 1, 2),
            ("change", "a.txt", "one dog\n", 3, 1, 2),
            ("delete", "b.txt", None, 2, 0, 2),
        ]
        for what, name, data, total, processed, skipped in steps:
            if data is None:
                self.tusk("delete", "file", "text@master:/" + name)
                del text[name]
                c = self.head("text")
            else:
                text[name] = data
                c = self.put("text", "/" + name, data.encode())
            self.wait_set(c)
            want = {w: "%d\n" % n for w, n in counts(text).items()}
            self.assertEqual(self.files("wc-reduce"), want, what)
            job = self.jobs("wc-map")[0]
            self.assertEqual(job["state"], "JOB_SUCCESS")
            self.check_job(job, total, processed, skipped)
            if what == "delete":
                self.assertEqual(job["datums_removed"], "1")
            self.check_job(self.jobs("wc-reduce")[0], 1, 1, 0)
        # Each input commit made exactly one job per stage.
        self.assertEqual(len(self.jobs("wc-map")), 5)
        self.assertEqual(len(self.jobs("wc-reduce")), 5)
        job = self.jobs("wc-map")[1]
        datums = self.tusk("list", "datum", "wc-map@" + job["id"][:10], "--json").json_lines()
        self.assertEqual([(d["state"], d["inputs"][0]["path"]) for d in datums],
                         [("DATUM_SUCCESS", "/a.txt"), ("DATUM_SKIPPED", "/b.txt"),
                          ("DATUM_SKIPPED", "/c.txt")])
        datums = datums[:1]
        self.assertIn("/a.txt", self.tusk("inspect", "datum", "wc-map@" + job["id"], datums[0]["id"][:12]).out)
        # Where the datum's time went: its input was downloaded, its output
        # uploaded, and the job's stats sum its one processed datum.
        stats = datums[0]["stats"]
        self.assertEqual(int(stats["download_bytes"]), len(text["a.txt"]))
        self.assertGreater(int(stats["upload_bytes"]), 0)
        self.assertIn("process_time", stats)
        self.assertEqual(job["stats"]["upload_bytes"], stats["upload_bytes"])

    def test_gc_keeps_datum_outputs_a_later_job_reuses(self):
        # The output repo keeps one commit: after a datum's file is deleted,
        # only the pipeline's record of its hash still names its output.
        spec = (MAP.replace("wc-map", "gc-map").replace("repo: text", "repo: gctext")
                .replace("/pfs/text", "/pfs/gctext"))
        self.tusk("create", "repo", "gctext")
        self.tusk("create", "pipeline", "-f", self.write("gcmap.yaml", spec.encode()))
        self.tusk("update", "repo", "gc-map", "--keep-last", "1")
        self.put("gctext", "/a.txt", b"alpha beta\n")
        c = self.put("gctext", "/b.txt", b"gamma delta gamma\n")
        self.wait_set(c)
        self.assertEqual(self.files("gc-map")["gamma"], "2\n")
        self.tusk("delete", "file", "gctext@master:/b.txt")
        self.wait_set(self.head("gctext"))
        self.assertEqual(self.files("gc-map"), {"alpha": "1\n", "beta": "1\n"})
        stats = self.tusk("gc", "--grace", "0s", "--json").json()
        self.assertGreater(int(stats["commits_squashed"]), 0, stats)
        # b.txt again, same content: its datum is skipped and its old output
        # reused, so that output must have survived the collection.
        c = self.put("gctext", "/b.txt", b"gamma delta gamma\n")
        self.wait_set(c)
        job = self.jobs("gc-map")[0]
        self.check_job(job, 2, 0, 2)
        self.assertEqual(self.files("gc-map"), {"alpha": "1\n", "beta": "1\n", "gamma": "2\n",
                                                "delta": "1\n"})
        self.assertIn("no problems", self.tusk("fsck").out)

    def test_cross_union_join_group(self):
        """Four pipelines over the same two repos; each datum appends the
        files it sees (relative to /pfs) as one line, so the output lists the
        datums, compared with the ones worked out by hand."""
        self.tusk("create", "repo", "txt")
        self.tusk("create", "repo", "csv")
        self.put_dir("txt", "t1", {"1.txt": "a", "2.txt": "b", "3.txt": "c"})
        csv = self.put_dir("csv", "c1", {"1.csv": "a", "2.csv": "b", "4.csv": "d"})
        show = 'cmd: [sh, -c, "echo $(find txt csv -type f 2>/dev/null | sort) >> out/datums"]'
        specs = {
            "cross": "cross: [{pfs: {repo: txt, glob: /*}}, {pfs: {repo: csv, glob: /*}}]",
            "union": "union: [{pfs: {repo: txt, glob: /*}}, {pfs: {repo: csv, glob: /*}}]",
            "join": 'join: [{pfs: {repo: txt, glob: "/(*).txt", join_on: "$1", outer_join: true}},'
                    ' {pfs: {repo: csv, glob: "/(*).csv", join_on: "$1"}}]',
            "group": 'group: [{pfs: {repo: txt, glob: "/(*).txt", group_by: "$1"}},'
                     ' {pfs: {repo: csv, glob: "/(*).csv", group_by: "$1"}}]',
        }
        for name, inp in specs.items():
            spec = "pipeline: {name: %s}\ntransform:\n  %s\ninput:\n  %s\n" % (name, show, inp)
            self.tusk("create", "pipeline", "-f", self.write(name + ".yaml", spec.encode()))

        def datums(name):
            return sorted(self.tusk("get", "file", name + "@master:/datums").out.splitlines())

        def check(want, counts):
            for name in specs:
                self.wait_jobs(name, lambda jobs: jobs and jobs[0]["state"] == "JOB_SUCCESS"
                               and jobs[0]["inputs"][1]["id"] == csv["id"] and jobs[0]["inputs"][0]["id"] == txt["id"])
                self.assertEqual(datums(name), sorted(want[name]), name)
                self.check_job(self.jobs(name)[0], *counts[name])

        txt = self.head("txt")
        check({
            "cross": ["csv/%d.csv txt/%d.txt" % (c, t) for t in (1, 2, 3) for c in (1, 2, 4)],
            "union": ["txt/1.txt", "txt/2.txt", "txt/3.txt", "csv/1.csv", "csv/2.csv", "csv/4.csv"],
            # txt is the outer side: its 3 has no match and is a datum alone;
            # csv's 4 is not.
            "join": ["csv/1.csv txt/1.txt", "csv/2.csv txt/2.txt", "txt/3.txt"],
            "group": ["csv/1.csv txt/1.txt", "csv/2.csv txt/2.txt", "txt/3.txt", "csv/4.csv"],
        }, {"cross": (9, 9, 0), "union": (6, 6, 0), "join": (3, 3, 0), "group": (4, 4, 0)})

        # A 4.txt: only the datums that involve it run; the others keep their output.
        txt = self.put("txt", "/4.txt", b"d")
        check({
            "cross": ["csv/%d.csv txt/%d.txt" % (c, t) for t in (1, 2, 3, 4) for c in (1, 2, 4)],
            "union": ["txt/1.txt", "txt/2.txt", "txt/3.txt", "txt/4.txt", "csv/1.csv", "csv/2.csv", "csv/4.csv"],
            "join": ["csv/1.csv txt/1.txt", "csv/2.csv txt/2.txt", "txt/3.txt", "csv/4.csv txt/4.txt"],
            "group": ["csv/1.csv txt/1.txt", "csv/2.csv txt/2.txt", "txt/3.txt", "csv/4.csv txt/4.txt"],
        }, {"cross": (12, 3, 9), "union": (7, 1, 6), "join": (4, 1, 3), "group": (4, 1, 3)})

    def test_failing_datum_retries_then_fix_reruns_only_it(self):
        self.tusk("create", "repo", "in")
        bad = """pipeline: {name: flaky}
transform:
  cmd: [sh, -c, "for f in /pfs/in/*; do if grep -q bad $f; then echo boom on $(basename $f); exit 3; fi; cp $f /pfs/out/; done"]
input: {pfs: {repo: in, glob: "/*"}}
datum_tries: 2
"""
        self.tusk("create", "pipeline", "-f", self.write("flaky.yaml", bad.encode()))
        after = """pipeline: {name: after}
transform: {cmd: [sh, -c, "ls /pfs/flaky > /pfs/out/list"]}
input: {pfs: {repo: flaky, glob: /}}
"""
        self.tusk("create", "pipeline", "-f", self.write("after.yaml", after.encode()))
        c = self.put_dir("in", "flaky-input", {"ok1": "fine", "ok2": "fine too", "x": "bad"})
        self.wait_set(c, code=1)
        job = self.jobs("flaky")[0]
        self.assertEqual(job["state"], "JOB_FAILURE")
        self.check_job(job, 3, 2, 0, failed=1)
        r = self.tusk("wait", "job", "flaky@" + job["id"], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("failed", r.out)
        out = self.head("flaky")
        self.assertIn("1 datum failed", out["error"])
        # The failed commit holds what succeeded; nothing downstream ran on it.
        self.assertEqual(sorted(self.files("flaky")), ["ok1", "ok2"])
        [blocked] = self.jobs("after")
        self.assertEqual(blocked["state"], "JOB_UNRUNNABLE")
        self.assertEqual(self.files("after"), {})
        datums = self.tusk("list", "datum", "flaky@" + job["id"], "--json").json_lines()
        failed = [x for x in datums if x["state"] == "DATUM_FAILED"]
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["attempts"], 2)
        self.assertIn("exited with status 3", failed[0]["error"])
        logs = self.tusk("logs", "-p", "flaky", "--datum", failed[0]["id"]).out
        self.assertEqual(logs.count("boom on x"), 2, logs)

        # A fix: only the failed datum runs; downstream runs once.
        fixed = bad.replace("grep -q bad", "grep -q nothing-is-bad")
        self.tusk("update", "pipeline", "-f", self.write("fixed.yaml", fixed.encode()))
        self.wait_jobs("flaky", lambda jobs: len(jobs) == 2 and
                       jobs[0]["state"] in ("JOB_SUCCESS", "JOB_FAILURE"), timeout=60)
        job = self.jobs("flaky")[0]
        self.assertEqual(job["state"], "JOB_SUCCESS")
        self.check_job(job, 3, 1, 2)
        self.assertEqual(self.files("flaky"), {"ok1": "fine", "ok2": "fine too", "x": "bad"})
        # The update's job started a commit set of its own, with after's
        # job in it; the input commit's set keeps its failure.
        self.assertNotEqual(job["commit_set"], c["commit_set"])
        self.wait_set({"commit_set": job["commit_set"]})
        self.wait_set(c, code=1)
        self.assertEqual(self.files("after")["list"], "ok1\nok2\nx\n")

        # update --reprocess on an unchanged input runs every datum again
        # (it once planned from the input's difference: nothing).
        self.tusk("update", "pipeline", "-f", self.write("fixed.yaml", fixed.encode()),
                  "--reprocess")
        self.wait_jobs("flaky", lambda jobs: len(jobs) == 3 and
                       jobs[0]["state"] in ("JOB_SUCCESS", "JOB_FAILURE"), timeout=60)
        self.check_job(self.jobs("flaky")[0], 3, 3, 0)

    def runner_pids(self, pipeline):
        r = subprocess.run(["pgrep", "-f", "tusk-runner .*--pipeline %s " % pipeline],
                           capture_output=True, text=True)
        return [int(p) for p in r.stdout.split()]

    def kill_runners_mid_command(self, pipeline, cmd):
        """A pipeline of `cmd` over a new repo PIPELINE-in holding /f; its
        runners are killed with -9 while the command runs (0.8 s into it).
        Returns the input commit."""
        repo = pipeline + "in"
        self.tusk("create", "repo", repo)
        spec = {"pipeline": {"name": pipeline}, "transform": {"cmd": ["sh", "-c", cmd]},
                "input": {"pfs": {"repo": repo, "glob": "/"}}}
        self.tusk("create", "pipeline", "-f", self.write(pipeline + ".json", json.dumps(spec).encode()))
        c = self.put(repo, "/f", b"x")
        self.wait_jobs(pipeline, lambda jobs: jobs and jobs[0]["state"] == "JOB_RUNNING" and
                       self.runner_pids(pipeline))
        time.sleep(0.8)  # the command is in its sleep, with partial output written
        pids = self.runner_pids(pipeline)
        self.assertTrue(pids)
        for p in pids:
            os.kill(p, signal.SIGKILL)
        return c

    def test_runner_killed_mid_datum(self):
        c = self.kill_runners_mid_command(
            "slow", "echo partial > /pfs/out/r; sleep 2; echo whole > /pfs/out/r")
        self.wait_set(c)
        job = self.jobs("slow")[0]
        self.assertEqual(job["state"], "JOB_SUCCESS")
        self.assertEqual(self.files("slow"), {"r": "whole\n"})
        self.assertIn("leasing it again", self.server.log())

    def test_tuskd_killed_mid_job_resumes(self):
        self.tusk("create", "repo", "many")
        spec = """pipeline: {name: steps}
transform:
  cmd: [sh, -c, "sleep 0.5; cp /pfs/many/* /pfs/out/"]
input: {pfs: {repo: many, glob: "/*"}}
"""
        self.tusk("create", "pipeline", "-f", self.write("steps.yaml", spec.encode()))
        c = self.put_dir("many", "many-input", {"f%d" % i: "content %d" % i for i in range(6)})
        self.wait_jobs("steps", lambda jobs: jobs and int(jobs[0].get("datums_processed", "0")) >= 2)
        self.server.kill9()
        self.server.start(same_address=True)
        self.wait_set(c)
        job = self.jobs("steps")[0]
        self.assertEqual(job["state"], "JOB_SUCCESS")
        self.check_job(job, 6, 6, 0)
        self.assertEqual(self.files("steps"), {"f%d" % i: "content %d" % i for i in range(6)})
        self.assertEqual(len(self.jobs("steps")), 1)
        self.tusk("fsck")


class OrphanedCommandTest(TuskTestCase):
    """Without a sandbox (nothing dies with the runner), a command outlives
    its runner's kill -9: it must not write into the next attempt's output."""

    put, wait_set, jobs, files, wait_jobs, runner_pids = (
        PipelineTest.put, PipelineTest.wait_set, PipelineTest.jobs, PipelineTest.files,
        PipelineTest.wait_jobs, PipelineTest.runner_pids)
    head, kill_runners_mid_command = PipelineTest.head, PipelineTest.kill_runners_mid_command

    tuskd_args = ("--sandbox", "none")

    def test_an_orphaned_command_cannot_write_into_the_next_attempt(self):
        c = self.kill_runners_mid_command(
            "orph", "echo start-$$ >> /pfs/out/r; sleep 3; echo end-$$ >> /pfs/out/r")
        self.wait_set(c)
        job = self.jobs("orph")[0]
        self.assertEqual(job["state"], "JOB_SUCCESS")
        lines = self.files("orph")["r"].splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertEqual(lines[0].split("-")[1], lines[1].split("-")[1], lines)
        self.assertIn("left running by an earlier runner", self.server.log())


if __name__ == "__main__":
    import unittest
    unittest.main()
