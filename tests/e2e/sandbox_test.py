"""The local runners' sandbox contains user code: a pipeline tries each escape
a probe found (read /etc/shadow, remount a host directory, reach tuskd over
the network, see the host's home directories and tuskd's data, fork 300
processes, hold capabilities, run as root on the host), and each is stopped;
a symlink out of /pfs/out fails its datum; an attempt past its memory limit
fails with an OOM reason; a pipeline that asks for the network gets it, and
inspect pipeline says how its code is contained."""

import os
import shutil
import tempfile
import time

from harness import TuskTestCase

ESCAPES = r"""pipeline: {name: escape}
input: {pfs: {repo: INPUT, glob: "/*"}}
resource_limits: {memory: 256Mi, processes: 64}
transform:
  cmd: [sh]
  stdin:
    - "cd /pfs/out"
    - "sleep 2.718"
    - "id -u > uid"
    - "grep CapEff /proc/self/status > caps"
    - "cat /etc/shadow > shadow 2>&1; echo $? >> shadow"
    - "mount -o remount,bind,rw /usr > remount 2>&1; echo $? >> remount"
    - "python3 -c 'import socket,sys; s=socket.create_connection((\"127.0.0.1\", int(sys.argv[1])), 3); print(\"connected\")' PORT > net 2>&1; echo $? >> net"
    - "ls / > root_dir; ls DATA > data_dir 2>&1; echo $? >> data_dir"
    - "(for i in $(seq 300); do sleep 3 & done; wait) > fork 2>&1; echo $? >> fork"
    - "true"
"""

LEAK = """pipeline: {name: leak}
input: {pfs: {repo: INPUT, glob: "/*"}}
datum_tries: 1
transform: {cmd: [sh, -c, "ln -s /etc/passwd /pfs/out/passwd"]}
"""

HOG = """pipeline: {name: hog}
input: {pfs: {repo: INPUT, glob: "/*"}}
datum_tries: 1
resource_limits: {memory: 32Mi}
transform: {cmd: [python3, -c, "x = bytearray(300 << 20); print(len(x))"]}
"""

NETWORK = """pipeline: {name: online}
input: {pfs: {repo: INPUT, glob: "/*"}}
transform:
  network: true
  cmd: [python3, -c, "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 3); open('/pfs/out/net', 'w').write('connected')", "PORT"]
"""


class SandboxTest(TuskTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.port = cls.server.address.rsplit(":", 1)[1]

    def run_pipeline(self, name, spec, code=0, during=None):
        """Runs pipeline `name` over an input repo of its own (a commit set
        holds every job its input commit triggers); `during()` runs while
        the job does."""
        repo = "in-" + name
        self.tusk("create", "repo", repo)
        self.tusk("put", "file", repo + "@master:/a", "-f", "-", input=b"x")
        spec = spec.replace("PORT", self.port).replace("DATA", os.path.realpath(self.server.data_dir))
        self.tusk("create", "pipeline", "-f", self.write(name + ".yaml", spec.replace("INPUT", repo).encode()))
        if during:
            during()
        head = self.tusk("inspect", "commit", repo + "@master", "--json").json()
        r = self.tusk("wait", "commitset", head["commit_set"], check=False, timeout=120)
        self.assertEqual(r.returncode, code, r.err)
        jobs = self.tusk("list", "job", "-p", name, "--json").json_lines()
        return jobs[0]

    def out(self, pipeline, path):
        return self.tusk("get", "file", "%s@master:/%s" % (pipeline, path)).out

    def datum_error(self, job):
        datums = self.tusk("list", "datum", "%s@%s" % (job["pipeline"], job["id"]), "--json").json_lines()
        return datums[0].get("error", "")

    def host_uids_of(self, marker, timeout=20):
        """The host uids of processes whose command line holds `marker`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            uids = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as f:
                        if marker.encode() in f.read().split(b"\0"):
                            uids.append(os.stat("/proc/" + pid).st_uid)
                except OSError:
                    pass
            if uids:
                return uids
            time.sleep(0.05)
        return []

    def test_each_escape_is_stopped(self):
        uids = []
        job = self.run_pipeline("escape", ESCAPES,
                                during=lambda: uids.extend(self.host_uids_of("2.718")))
        self.assertEqual(job["state"], "JOB_SUCCESS", job)
        # Not root on the host (seen from the host), nor inside.
        self.assertTrue(uids, "the sandboxed command was not seen running")
        self.assertNotIn(0, uids)
        self.assertNotEqual(self.out("escape", "uid").strip(), "0")
        self.assertEqual(self.out("escape", "caps").split()[1], "0000000000000000")
        shadow = self.out("escape", "shadow")
        self.assertIn("Permission denied", shadow)
        self.assertNotEqual(shadow.split()[-1], "0")
        remount = self.out("escape", "remount")
        self.assertNotEqual(remount.split()[-1], "0", remount)
        net = self.out("escape", "net")
        self.assertNotIn("connected", net)
        self.assertNotEqual(net.split()[-1], "0", net)
        root = self.out("escape", "root_dir").split()
        for hidden in ("root", "home", "var", "srv", "run"):
            self.assertNotIn(hidden, root)
        self.assertIn("usr", root)
        data = self.out("escape", "data_dir")
        self.assertNotEqual(data.split()[-1], "0", "tuskd's data directory is visible: " + data)
        self.assertIn("Cannot fork", self.out("escape", "fork"))

        info = self.tusk("inspect", "pipeline", "escape").out
        self.assertIn("Network: no", info)
        self.assertIn("Limits: memory 256Mi, processes 64", info)
        self.assertIn("Sandbox: bwrap (user, pid, ipc, network namespaces", info)
        self.assertIn("no capabilities", info)
        sandbox = self.tusk("inspect", "pipeline", "escape", "--json").json()["sandbox"]
        self.assertRegex(sandbox, "limits by (cgroup v1|rlimits)")

    def test_symlink_out_of_pfs_out_fails_the_datum(self):
        job = self.run_pipeline("leak", LEAK, code=1)
        self.assertEqual(job["state"], "JOB_FAILURE")
        self.assertIn("points outside /pfs/out", self.datum_error(job))

    def test_memory_past_the_limit_is_an_oom(self):
        job = self.run_pipeline("hog", HOG, code=1)
        self.assertEqual(job["state"], "JOB_FAILURE")
        error = self.datum_error(job)
        sandbox = self.tusk("inspect", "pipeline", "hog", "--json").json()["sandbox"]
        if "cgroup" in sandbox:
            self.assertIn("OOMKilled", error)
        else:
            self.assertIn("RLIMIT_AS", error)
        self.assertIn("32 MiB", error)

    def test_an_image_is_never_silently_ignored(self):
        spec = NETWORK.replace("name: online", "name: imaged").replace(
            "  network: true\n", "  image: pachyderm/opencv\n").replace("PORT", self.port)
        self.tusk("create", "repo", "in-imaged")
        r = self.tusk("create", "pipeline", "-f", self.write("imaged.yaml",
                                                               spec.replace("INPUT", "in-imaged").encode()))
        self.assertIn("warning: transform.image pachyderm/opencv is not used", r.err)
        info = self.tusk("inspect", "pipeline", "imaged").out
        self.assertIn("Warning: transform.image pachyderm/opencv is not used", info)
        warnings = self.tusk("inspect", "pipeline", "imaged", "--json").json()["warnings"]
        self.assertEqual(len(warnings), 1)

    def test_network_when_the_pipeline_asks(self):
        job = self.run_pipeline("online", NETWORK)
        self.assertEqual(job["state"], "JOB_SUCCESS", job)
        self.assertEqual(self.out("online", "net"), "connected")
        self.assertIn("Network: yes", self.tusk("inspect", "pipeline", "online").out)


class LocalSecretsTest(SandboxTest):
    """transform.secrets with local runners: files under tuskd's --secrets-dir."""

    @classmethod
    def setUpClass(cls):
        cls.secrets = tempfile.mkdtemp(prefix="tusk-e2e-secrets-")
        os.chmod(cls.secrets, 0o755)
        os.makedirs(os.path.join(cls.secrets, "db"), mode=0o755)
        for key, value in (("password", "hunter2"), ("user", "admin")):
            path = os.path.join(cls.secrets, "db", key)
            with open(path, "w") as f:
                f.write(value)
            os.chmod(path, 0o644)
        cls.tuskd_args = ("--secrets-dir", cls.secrets)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.secrets, ignore_errors=True)

    # Only this class's tests (not SandboxTest's again).
    test_each_escape_is_stopped = None
    test_symlink_out_of_pfs_out_fails_the_datum = None
    test_memory_past_the_limit_is_an_oom = None
    test_an_image_is_never_silently_ignored = None
    test_network_when_the_pipeline_asks = None

    def test_secrets_as_variables_and_files(self):
        spec = """pipeline: {name: secret}
transform:
  cmd: [sh, -c, "echo $DB_PASSWORD > /pfs/out/env; cat /secrets/db/user > /pfs/out/file"]
  secrets:
    - {name: db, key: password, env_var: DB_PASSWORD}
    - {name: db, mount_path: /secrets/db}
input: {pfs: {repo: INPUT, glob: /}}
"""
        job = self.run_pipeline("secret", spec)
        self.assertEqual(job["state"], "JOB_SUCCESS", job)
        self.assertEqual(self.out("secret", "env"), "hunter2\n")
        self.assertEqual(self.out("secret", "file"), "admin")
        # A secret that is not there fails the datum and says which.
        job = self.run_pipeline("nosecret", spec.replace("name: secret", "name: nosecret")
                                .replace("key: password", "key: missing").replace(
                                    "datum_tries", "x") + "datum_tries: 1\n", code=1)
        self.assertIn("key missing of secret db", self.datum_error(job))
        # Under a read-only system directory of the host: refused at create.
        self.tusk("create", "repo", "in-etc")
        r = self.tusk_fails(1, "create", "pipeline", "-f", self.write("etc.yaml", spec.replace(
            "name: secret", "name: etc").replace("/secrets/db", "/etc/db").replace(
                "INPUT", "in-etc").encode()))
        self.assertIn("transform.secrets[1].mount_path: /etc/db is under /etc", r.err)


if __name__ == "__main__":
    import unittest
    unittest.main()
