"""Egress (spec egress.URL / egress.object_storage.url): after each job, the
output commit's files are copied to S3 (s3rver here), and the job is done only
once they are there. Read back with Debian's aws CLI, an independent client.
Also: an egress that keeps failing fails the job after its attempts, keeping
the output commit; an S3 outage and a tuskd crash during egress lose nothing
(the job resumes egress on restart); a job can be stopped while it egresses."""

import json
import os
import random
import shutil
import tempfile

from harness import PipelineTestCase, S3rver, Tuskd, read_tree


class EgressTest(PipelineTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        cls.s3 = S3rver(os.path.join(cls.tmp, "s3"), os.path.join(cls.tmp, "s3rver.log"))
        cls.s3.start(bucket="egress")
        cls.server = Tuskd(os.path.join(cls.tmp, "data"), os.path.join(cls.tmp, "tuskd.log"),
                           ["--egress-endpoint", cls.s3.endpoint, "--egress-attempts", "3"],
                           cls.s3.env())
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.s3.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def create(self, name, repo, egress, cmd="cp -r /pfs/%(repo)s/. /pfs/out/", glob="/"):
        spec = {"pipeline": {"name": name},
                "transform": {"cmd": ["sh", "-c", cmd % {"repo": repo}]},
                "input": {"pfs": {"repo": repo, "glob": glob}},
                "egress": egress}
        self.tusk("create", "pipeline", "-f", self.write(name + ".json", json.dumps(spec).encode()))

    def objects(self, bucket, prefix):
        """key -> bytes of every object under the prefix, read with aws s3 sync."""
        out = tempfile.mkdtemp(dir=self.tmp)
        self.s3.aws("s3", "sync", "s3://%s/%s" % (bucket, prefix), out)
        return read_tree(out)

    def job(self, pipeline):
        return self.jobs(pipeline)[0]

    def test_output_is_copied_after_each_job(self):
        self.tusk("create", "repo", "ein")
        big = random.Random(1).randbytes(20 << 20)  # > 8 MiB: a multipart upload
        files = {"a.txt": b"alpha\n", "dir/c.txt": b"gamma\n", "big.bin": big}
        for path, data in files.items():
            self.tusk("put", "file", "ein@master:/" + path, "-f", "-", input=data)
        self.create("eout", "ein", {"URL": "s3://egress/out/"})
        self.create("estore", "ein", {"object_storage": {"url": "s3://egress/store"}})
        head = self.head("ein")
        self.wait_set(head)
        for p in ("eout", "estore"):
            j = self.job(p)
            self.assertEqual(j["state"], "JOB_SUCCESS", j)
            self.assertEqual(int(j["egress"]["files"]), 3, j)
            self.assertEqual(int(j["egress"]["bytes"]), sum(len(d) for d in files.values()), j)
            self.assertEqual(j["egress"]["attempts"], 1, j)
        self.assertEqual(self.objects("egress", "out"), files)
        self.assertEqual(self.objects("egress", "store"), files)
        # The next job copies the new output, the unchanged files included.
        self.tusk("put", "file", "ein@master:/b.txt", "-f", "-", input=b"beta\n")
        self.wait_set(self.head("ein"))
        want = dict(files, **{"b.txt": b"beta\n"})
        self.assertEqual(self.objects("egress", "out"), want)
        self.assertEqual(self.job("eout")["state"], "JOB_SUCCESS")
        shown = self.tusk("inspect", "job", "eout@" + self.job("eout")["id"]).out
        self.assertIn("egress", shown)
        self.assertIn("s3://egress/out/", shown)

    def test_failing_egress_fails_the_job_and_keeps_the_output(self):
        self.tusk("create", "repo", "fin")
        self.tusk("put", "file", "fin@master:/x", "-f", "-", input=b"x\n")
        self.create("fout", "fin", {"URL": "s3://no-such-bucket/x"})
        # The commit set is done once the job has ended, egress included.
        self.tusk("wait", "commitset", self.head("fin")["commit_set"])
        j = self.job("fout")
        self.assertEqual(j["state"], "JOB_FAILURE", j)
        self.assertIn("egress to s3://no-such-bucket/x failed (3 attempts)", j["reason"])
        self.assertIn("no-such-bucket", j["egress"]["error"])
        # The output commit is good: only the copy failed.
        self.assertEqual(self.tusk("get", "file", "fout@master:/x").out, "x\n")

    def test_outage_and_crash_during_egress_lose_nothing(self):
        self.tusk("create", "repo", "oin")
        self.tusk("put", "file", "oin@master:/one", "-f", "-", input=b"1\n")
        self.create("oout", "oin", {"URL": "s3://egress/outage"})
        self.wait_set(self.head("oin"))
        self.assertEqual(self.objects("egress", "outage"), {"one": b"1\n"})
        port = self.s3.port()
        self.s3.kill9()
        try:
            # S3 is down: the job egresses, and retries.
            self.tusk("put", "file", "oin@master:/two", "-f", "-", input=b"2\n")
            j = self.wait_for("a failed egress attempt", lambda: (
                lambda j: j if j["state"] == "JOB_EGRESSING" and j.get("egress", {}).get("error")
                else None)(self.job("oout")), timeout=60)
            self.assertIn("s3://egress/outage", j["egress"]["url"])
            # A crash now: the job is still egressing when tuskd comes back.
            self.server.kill9()
            self.server.start(same_address=True)
            self.assertEqual(self.job("oout")["state"], "JOB_EGRESSING")
        finally:
            self.s3.start(port=port)
        self.wait_for("the egress to end", lambda: self.job("oout")["state"] != "JOB_EGRESSING",
                      timeout=90)
        j = self.job("oout")
        self.assertEqual(j["state"], "JOB_SUCCESS", j)
        self.assertFalse(j["egress"].get("error"), j)
        self.assertEqual(self.objects("egress", "outage"), {"one": b"1\n", "two": b"2\n"})
        # Stopped while it egresses: killed, its output commit kept.
        self.s3.kill9()
        try:
            self.tusk("put", "file", "oin@master:/three", "-f", "-", input=b"3\n")
            j = self.wait_for("egress", lambda: (
                lambda j: j if j["state"] == "JOB_EGRESSING" else None)(self.job("oout")), timeout=60)
            self.tusk("stop", "job", "oout@" + j["id"])
            j = self.job("oout")
            self.assertEqual(j["state"], "JOB_KILLED", j)
            self.assertIn("during egress", j["reason"])
            self.assertEqual(self.tusk("get", "file", "oout@master:/three").out, "3\n")
        finally:
            self.s3.start(port=port)


if __name__ == "__main__":
    import unittest
    unittest.main()
