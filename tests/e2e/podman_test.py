"""The podman runner backend end to end (tuskd --runners podman): real pods
made by `podman kube play` from the pipeline's pod spec, real images built
here from Debian's packages with mmdebstrap (the user's image holds
python3-minimal and a script, nothing of tusk; another holds a static
busybox alone, no libc), real runc containers.

Checked: a script baked into the image and a shell pipeline process datums
(outputs, provenance, datums skipped on the next commit); transform.user and
working_dir; secrets as a variable and as files (--secrets-dir);
resource_limits.memory enforced (the datum fails with OOMKilled); an image
that does not exist shows ErrImagePull/ImagePullBackOff in list and inspect
pipeline; a runner pod removed mid-datum hands its datum back at once; an
update replaces the pods (new version) and an idle pipeline's pods go after
the grace period; user code has no route to tuskd. podman, runc and
mmdebstrap are required: a machine without them fails this test.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import images
from harness import PipelineTestCase


def podman(*args, env, check=True):
    return subprocess.run(["podman"] + list(args), env=env, capture_output=True, text=True,
                          check=check, timeout=120)


class PodmanTest(PipelineTestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = images.podman_env()
        cls.tusk_image = images.tusk_image(cls.env)
        cls.python = images.python_image(cls.env)
        cls.secrets = tempfile.mkdtemp(prefix="tusk-e2e-secrets-")
        os.makedirs(os.path.join(cls.secrets, "db"))
        with open(os.path.join(cls.secrets, "db", "password"), "w") as f:
            f.write("hunter2")
        with open(os.path.join(cls.secrets, "db", "user"), "w") as f:
            f.write("admin")
        os.chmod(cls.secrets, 0o755)
        for p in ("db", "db/password", "db/user"):
            os.chmod(os.path.join(cls.secrets, p), 0o755 if p == "db" else 0o644)
        cls.tuskd_args = ("--runners", "podman", "--runner-image", cls.tusk_image,
                          "--secrets-dir", cls.secrets, "--runner-idle-grace", "3s")
        os.environ["CONTAINERS_CONF"] = cls.env["CONTAINERS_CONF"]  # for tuskd's podman
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.secrets, ignore_errors=True)

    def pods(self, pipeline):
        # This tuskd's pods only (tusk-<owner>-<pipeline>-v<version>-<index>),
        # not those of other tests sharing podman.
        out = podman("pod", "ps", "--format", "{{.Name}}", env=self.env).stdout.split()
        mine = re.compile(r"^tusk-[0-9a-f]{6}-%s-v[0-9]+-[0-9]+$" % re.escape(pipeline))
        return [p for p in out if mine.match(p)]

    def pipeline(self, name):
        return self.tusk("inspect", "pipeline", name, "--json").json()

    def test_images_process_datums(self):
        self.tusk("create", "repo", "words")
        spec = {
            "pipeline": {"name": "count"},
            "transform": {"image": self.python, "cmd": ["python3", "/count.py", "/pfs/words"],
                          "user": "1234:1234", "working_dir": "/tmp"},
            "input": {"pfs": {"repo": "words", "glob": "/*"}},
            "parallelism_spec": {"constant": 2},
        }
        self.tusk("create", "pipeline", "-f", self.write("count.json", json.dumps(spec).encode()))
        shell = """pipeline: {name: shout}
transform:
  image: %s
  cmd: [sh, -c, "for f in /pfs/count/*; do tr a-z A-Z < $f > /pfs/out/$(basename $f); done"]
input: {pfs: {repo: count, glob: /}}
""" % self.python
        self.tusk("create", "pipeline", "-f", self.write("shout.yaml", shell.encode()))
        c = self.put_dir("words", "w1", {"a": "one two three", "b": "four five"})
        self.wait_set(c)
        self.assertEqual(self.files("count"), {"a": "3 words uid=1234 cwd=/tmp\n",
                                               "b": "2 words uid=1234 cwd=/tmp\n"})
        self.assertEqual(self.files("shout")["a"], "3 WORDS UID=1234 CWD=/TMP\n")
        head = self.head("count")
        prov = {(p["repo"], p["id"]) for p in head.get("provenance", [])}
        self.assertIn(("words", c["id"]), prov, head)
        info = self.pipeline("count")
        self.assertEqual(info["runners"]["backend"], "podman")
        self.assertIn("image", info["sandbox"])
        # The next commit runs only the new datum.
        c2 = self.put("words", "/c", b"six seven eight nine")
        self.wait_set(c2)
        self.check_job(self.jobs("count")[0], 3, 1, 2)
        self.assertEqual(self.files("count")["c"], "4 words uid=1234 cwd=/tmp\n")

    def test_an_image_without_libc(self):
        # One static busybox: no libc, no loader. The agent is static too.
        busybox = images.busybox_image(self.env)
        self.tusk("create", "repo", "bytes")
        spec = {
            "pipeline": {"name": "sizes"},
            "transform": {"image": busybox, "cmd": [
                "/bin/busybox", "sh", "-c",
                "for f in /pfs/bytes/*; do /bin/busybox wc -c < $f > /pfs/out/$(/bin/busybox "
                "basename $f); done; /bin/busybox ls /lib > /pfs/out/lib 2>&1 || true"]},
            "input": {"pfs": {"repo": "bytes", "glob": "/*"}},
        }
        self.tusk("create", "pipeline", "-f", self.write("sizes.json", json.dumps(spec).encode()))
        c = self.put("bytes", "/f", b"12345")
        self.wait_set(c)
        out = self.files("sizes")
        self.assertEqual(out["f"].strip(), "5")
        self.assertIn("No such file", out["lib"])

    def test_secrets_and_no_route_to_tuskd(self):
        self.tusk("create", "repo", "sin")
        port = self.server.address.split(":")[1]
        probe = ("import os, socket\n"
                 "s = socket.socket()\n"
                 "s.settimeout(2)\n"
                 "try:\n"
                 "    s.connect(('127.0.0.1', %s)); r = 'reached tuskd'\n"
                 "except OSError as e:\n"
                 "    r = 'no route: ' + type(e).__name__\n"
                 "open('/pfs/out/net', 'w').write(r)\n"
                 "open('/pfs/out/env', 'w').write(os.environ.get('DB_PASSWORD', '-') + ' ' + "
                 "os.environ.get('TUSK_TOKEN', '-'))\n"
                 "open('/pfs/out/file', 'w').write(open('/etc/db/user').read())\n"
                 "open('/pfs/out/tuskd', 'w').write(str(os.path.exists('/tusk/tuskd')))\n") % port
        spec = {
            "pipeline": {"name": "secret"},
            "transform": {"image": self.python, "cmd": ["python3", "-c", probe],
                          "secrets": [{"name": "db", "key": "password", "env_var": "DB_PASSWORD"},
                                      {"name": "db", "mount_path": "/etc/db"}]},
            "input": {"pfs": {"repo": "sin", "glob": "/"}},
        }
        self.tusk("create", "pipeline", "-f", self.write("secret.json", json.dumps(spec).encode()))
        c = self.put("sin", "/x", b"x")
        self.wait_set(c)
        out = self.files("secret")
        self.assertEqual(out["env"], "hunter2 -")
        self.assertEqual(out["file"], "admin")
        self.assertTrue(out["net"].startswith("no route"), out["net"])
        self.assertEqual(out["tuskd"], "False")

    def test_memory_limit_is_enforced(self):
        self.tusk("create", "repo", "min")
        spec = {
            "pipeline": {"name": "hog"},
            "transform": {"image": self.python,
                          "cmd": ["python3", "-c", "x = bytearray(300 << 20); print(len(x))"]},
            "input": {"pfs": {"repo": "min", "glob": "/"}},
            "resource_limits": {"memory": "64Mi"},
            "datum_tries": 1,
        }
        self.tusk("create", "pipeline", "-f", self.write("hog.json", json.dumps(spec).encode()))
        c = self.put("min", "/x", b"x")
        self.wait_set(c, code=1)
        job = self.jobs("hog")[0]
        self.assertEqual(job["state"], "JOB_FAILURE")
        datums = self.tusk("list", "datum", "hog@" + job["id"], "--json").json_lines()
        self.assertEqual(len(datums), 1)
        self.assertIn("OOMKilled", datums[0]["error"])
        self.assertIn("64 MiB", datums[0]["error"])

    def test_missing_image_is_visible(self):
        self.tusk("create", "repo", "bin")
        spec = """pipeline: {name: noimage}
transform: {image: "localhost/no-such-image:1", cmd: ["true"]}
input: {pfs: {repo: bin, glob: /}}
"""
        self.tusk("create", "pipeline", "-f", self.write("noimage.yaml", spec.encode()))
        self.put("bin", "/x", b"x")
        info = self.wait_for("the pull failure", lambda: (
            lambda p: p if p.get("runners", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
            else None)(self.pipeline("noimage")))
        self.assertIn("no-such-image", info["runners"]["message"])
        listed = self.tusk("list", "pipeline").out
        self.assertRegex(listed, r"noimage\s+1\s+CRASHING\s+0/1 (ErrImagePull|ImagePullBackOff)")
        self.assertIn("Runner trouble:", self.tusk("inspect", "pipeline", "noimage").out)
        # Without an image, podman refuses the spec at once and says who would run it.
        r = self.tusk_fails(1, "create", "pipeline", "-f", self.write("plain.yaml", b"""
pipeline: {name: plain}
transform: {cmd: ["true"]}
input: {pfs: {repo: bin, glob: /}}
"""))
        self.assertIn("transform.image is required", r.err)
        self.assertIn("--runners local", r.err)
        self.tusk("delete", "pipeline", "noimage")
        self.wait_for("its pods to go", lambda: not self.pods("noimage"))

    def test_pod_removed_mid_datum_and_update_and_idle(self):
        self.tusk("create", "repo", "sl")
        spec = {
            "pipeline": {"name": "slow"},
            "transform": {"image": self.python,
                          "cmd": ["sh", "-c", "sleep 4; echo v1 > /pfs/out/r"]},
            "input": {"pfs": {"repo": "sl", "glob": "/"}},
        }
        self.tusk("create", "pipeline", "-f", self.write("slow.json", json.dumps(spec).encode()))
        c = self.put("sl", "/x", b"x")
        pod = self.wait_for("a running datum", lambda: self.pods("slow") and any(
            d["state"] == "DATUM_RUNNING" for d in self.tusk(
                "list", "datum", "slow@" + self.jobs("slow")[0]["id"], "--json").json_lines())
            and self.pods("slow"))[0]
        removed = time.time()
        podman("pod", "rm", "--force", "--time", "0", pod, env=self.env)
        # Handed back when the pod went, not after the 20 s lease timeout.
        self.wait_for("the datum handed back", lambda: "ended while running datum" in
                      self.server.log(), timeout=15)
        self.assertLess(time.time() - removed, 15)
        self.wait_set(c)
        self.assertEqual(self.files("slow"), {"r": "v1\n"})

        # An update: version 2's pods replace version 1's.
        spec["transform"]["cmd"] = ["sh", "-c", "echo v2 > /pfs/out/r"]
        self.tusk("update", "pipeline", "-f", self.write("slow2.json", json.dumps(spec).encode()),
                  "--reprocess")
        self.wait_jobs("slow", lambda jobs: len(jobs) == 2 and jobs[0]["state"] == "JOB_SUCCESS",
                       timeout=60)
        self.assertEqual(self.files("slow"), {"r": "v2\n"})
        self.assertTrue(all("-slow-v2-" in p for p in self.pods("slow")), self.pods("slow"))
        # Idle past the grace period (3 s here): no pod left.
        self.wait_for("the idle pipeline's pods to go", lambda: not self.pods("slow") and
                      self.pipeline("slow")["runners"].get("desired", 0) == 0, timeout=30)


if __name__ == "__main__":
    unittest.main()
