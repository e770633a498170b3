"""The commands Pachyderm users reach for, end to end: stop job, delete job,
restart datum (in a running job and after it), rerun pipeline, edit
pipeline, list datum with skipped datums, list commit of a commit set, and
create pipeline from a URL holding several JSON specs."""

import http.server
import json
import threading
import time

from harness import PipelineTestCase


class PipelineCommandsTest(PipelineTestCase):
    def create(self, spec):
        name = spec["pipeline"]["name"]
        self.tusk("create", "pipeline", "-f", self.write(name + ".json", json.dumps(spec).encode()))

    def job(self, pipeline, job_id):
        return self.tusk("inspect", "job", "%s@%s" % (pipeline, job_id), "--json").json()

    def test_stop_job_delete_job_and_rerun_pipeline(self):
        self.tusk("create", "repo", "stopin")
        self.create({"pipeline": {"name": "stoppable"},
                     "transform": {"cmd": ["sh", "-c", "if [ -e /pfs/stopin/slow ]; then sleep 60; fi; "
                                                       "cp /pfs/stopin/* /pfs/out/"]},
                     "input": {"pfs": {"repo": "stopin", "glob": "/*"}}})
        self.create({"pipeline": {"name": "after-stop"},
                     "transform": {"cmd": ["sh", "-c", "ls /pfs/stoppable > /pfs/out/list"]},
                     "input": {"pfs": {"repo": "stoppable", "glob": "/"}}})
        c = self.put("stopin", "/a", b"a")
        self.wait_set(c)
        c = self.put("stopin", "/slow", b"s")
        self.wait_for("the slow job to run", lambda: self.jobs("stoppable")[0]["state"] == "JOB_RUNNING")
        job = self.jobs("stoppable")[0]
        # A running job cannot be deleted.
        self.tusk_fails(4, "delete", "job", "stoppable@" + job["id"], mentions="stop it first")
        start = time.time()
        r = self.tusk("stop", "job", "stoppable@" + job["id"][:10], "--reason", "too slow")
        self.assertIn("killed: too slow", r.out)
        self.assertLess(time.time() - start, 30)
        killed = self.job("stoppable", job["id"])
        self.assertEqual(killed["state"], "JOB_KILLED")
        # Its output commit failed with the previous files; downstream is blocked.
        commits = self.wait_set(c, code=1)
        self.assertEqual(sorted(x["repo"] for x in commits), ["after-stop", "stopin", "stoppable"])
        self.assertEqual(self.files("stoppable"), {"a": "a"})
        self.assertEqual(self.jobs("after-stop")[0]["state"], "JOB_UNRUNNABLE")
        self.tusk_fails(4, "stop", "job", "stoppable@" + job["id"], mentions="has ended")
        # Deleted: gone from list job, its datums and logs too.
        self.tusk("delete", "job", "stoppable@" + job["id"])
        self.assertNotIn(job["id"], [j["id"] for j in self.jobs("stoppable")])
        self.tusk_fails(3, "inspect", "job", "stoppable@" + job["id"])

        # The slow file goes; the next job runs and downstream with it.
        self.tusk("delete", "file", "stopin@master:/slow")
        self.wait_set(self.head("stopin"))
        self.assertEqual(self.files("after-stop"), {"list": "a\n"})
        # rerun pipeline: a new job in a new commit set; nothing changed, so
        # every datum is reused; with --reprocess every datum runs.
        r = self.tusk("rerun", "pipeline", "stoppable", "--json").json()
        self.assertEqual(r["commit_set"], r["id"])
        self.wait_set({"commit_set": r["commit_set"]})
        self.check_job(self.job("stoppable", r["id"]), 1, 0, 1)
        r = self.tusk("rerun", "pipeline", "stoppable", "--reprocess", "--json").json()
        commits = self.wait_set({"commit_set": r["commit_set"]})
        self.assertEqual(sorted(x["repo"] for x in commits), ["after-stop", "stoppable"])
        self.check_job(self.job("stoppable", r["id"]), 1, 1, 0)
        # list commit of a commit set, as pachctl takes it.
        listed = self.tusk("list", "commit", r["commit_set"], "--json").json_lines()
        self.assertEqual(sorted(x["repo"] for x in listed), ["after-stop", "stoppable"])
        self.assertIn("after-stop", self.tusk("list", "commit", "--commit-set", r["commit_set"]).out)

    def test_restart_datum_in_a_running_job_and_after_it(self):
        self.tusk("create", "repo", "rsin")
        self.create({"pipeline": {"name": "restartable"},
                     "transform": {"cmd": ["sh", "-c", "for f in /pfs/rsin/*; do n=$(basename $f); "
                                                       "if [ $n = bad ]; then echo failing on bad; exit 1; fi; "
                                                       "sleep 4; cp $f /pfs/out/; done"]},
                     "input": {"pfs": {"repo": "rsin", "glob": "/*"}},
                     "parallelism_spec": {"constant": 2}, "datum_tries": 1})
        c = self.put_dir("rsin", "rs", {"bad": "x", "good": "y"})
        # While "good" runs, "bad" has failed: it runs again in the same job.
        def bad_failed():
            jobs = self.jobs("restartable")
            if not jobs or jobs[0]["state"] != "JOB_RUNNING":
                return None
            ds = self.tusk("list", "datum", "restartable@" + jobs[0]["id"], "--json").json_lines()
            return [d for d in ds if d["state"] == "DATUM_FAILED"] and jobs[0]
        job = self.wait_for("the bad datum to fail while the good one runs", bad_failed, timeout=60)
        r = self.tusk("restart", "datum", "restartable@" + job["id"])
        self.assertIn("queued again", r.out)
        self.wait_set(c, code=1)
        ds = {d["inputs"][0]["path"]: d for d in
              self.tusk("list", "datum", "restartable@" + job["id"], "--json").json_lines()}
        self.assertEqual(ds["/bad"]["state"], "DATUM_FAILED")
        self.assertEqual(ds["/bad"]["attempts"], 2)
        self.assertEqual(ds["/good"]["state"], "DATUM_SUCCESS")
        logs = self.tusk("logs", "-p", "restartable", "--job", job["id"]).out
        self.assertEqual(logs.count("failing on bad"), 2, logs)
        # A succeeded datum is not "restarted": say so.
        self.tusk_fails(1, "restart", "datum", "restartable@" + job["id"], ds["/good"]["id"][:12],
                        mentions="did not fail")
        # After the job: a new job runs the failed datum alone.
        r = self.tusk("restart", "datum", "restartable@" + job["id"], ds["/bad"]["id"][:12], "--json").json()
        self.assertNotEqual(r["id"], job["id"])
        self.wait_set({"commit_set": r["commit_set"]}, code=1)
        self.check_job(self.job("restartable", r["id"]), 2, 0, 1, failed=1)

    def test_list_datum_shows_skipped_datums(self):
        self.tusk("create", "repo", "ldin")
        self.create({"pipeline": {"name": "lister"},
                     "transform": {"cmd": ["sh", "-c", "cp /pfs/ldin/* /pfs/out/"]},
                     "input": {"pfs": {"repo": "ldin", "glob": "/*"}}})
        self.put_dir("ldin", "ld", {"a": "1", "b": "2"})
        c = self.put("ldin", "/c", b"3")
        self.wait_set(c)
        job = self.jobs("lister")[0]
        ds = self.tusk("list", "datum", "lister@" + job["id"], "--json").json_lines()
        self.assertEqual([(d["inputs"][0]["path"], d["state"]) for d in ds],
                         [("/a", "DATUM_SKIPPED"), ("/b", "DATUM_SKIPPED"), ("/c", "DATUM_SUCCESS")])
        # A skipped datum has the id its earlier run had, and can be inspected.
        first = self.jobs("lister")[1]
        earlier = {d["inputs"][0]["path"]: d["id"] for d in
                   self.tusk("list", "datum", "lister@" + first["id"], "--json").json_lines()}
        self.assertEqual(ds[0]["id"], earlier["/a"])
        self.assertIn("SKIPPED", self.tusk("inspect", "datum", "lister@" + job["id"], ds[0]["id"][:12]).out)
        self.assertIn("SKIPPED", self.tusk("list", "datum", "lister@" + job["id"]).out)

    def test_edit_pipeline(self):
        self.tusk("create", "repo", "edin")
        self.create({"pipeline": {"name": "editable"},
                     "transform": {"cmd": ["sh", "-c", "echo v1 > /pfs/out/v"]},
                     "input": {"pfs": {"repo": "edin", "glob": "/"}}})
        c = self.put("edin", "/a", b"a")
        self.wait_set(c)
        self.assertIn("unchanged", self.tusk("edit", "pipeline", "editable", "--editor", "true").out)
        r = self.tusk("edit", "pipeline", "editable", "--reprocess", env={"EDITOR": "sed -i s/v1/v2/"})
        self.assertIn("updated pipeline editable (version 2)", r.out)
        self.wait_for("the edited pipeline's output", lambda: self.files("editable") == {"v": "v2\n"})
        # A broken edit changes nothing, and the edit is kept for another try.
        r = self.tusk_fails(1, "edit", "pipeline", "editable", "--editor", "sed -i s/transform/transfrom/",
                            mentions="transfrom")
        self.assertIn("your edit is kept in", r.err)
        self.tusk_fails(1, "edit", "pipeline", "editable", "--editor", "false", mentions="unchanged")
        info = self.tusk("inspect", "pipeline", "editable", "--json").json()
        self.assertEqual(info["version"], "2")

    def test_create_pipeline_from_a_url_with_several_json_specs(self):
        self.tusk("create", "repo", "urlin")
        specs = [{"pipeline": {"name": "url-%d" % i},
                  "transform": {"cmd": ["sh", "-c", "cp /pfs/urlin/* /pfs/out/"]},
                  "input": {"pfs": {"repo": "urlin", "glob": "/"}}} for i in range(3)]
        # Two objects one after another, then an array of one.
        body = (json.dumps(specs[0]) + "\n" + json.dumps(specs[1]) + json.dumps([specs[2]])).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/specs.json":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            url = "http://127.0.0.1:%d/specs.json" % srv.server_address[1]
            r = self.tusk("create", "pipeline", "-f", url)
            for i in range(3):
                self.assertIn("created pipeline url-%d" % i, r.out)
            self.tusk_fails(3, "create", "pipeline", "-f", url.replace("specs", "nothing"), mentions="404")
        finally:
            srv.shutdown()


if __name__ == "__main__":
    import unittest
    unittest.main()
