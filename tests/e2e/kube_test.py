"""tusk on a real Kubernetes API server (1.20, built from Debian's source
package by scripts/build-kube.sh; etcd from Debian; token auth and RBAC).

ManifestsTest: every object of `kubectl kustomize k8s/...` is accepted by
the server itself (`kubectl apply --dry-run=server --validate`: types, selectors and names
are the server's checks, unknown fields kubectl's against the server's
OpenAPI schema; not ours), and the RBAC of k8s/base gives
tuskd what the kubernetes runner backend needs and the runners nothing
(`kubectl auth can-i` as each service account).
"""

import os
import shutil
import tempfile
import unittest

import kube

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
