"""tusk on a real Kubernetes API server (1.20, built from Debian's source
package by scripts/build-kube.sh; etcd from Debian; token auth and RBAC).

ManifestsTest: every object of `kubectl kustomize k8s/...` is accepted by
the server itself (`kubectl apply --dry-run=server --validate`: types, selectors and names
are the server's checks, unknown fields kubectl's against the server's
OpenAPI schema; not ours), and the RBAC of k8s/base gives
tuskd what the kubernetes runner backend needs and the runners nothing
(`kubectl auth can-i` as each service account).
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
import images
import kube
from harness import PipelineTestCase

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KUSTOMIZATIONS = ["k8s/base", "k8s/overlays/s3", "k8s/overlays/tls", "k8s/examples/ingest"]


class ManifestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-kube-")
        cls.cluster = kube.KubeCluster(cls.tmp)
        cls.cluster.start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_every_object_is_accepted_by_the_server(self):
        c = self.cluster
        c.kubectl("apply", "-f", os.path.join(ROOT, "k8s/base/namespace.yaml"))
        for k in KUSTOMIZATIONS:
            rendered = c.kubectl("kustomize", os.path.join(ROOT, k)).stdout
            self.assertIn("kind:", rendered, k)
            r = c.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)
            self.assertEqual(r.returncode, 0, "%s: %s" % (k, r.stderr))
            # Every object was checked, none skipped.
            objects = rendered.count("\nkind: ") + rendered.startswith("kind: ")
            self.assertEqual(r.stdout.count("(server dry run)"), objects, r.stdout)
        # The server does reject what is wrong: a misspelt field fails.
        bad = c.kubectl("kustomize", os.path.join(ROOT, "k8s/base")).stdout.replace(
            "serviceName: tusk", "serviceNam: tusk")
        r = c.kubectl("apply", "--dry-run=server", "--validate=true", "-f", "-", input=bad,
                      check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("serviceNam", r.stderr)

    def test_rbac_gives_tuskd_what_it_needs_and_runners_nothing(self):
        c = self.cluster
        c.kubectl("apply", "-k", os.path.join(ROOT, "k8s/base"))
        tuskd = "system:serviceaccount:tusk:tuskd"
        runner = "system:serviceaccount:tusk:tusk-runner"

        def can(who, verb, what, ns="tusk"):
            r = c.kubectl("auth", "can-i", verb, what, "-n", ns, "--as", who, check=False)
            return r.stdout.strip() == "yes"

        for verb, what in [("create", "deployments"), ("delete", "deployments"),
                           ("list", "deployments"), ("patch", "deployments/scale"),
                           ("list", "pods"), ("get", "pods/log"), ("create", "secrets"),
                           ("delete", "secrets")]:
            self.assertTrue(can(tuskd, verb, what), "tuskd cannot %s %s" % (verb, what))
        for verb, what, ns in [("create", "pods", "tusk"), ("delete", "pods", "tusk"),
                               ("create", "deployments", "default"), ("list", "secrets", "default"),
                               ("list", "nodes", "tusk"), ("create", "roles", "tusk"),
                               ("create", "pods/exec", "tusk")]:
            self.assertFalse(can(tuskd, verb, what, ns), "tuskd may %s %s in %s" % (verb, what, ns))
        for verb, what in [("get", "pods"), ("get", "secrets"), ("list", "deployments"),
                           ("create", "pods"), ("get", "configmaps"), ("list", "services")]:
            self.assertFalse(can(runner, verb, what), "the runner may %s %s" % (verb, what))


if __name__ == "__main__":
    unittest.main()


class KubeRunnersTest(PipelineTestCase):
    """tuskd --runners kubernetes against the real API server, with its own
    service account's token and k8s/base's RBAC, serving TLS (runner pods
    trust its certificate from a Secret); FakeKubelet runs the pods with
    podman, from the pod specs the API server holds."""

    NS = "tusk"

    @classmethod
    def setUpClass(cls):
        cls.env = images.podman_env()
        cls.image = images.tusk_image(cls.env)
        cls.python = images.python_image(cls.env)
        cls.ktmp = tempfile.mkdtemp(prefix="tusk-kube-")
        cls.cluster = kube.KubeCluster(cls.ktmp)
        cls.cluster.start()
        c = cls.cluster
        c.kubectl("apply", "-f", os.path.join(ROOT, "k8s/base/namespace.yaml"))
        c.kubectl("-n", cls.NS, "apply", "-f", os.path.join(ROOT, "k8s/base/rbac.yaml"),
                  "-f", os.path.join(ROOT, "k8s/base/runner.yaml"))
        cls.kubeconfig = cls.service_account_kubeconfig("tuskd")
        # tuskd serves TLS (a self-signed certificate for 127.0.0.1, in the
        # Secret tusk-tls as `kubectl create secret tls` makes it); the
        # runner pods trust it through --runner-tls-ca.
        cls.cert, key = os.path.join(cls.ktmp, "tls.crt"), os.path.join(cls.ktmp, "tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cls.cert,
                        "-days", "2", "-subj", "/CN=tusk", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:tusk.tusk.svc"],
                       check=True, capture_output=True, timeout=60)
        c.kubectl("-n", cls.NS, "create", "secret", "tls", "tusk-tls", "--cert", cls.cert,
                  "--key", key)
        cls.kubelet = kube.FakeKubelet(c, cls.NS, cls.env)
        cls.kubelet.start()
        port = kube.free_port()
        cls.token_file = os.path.join(cls.ktmp, "root-token")
        cls.tuskd_args = ("--listen", "127.0.0.1:%d" % port, "--auth",
                          "--root-token-file", cls.token_file,
                          "--runners", "kubernetes", "--kubeconfig", cls.kubeconfig,
                          "--runner-image", cls.image,
                          "--runner-tuskd-address", "127.0.0.1:%d" % port,
                          "--tls-cert", cls.cert, "--tls-key", key,
                          "--runner-tls-ca", "tusk-tls/tls.crt",
                          "--runner-idle-grace", "5s")
        os.environ["CONTAINERS_CONF"] = cls.env["CONTAINERS_CONF"]
        super().setUpClass()
        with open(cls.token_file) as f:
            cls.tusk_env = {"TUSK_TOKEN": f.read().strip(), "TUSK_TLS_CA": cls.cert}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.kubelet.stop()
        cls.cluster.stop()
        shutil.rmtree(cls.ktmp, ignore_errors=True)

    @classmethod
    def service_account_kubeconfig(cls, sa):
        """A kubeconfig with the token of service account `sa` (1.20 keeps it
        in a Secret its token controller makes)."""
        c = cls.cluster
        deadline = time.time() + 60
        while time.time() < deadline:
            code, obj = c.request("GET", "/api/v1/namespaces/%s/serviceaccounts/%s" % (cls.NS, sa))
            if code == 200 and obj.get("secrets"):
                break
            time.sleep(0.3)
        code, secret = c.request("GET", "/api/v1/namespaces/%s/secrets/%s" %
                                 (cls.NS, obj["secrets"][0]["name"]))
        token = base64.b64decode(secret["data"]["token"]).decode()
        path = os.path.join(cls.ktmp, sa + ".kubeconfig")
        with open(path, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "t",
                       "clusters": [{"name": "k", "cluster": {"server": c.server,
                                                              "certificate-authority": c.ca}}],
                       "users": [{"name": sa, "user": {"token": token}}],
                       "contexts": [{"name": "t", "context": {"cluster": "k", "user": sa,
                                                              "namespace": cls.NS}}]}, f)
        return path

    def deployments(self, pipeline=None):
        code, obj = self.cluster.request(
            "GET", "/apis/apps/v1/namespaces/%s/deployments?labelSelector=%s" % (
                self.NS, "app.kubernetes.io%2Fname%3Dtusk-runner"))
        self.assertEqual(code, 200, obj)
        return [d for d in obj["items"] if pipeline is None or
                d["metadata"]["annotations"]["tusk.io/pipeline"] == pipeline]

    def pods(self, pipeline):
        code, obj = self.cluster.request(
            "GET", "/api/v1/namespaces/%s/pods?labelSelector=tusk.io%%2Fpipeline%%3D%s" % (
                self.NS, pipeline))
        return [p for p in obj.get("items", []) if not p["metadata"].get("deletionTimestamp")]

    def spec(self, name, repo, cmd, **extra):
        s = {"pipeline": {"name": name},
             "transform": {"image": self.python, "cmd": cmd},
             "input": {"pfs": {"repo": repo, "glob": "/*"}}}
        s.update(extra)
        return self.write(name + ".json", json.dumps(s).encode())

    def test_a_pipeline_runs_in_runner_pods(self):
        self.tusk("create", "repo", "words")
        self.tusk("create", "pipeline", "-f", self.spec(
            "count", "words", ["python3", "/count.py", "/pfs/words"],
            parallelism_spec={"constant": 2}, autoscaling=True))
        c = self.put_dir("words", "w1", {"a": "one two", "b": "three", "c": "four five six"})
        self.wait_set(c)
        self.assertEqual(self.files("count")["c"], "3 words uid=65532 cwd=/pfs\n")
        head = self.head("count")
        self.assertIn(("words", c["id"]), {(p["repo"], p["id"]) for p in head["provenance"]})
        [d] = self.deployments("count")
        self.assertEqual(d["metadata"]["name"], "tusk-count-v1")
        self.assertEqual(d["metadata"]["labels"]["tusk.io/pipeline-version"], "1")
        self.assertIn("tusk.io/spec-hash", d["spec"]["template"]["metadata"]["annotations"])
        self.assertLessEqual(d["spec"]["replicas"], 2)
        pod = self.pods("count")[0]["spec"]
        self.assertFalse(pod["automountServiceAccountToken"])
        self.assertEqual(pod["serviceAccountName"], "tusk-runner")
        info = self.tusk("inspect", "pipeline", "count", "--json").json()
        self.assertEqual(info["runners"]["backend"], "kubernetes")
        # The next commit runs only the new datum.
        c2 = self.put("words", "/d", b"seven")
        self.wait_set(c2)
        self.check_job(self.jobs("count")[0], 4, 1, 3)
        # Idle past the grace period (5 s here): scaled to zero; new work
        # scales it up again.
        self.wait_for("scale to zero", lambda: self.deployments("count")[0]["spec"]["replicas"] == 0
                      and not self.pods("count"), timeout=60)
        c3 = self.put("words", "/e", b"eight nine")
        self.wait_set(c3)
        self.check_job(self.jobs("count")[0], 5, 1, 4)
        self.assertEqual([d["metadata"]["uid"] for d in self.deployments("count")],
                         [d["metadata"]["uid"]])  # the same Deployment, scaled
        # The runners' token (a Secret) runs this pipeline's datums and nothing else.
        code, secret = self.cluster.request(
            "GET", "/api/v1/namespaces/%s/secrets/tusk-runner-count" % self.NS)
        self.assertEqual(code, 200)
        runner = {"TUSK_TOKEN": base64.b64decode(secret["data"]["token"]).decode()}
        self.tusk_fails(7, "create", "repo", "evil", env=runner)
        self.tusk_fails(7, "auth", "list-tokens", env=runner)

    def test_a_pod_deleted_mid_datum_hands_its_datum_back(self):
        self.tusk("create", "repo", "ksl")
        self.tusk("create", "pipeline", "-f", self.spec(
            "kslow", "ksl", ["sh", "-c", "sleep 4; echo done > /pfs/out/r"]))
        c = self.put("ksl", "/x", b"x")
        self.wait_for("a running datum", lambda: any(
            d["state"] == "DATUM_RUNNING" for d in self.tusk(
                "list", "datum", "kslow@" + self.jobs("kslow")[0]["id"], "--json").json_lines()))
        pod = self.pods("kslow")[0]["metadata"]["name"]
        self.cluster.request("DELETE", "/api/v1/namespaces/%s/pods/%s" % (self.NS, pod))
        t = time.time()
        self.wait_for("the datum handed back", lambda: "ended while running datum" in
                      self.server.log(), timeout=15)
        self.assertLess(time.time() - t, 15)  # not the 20 s lease timeout
        self.wait_set(c)
        self.assertEqual(self.files("kslow"), {"r": "done\n"})

    def test_pod_trouble_is_visible(self):
        self.tusk("create", "repo", "tr")
        # Busy for the whole test: no scaling to zero under the statuses.
        self.tusk("create", "pipeline", "-f", self.spec("trouble", "tr", ["sleep", "600"]))
        self.put("tr", "/x", b"x")
        pod = self.wait_for("a pod", lambda: self.pods("trouble"))[0]
        name = pod["metadata"]["name"]
        self.kubelet.frozen.add(name)

        def set_status(status):
            code, cur = self.cluster.request("GET", "/api/v1/namespaces/%s/pods/%s" % (self.NS, name))
            cur["status"] = status
            code, body = self.cluster.request(
                "PUT", "/api/v1/namespaces/%s/pods/%s/status" % (self.NS, name), cur)
            self.assertEqual(code, 200, body)

        def container(cname, state, restarts=0, last=None):
            cs = {"name": cname, "image": "x", "imageID": "", "ready": False,
                  "restartCount": restarts, "state": state}
            if last:
                cs["lastState"] = last
            return cs

        set_status({"phase": "Pending", "containerStatuses": [
            container("user", {"waiting": {"reason": "ImagePullBackOff",
                                           "message": "Back-off pulling image \"nope\""}}),
            container("runner", {"waiting": {"reason": "PodInitializing"}})]})
        info = self.wait_for("ImagePullBackOff in inspect", lambda: (
            lambda i: i if i.get("runners", {}).get("reason") == "ImagePullBackOff" else None)(
                self.tusk("inspect", "pipeline", "trouble", "--json").json()))
        self.assertIn("Back-off pulling image", info["runners"]["message"])
        self.assertIn("CRASHING", self.tusk("list", "pipeline").out)
        ts = kube._now()
        set_status({"phase": "Running", "containerStatuses": [
            container("user", {"running": {"startedAt": ts}}, restarts=1,
                      last={"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                           "startedAt": ts, "finishedAt": ts}}),
            container("runner", {"running": {"startedAt": ts}})]})
        self.wait_for("OOMKilled in inspect", lambda: self.tusk(
            "inspect", "pipeline", "trouble", "--json").json().get("runners", {}).get(
                "reason") == "OOMKilled")
        self.kubelet.frozen.discard(name)

    def test_update_replaces_and_a_restart_keeps_the_workload(self):
        self.tusk("create", "repo", "up")
        path = self.spec("upd", "up", ["sh", "-c", "echo v1 > /pfs/out/r"])
        self.tusk("create", "pipeline", "-f", path)
        c = self.put("up", "/x", b"x")
        self.wait_set(c)
        [v1] = self.deployments("upd")
        with open(path) as f:
            s = json.load(f)
        s["transform"]["cmd"] = ["sh", "-c", "echo v2 > /pfs/out/r"]
        self.tusk("update", "pipeline", "-f", self.write("upd2.json", json.dumps(s).encode()),
                  "--reprocess")
        self.wait_for("version 2's Deployment alone", lambda: [
            d["metadata"]["name"] for d in self.deployments("upd")] == ["tusk-upd-v2"])
        self.wait_jobs("upd", lambda jobs: len(jobs) == 2 and jobs[0]["state"] == "JOB_SUCCESS",
                       timeout=120)
        self.assertEqual(self.files("upd"), {"r": "v2\n"})
        # A runner of version 1 (with the pipeline's runner token) is refused.
        code, secret = self.cluster.request(
            "GET", "/api/v1/namespaces/%s/secrets/tusk-runner-upd" % self.NS)
        token = base64.b64decode(secret["data"]["token"]).decode()
        r = subprocess.run([os.path.join(harness.BIN_DIR, "tusk-runner"), "--tuskd",
                            self.server.address, "--pipeline", "upd", "--pipeline-version", "1",
                            "--sandbox", "none", "--work-dir", self.path("old-runner")],
                           env=dict(os.environ, TUSK_TOKEN=token, TUSK_TLS_CA=self.cert),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("version 1", r.stderr)

        # tuskd restarted: the same Deployment (no duplicate), and new work runs.
        [before] = self.deployments("upd")
        self.server.stop()
        self.server.start(same_address=True)
        c2 = self.put("up", "/y", b"y")
        self.wait_set(c2)
        [after] = self.deployments("upd")
        self.assertEqual(after["metadata"]["uid"], before["metadata"]["uid"])
        hash_of = lambda d: d["spec"]["template"]["metadata"]["annotations"]["tusk.io/spec-hash"]
        self.assertEqual(hash_of(after), hash_of(before))
        with open(self.server.log_path, errors="replace") as f:
            self.assertNotIn("replaced the pod template", f.read())

        # Deleted while tuskd was down: its Deployment and Secret are orphans.
        self.server.stop()
        self.server.start(same_address=True, once=("--runners", "none"))
        self.tusk("delete", "pipeline", "upd")
        self.server.stop()
        self.server.start(same_address=True)
        self.wait_for("the orphan's removal", lambda: not self.deployments("upd") and
                      self.cluster.request("GET", "/api/v1/namespaces/%s/secrets/tusk-runner-upd"
                                           % self.NS)[0] == 404)
