"""A real Kubernetes control plane on loopback for the tests: Debian's etcd
and the kube-apiserver and kube-controller-manager 1.20 that
scripts/build-kube.sh builds from Debian's source package (once per
machine, cached outside the checkout). Token authentication and RBAC are
on, as on a real cluster.

No kubelet runs here; FakeKubelet plays one (see its docstring).
"""

import base64
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def kube_bin_dir():
    """Builds (first time only) and returns the directory of the binaries."""
    r = subprocess.run([os.path.join(ROOT, "scripts", "build-kube.sh")], capture_output=True,
                       text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError("scripts/build-kube.sh failed:\n" + r.stderr[-3000:])
    return r.stdout.strip().splitlines()[-1]


class KubeCluster:
    """etcd + kube-apiserver + kube-controller-manager in `tmp`, on free
    loopback ports. Users (token auth): admin (system:masters) and any
    added with add_user before start()."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.bin = kube_bin_dir()
        self.kubectl_bin = os.path.join(self.bin, "kubectl")
        self.procs = []
        self.tokens = {"admin": ("admin-" + base64.b32encode(os.urandom(10)).decode().lower(),
                                 "system:masters")}
        self.port = None

    def add_user(self, name, groups=""):
        self.tokens[name] = (name + "-" + base64.b32encode(os.urandom(10)).decode().lower(), groups)

    def _start(self, name, argv):
        with open(os.path.join(self.tmp, name + ".log"), "ab") as log:
            p = subprocess.Popen(argv, stdout=log, stderr=log)
        self.procs.append(p)
        return p

    def log(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def start(self, timeout=120):
        etcd_port, peer_port = free_port(), free_port()
        self._start("etcd", ["etcd", "--data-dir", os.path.join(self.tmp, "etcd"),
                             "--listen-client-urls", "http://127.0.0.1:%d" % etcd_port,
                             "--advertise-client-urls", "http://127.0.0.1:%d" % etcd_port,
                             "--listen-peer-urls", "http://127.0.0.1:%d" % peer_port,
                             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer_port,
                             "--initial-cluster", "default=http://127.0.0.1:%d" % peer_port])
        sa_key = os.path.join(self.tmp, "sa.key")
        subprocess.run(["openssl", "genrsa", "-out", sa_key, "2048"], check=True,
                       capture_output=True)
        tokens = os.path.join(self.tmp, "tokens.csv")
        with open(tokens, "w") as f:
            for user, (token, groups) in self.tokens.items():
                f.write('%s,%s,%s,"%s"\n' % (token, user, user, groups))
        self.port = free_port()
        certs = os.path.join(self.tmp, "certs")
        self._start("kube-apiserver", [
            os.path.join(self.bin, "kube-apiserver"),
            "--etcd-servers", "http://127.0.0.1:%d" % etcd_port,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.port), "--insecure-port", "0",
            "--cert-dir", certs, "--token-auth-file", tokens,
            "--authorization-mode", "RBAC",
            "--service-account-key-file", sa_key,
            "--service-account-signing-key-file", sa_key,
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range", "10.96.0.0/16",
            "--enable-admission-plugins", "NodeRestriction"])
        self.server = "https://127.0.0.1:%d" % self.port
        self.ca = os.path.join(certs, "apiserver.crt")
        self.kubeconfig = self.write_kubeconfig("admin")
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError("the control plane exited:\n" + self.log("etcd") +
                                   self.log("kube-apiserver"))
            time.sleep(0.3)
        else:
            raise RuntimeError("kube-apiserver not ready:\n" + self.log("kube-apiserver"))
        self._start("kube-controller-manager", [
            os.path.join(self.bin, "kube-controller-manager"),
            "--kubeconfig", self.kubeconfig, "--bind-address", "127.0.0.1",
            "--secure-port", str(free_port()), "--port", "0",
            "--controllers", "deployment,replicaset,garbagecollector,serviceaccount,serviceaccount-token,namespace",
            "--service-account-private-key-file", sa_key,
            "--root-ca-file", self.ca, "--leader-elect=false"])
        # The default service account appears once the controllers run.
        while time.time() < deadline:
            if self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200:
                return
            time.sleep(0.3)
        raise RuntimeError("kube-controller-manager did not start:\n" +
                           self.log("kube-controller-manager"))

    def write_kubeconfig(self, user):
        path = os.path.join(self.tmp, user + ".kubeconfig")
        cfg = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": self.server,
                                                       "certificate-authority": self.ca}}],
            "users": [{"name": user, "user": {"token": self.tokens[user][0]}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
            "current-context": "test",
        }
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def request(self, method, path, body=None, user="admin", content_type="application/json"):
        ctx = ssl.create_default_context(cafile=self.ca) if os.path.exists(self.ca) else None
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.tokens[user][0])
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw[:1] == b"{" else raw)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw[:1] == b"{" else raw)

    def kubectl(self, *args, user="admin", input=None, check=True):
        cfg = self.kubeconfig if user == "admin" else self.write_kubeconfig(user)
        r = subprocess.run([self.kubectl_bin, "--kubeconfig", cfg] + list(args), input=input,
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError("kubectl %s: %s" % (" ".join(args), r.stderr))
        return r

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
