"""Pachyderm's spec fields beyond the basics, end to end: projects, err_cmd
and accept_return_code, reprocess_spec, salt, a pinned input commit,
empty_files, update in the spec, and the fields tusk has not (spout,
service...) refused with what to use instead. Also the specs of Pachyderm's
tutorials as their users write them."""

import json
import time

from harness import PipelineTestCase


class PachydermSpecTest(PipelineTestCase):
    def create(self, spec, *extra, check=True):
        name = spec["pipeline"]["name"]
        path = self.write(name + ".json", json.dumps(spec).encode())
        return self.tusk("create", "pipeline", "-f", path, *extra, check=check)

    def spec(self, name, repo, script, glob="/*", **extra):
        s = {"pipeline": {"name": name}, "transform": {"cmd": ["sh", "-c", script]},
             "input": {"pfs": {"repo": repo, "glob": glob}}}
        s.update(extra)
        return s

    def test_fields_tusk_has_not_are_refused_with_what_to_use(self):
        self.tusk("create", "repo", "refin")
        base = self.spec("refused", "refin", "true")
        cases = [
            ({"pipeline": {"name": "refused", "project": {"name": "research"}}},
             "pipeline.project.name: project 'research': tusk has no projects"),
            ({"spout": {"overwrite": True}}, "a Kafka source"),
            ({"service": {"internal_port": 8888, "external_port": 30888}}, "long-lived services"),
            ({"s3_out": True}, "s3_out"),
            ({"reprocess_spec": "sometimes"}, "reprocess_spec: 'sometimes'"),
            ({"transform": {"cmd": ["true"], "dockerfile": {"path": "Dockerfile"}}}, "build it"),
            ({"transform": {"cmd": ["true"], "accept_return_code": [300]}}, "accept_return_code"),
            ({"input": {"pfs": {"repo": "refin", "glob": "/", "s3": True}}}, "input.pfs.s3"),
            ({"input": {"pfs": {"repo": "refin", "glob": "/", "project": {"name": "x"}}}},
             "input.pfs.project.name"),
            ({"input": {"pfs": {"repo": "refin", "glob": "/", "commit": "nope"}}}, "input.pfs.commit"),
            ({"egress_typo": 1}, "egress_typo"),
        ]
        for change, mention in cases:
            s = dict(base)
            s.update(change)
            self.tusk_fails(1, "create", "pipeline", "-f", self.write("r.json", json.dumps(s).encode()),
                            mentions=mention)
        self.tusk_fails(3, "inspect", "pipeline", "refused")
        # The project "default" is every repo's.
        ok = dict(base, pipeline={"name": "refused", "project": {"name": "default"}},
                  input={"pfs": {"repo": "refin", "glob": "/", "project": {"name": "default"}}})
        self.create(ok)

    def test_err_cmd_recovers_and_accept_return_code_succeeds(self):
        self.tusk("create", "repo", "ecin")
        s = self.spec("recovering", "ecin", "for f in /pfs/ecin/*; do if grep -q bad $f; then exit 7; fi; "
                                            "cp $f /pfs/out/; done; exit 3",
                      datum_tries=2)
        s["transform"]["err_cmd"] = ["sh"]
        s["transform"]["err_stdin"] = ["echo handled the failure", "exit 0"]
        s["transform"]["accept_return_code"] = [3]
        self.create(s)
        c = self.put_dir("ecin", "ec", {"good": "g", "bad": "bad"})
        self.wait_set(c)  # exit 0: the job succeeded
        job = self.jobs("recovering")[0]
        self.assertEqual(job["state"], "JOB_SUCCESS")
        self.assertEqual(job.get("datums_recovered"), "1")
        self.assertEqual(self.files("recovering"), {"good": "g"})
        ds = {d["inputs"][0]["path"]: d for d in
              self.tusk("list", "datum", "recovering@" + job["id"], "--json").json_lines()}
        self.assertEqual(ds["/bad"]["state"], "DATUM_RECOVERED")
        self.assertEqual(ds["/bad"]["attempts"], 1)  # recovered: no second try
        self.assertIn("exited with status 7", ds["/bad"]["error"])
        self.assertEqual(ds["/good"]["state"], "DATUM_SUCCESS")
        self.assertIn("handled the failure", self.tusk("logs", "-p", "recovering").out)

    def test_reprocess_spec_salt_pinned_commit_and_empty_files(self):
        self.tusk("create", "repo", "rpin")
        self.create(self.spec("everyjob", "rpin", "cp /pfs/rpin/* /pfs/out/", reprocess_spec="every_job"))
        self.create(self.spec("sizes", "rpin", "for f in /pfs/rpin/*; do wc -c < $f > /pfs/out/$(basename $f); done",
                              input={"pfs": {"repo": "rpin", "glob": "/*", "empty_files": True}}))
        self.put("rpin", "/a", b"hello")
        c = self.put("rpin", "/b", b"world!")
        self.wait_set(c)
        self.check_job(self.jobs("everyjob")[0], 2, 2, 0)  # every job runs every datum
        self.assertEqual(self.files("sizes"), {"a": "0\n", "b": "0\n"})  # names, no content
        # A new salt makes every datum new.
        s = self.spec("sizes", "rpin", "for f in /pfs/rpin/*; do wc -c < $f > /pfs/out/$(basename $f); done",
                      input={"pfs": {"repo": "rpin", "glob": "/*", "empty_files": True}}, salt="2")
        # update: true in the spec updates, as with pachctl.
        s["update"] = True
        r = self.create(s)
        self.assertIn("updated pipeline sizes (version 2)", r.out)
        self.wait_jobs("sizes", lambda jobs: len(jobs) == 3 and jobs[0]["state"] == "JOB_SUCCESS")
        self.check_job(self.jobs("sizes")[0], 2, 2, 0)
        # A pinned commit: always that commit, and the branch's new commits
        # do not trigger it.
        pinned = self.head("rpin")["id"]
        self.tusk("create", "repo", "live")
        self.create({"pipeline": {"name": "pinned"},
                     "transform": {"cmd": ["sh", "-c", "ls /pfs/rpin /pfs/live > /pfs/out/seen"]},
                     "input": {"cross": [{"pfs": {"repo": "rpin", "glob": "/", "commit": pinned}},
                                         {"pfs": {"repo": "live", "glob": "/"}}]}})
        self.put("rpin", "/later", b"x")
        c = self.put("live", "/l", b"l")
        self.wait_set(c)
        self.assertEqual(self.files("pinned")["seen"], "/pfs/live:\nl\n\n/pfs/rpin:\na\nb\n")
        prov = {p["repo"]: p["id"] for p in self.head("pinned")["provenance"]}
        self.assertEqual(prov["rpin"], pinned)
        # Its job at create, and live's commit's; none for rpin's new commit.
        self.assertEqual([j["trigger"]["repo"] for j in self.jobs("pinned")], ["live", "rpin"])

    def test_datum_sets(self):
        self.tusk("create", "repo", "dsin")
        bad = self.spec("sets", "dsin", "true", datum_set_spec={"size_bytes": 1000})
        self.tusk_fails(1, "create", "pipeline", "-f", self.write("ds.json", json.dumps(bad).encode()),
                        mentions="datum_set_spec.size_bytes")
        # Five datums per lease: each runner runs whole sets of five
        # consecutive datums (the queue is in datum order).
        s = self.spec("sets", "dsin", "echo ran; cp /pfs/dsin/* /pfs/out/",
                      datum_set_spec={"number": 5}, parallelism_spec={"constant": 2})
        self.create(s)
        c = self.put_dir("dsin", "ds", {"f%02d" % i: str(i) for i in range(20)})
        self.wait_set(c)
        job = self.jobs("sets")[0]
        self.check_job(job, 20, 20, 0)
        self.assertEqual(len(self.files("sets")), 20)
        runner = {}
        for line in self.tusk("logs", "-p", "sets").out.splitlines():
            if line.startswith("--- job"):
                datum, on = line.split(" datum ")[1].split()[0], line.split(" on ")[1].split()[0]
                runner[datum] = on
        order = [d["id"][:12] for d in
                 self.tusk("list", "datum", "sets@" + job["id"], "--json").json_lines()]
        self.assertEqual(len(order), 20)
        for i, d in enumerate(order):
            self.assertEqual(runner[d], runner[order[i - i % 5]], (i, runner))

    def ticks(self, repo):
        r = self.tusk("list", "file", repo + "@master:/", "--json", check=False)
        if r.returncode == 3:  # no tick yet
            return []
        self.assertEqual(r.returncode, 0, r.err)
        return sorted(f["path"].lstrip("/") for f in r.json_lines())

    def test_cron_input_ticks_and_a_restart_neither_repeats_nor_floods(self):
        self.create({"pipeline": {"name": "clock"},
                     "transform": {"cmd": ["sh", "-c", "ls /pfs/tick > /pfs/out/seen"]},
                     "input": {"cron": {"name": "tick", "spec": "@every 2s"}}})
        self.create({"pipeline": {"name": "latest"},
                     "transform": {"cmd": ["sh", "-c", "ls /pfs/tick > /pfs/out/seen"]},
                     "input": {"cron": {"name": "tick", "spec": "*/2 * * * * *", "overwrite": True}}})
        self.wait_for("three ticks", lambda: len(self.ticks("clock_tick")) >= 3, timeout=30)
        self.wait_for("jobs on them", lambda: len([j for j in self.jobs("clock")
                                                   if j["state"] == "JOB_SUCCESS"]) >= 2, timeout=30)
        # Files named by the tick's time, two seconds apart.
        names = self.ticks("clock_tick")
        self.assertRegex(names[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # overwrite: the latest tick alone.
        self.wait_for("an overwriting tick", lambda: len(self.ticks("latest_tick")) == 1
                      and self.jobs("latest"), timeout=30)
        # A restart: no tick twice, and no burst for the time tuskd was down.
        self.server.stop()
        time.sleep(5)
        self.server.start(same_address=True)
        before = len(self.ticks("clock_tick"))
        self.wait_for("ticks again", lambda: len(self.ticks("clock_tick")) >= before + 2, timeout=30)
        commits = self.tusk("list", "commit", "clock_tick@master", "--json").json_lines()
        meta = [c["metadata"]["state/cron/tick"] for c in commits]
        self.assertEqual(len(meta), len(set(meta)), meta)  # no tick twice
        # One tick for the 5 s down (the latest missed), not one per 2 s.
        self.assertLessEqual(len(self.ticks("clock_tick")), before + 3)
        self.assertEqual(len(self.ticks("latest_tick")), 1)
        self.tusk_fails(1, "create", "pipeline", "-f", self.write("badcron.json", json.dumps(
            {"pipeline": {"name": "badcron"}, "transform": {"cmd": ["true"]},
             "input": {"cron": {"name": "t", "spec": "61 * * * *"}}}).encode()),
            mentions="input.cron.spec")

    def test_branch_triggers(self):
        self.tusk("create", "repo", "trig")
        count = "ls /pfs/trig | wc -l > /pfs/out/n"
        self.create({"pipeline": {"name": "every3"}, "transform": {"cmd": ["sh", "-c", count]},
                     "input": {"pfs": {"repo": "trig", "branch": "staging", "glob": "/",
                                       "trigger": {"branch": "master", "commits": 3}}}})
        self.create({"pipeline": {"name": "big"}, "transform": {"cmd": ["sh", "-c", count]},
                     "input": {"pfs": {"repo": "trig", "branch": "big", "glob": "/",
                                       "trigger": {"branch": "master", "size": "1000"}}}})
        for i in range(2):
            self.put("trig", "/f%d" % i, b"x" * 100)
        time.sleep(2)  # the trigger is looked at twice a second
        self.assertEqual(self.jobs("every3"), [])
        c = self.put("trig", "/f2", b"x" * 100)
        staging = lambda: self.tusk("inspect", "branch", "trig@staging", "--json", check=False)
        self.wait_for("staging to follow master", lambda: staging().returncode == 0 and
                      staging().json().get("head") == c["id"], timeout=20)
        self.wait_jobs("every3", lambda jobs: jobs and jobs[0]["state"] == "JOB_SUCCESS")
        self.assertEqual(self.files("every3"), {"n": "3\n"})
        self.assertEqual(self.jobs("big"), [])  # 300 bytes of 1000
        c = self.put("trig", "/large", b"y" * 800)
        self.wait_jobs("big", lambda jobs: jobs and jobs[0]["state"] == "JOB_SUCCESS", timeout=20)
        self.assertEqual(self.files("big"), {"n": "4\n"})
        self.assertEqual(len(self.jobs("every3")), 1)  # one commit of three
        # A trigger without a condition, or following its own branch, is refused.
        for trigger, mention in [({"branch": "master"}, "needs a condition"),
                                 ({"branch": "staging", "commits": 1}, "own branch")]:
            self.tusk_fails(1, "create", "pipeline", "-f", self.write("bt.json", json.dumps(
                {"pipeline": {"name": "badtrig"}, "transform": {"cmd": ["true"]},
                 "input": {"pfs": {"repo": "trig", "branch": "staging", "glob": "/",
                                   "trigger": trigger}}}).encode()), mentions=mention)

    def test_pachyderm_tutorial_specs(self):
        # The beginner tutorial's edges and montage, as its users write them
        # (images and commands are theirs; tusk runs the commands here).
        self.tusk("create", "repo", "images")
        edges = {
            "pipeline": {"name": "edges", "project": {"name": "default"}},
            "description": "A pipeline that performs image edge detection by using the OpenCV library.",
            "transform": {"cmd": ["sh", "-c", "cp /pfs/images/* /pfs/out/"], "image": "pachyderm/opencv:1.0"},
            "input": {"pfs": {"repo": "images", "glob": "/*", "project": {"name": "default"}}},
            "parallelism_spec": {"constant": 1},
            "resource_requests": {"memory": "256Mi", "cpu": 1},
            "datum_tries": 3,
            "enable_stats": True,
            "metadata": {"labels": {"team": "vision"}},
        }
        montage = {
            "pipeline": {"name": "montage"},
            "description": "A pipeline that combines images from the `images` and `edges` repositories "
                           "into a montage.",
            "input": {"cross": [{"pfs": {"glob": "/", "repo": "images"}},
                                {"pfs": {"glob": "/", "repo": "edges"}}]},
            "transform": {"cmd": ["sh"], "image": "dpokidov/imagemagick:7.1.0-23",
                          "stdin": ["ls /pfs/images /pfs/edges | sort > /pfs/out/montage.txt"]},
            "datum_timeout": "120s",
            "reprocess_spec": "until_success",
        }
        # Both in one file, one object after the other.
        path = self.write("tutorial.json", (json.dumps(edges, indent=2) + "\n" + json.dumps(montage, indent=2)).encode())
        r = self.tusk("create", "pipeline", "-f", path)
        self.assertIn("created pipeline montage", r.out)
        c = self.put("images", "/liberty.png", b"png")
        commits = self.wait_set(c)
        self.assertEqual(sorted(x["repo"] for x in commits), ["edges", "images", "montage"])
        self.assertIn("liberty.png", self.files("montage")["montage.txt"])


if __name__ == "__main__":
    import unittest
    unittest.main()
