"""A real Kubernetes control plane on loopback for the tests: Debian's etcd
and the kube-apiserver and kube-controller-manager 1.20 that
scripts/build-kube.sh builds from Debian's source package (once per
machine, cached outside the checkout). Token authentication and RBAC are
on, as on a real cluster.

No kubelet runs here; FakeKubelet plays one (see its docstring).
"""

import base64
import hashlib
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


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeKubelet:
    """Plays the kubelet of one node for the runner pods of a namespace (no
    kubelet runs on these machines). It binds pending pods to its node, runs
    each with `podman kube play` from the pod spec the API server holds (env
    from Secrets and the downward API resolved and $(VAR) expanded, as a
    kubelet does; host network, so a runner reaches tuskd on loopback;
    volume names made unique per pod), and reports back through the pods'
    status subresource: Running and Ready; a container that ended (its
    reason, OOMKilled included, as lastState with restartCount, after which
    the pod is played again, as a kubelet restarts containers); ErrImagePull
    when the image cannot be had. A pod deleted in the API is removed from
    podman and its deletion finished. Pods in `frozen` keep whatever status
    the test gave them."""

    SELECTOR = "labelSelector=app.kubernetes.io%2Fname%3Dtusk-runner"

    def __init__(self, cluster, ns, env, node="tusk-node"):
        self.c = cluster
        self.ns = ns
        self.env = env
        self.node = node
        self.running = {}  # pod name -> {"uid", "restarts": {container: n}, "last": {...}}
        self.frozen = set()
        self.errors = []
        self.stop_event = threading.Event()
        self.dir = tempfile.mkdtemp(prefix="tusk-kubelet-")
        self.thread = None

    def start(self):
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        self.c.request("POST", "/api/v1/nodes", node)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        if self.thread:
            self.thread.join(timeout=60)
        for name in list(self.running):
            self._remove(name)

    def _podman(self, *args, timeout=300):
        return subprocess.run(["podman"] + list(args), env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def _loop(self):
        while not self.stop_event.is_set():
            try:
                self._pass()
            except Exception as e:  # keep playing; the test reads self.errors
                self.errors.append(repr(e))
            self.stop_event.wait(0.3)

    def _pass(self):
        code, pods = self.c.request("GET", "/api/v1/namespaces/%s/pods?%s" % (self.ns, self.SELECTOR))
        if code != 200:
            return
        listed = set()
        for pod in pods.get("items", []):
            name = pod["metadata"]["name"]
            listed.add(name)
            if pod["metadata"].get("deletionTimestamp"):
                self._remove(name)
                self.c.request("DELETE", "/api/v1/namespaces/%s/pods/%s" % (self.ns, name),
                               {"gracePeriodSeconds": 0})
                continue
            if not pod["spec"].get("nodeName"):
                self.c.request("POST", "/api/v1/namespaces/%s/pods/%s/binding" % (self.ns, name),
                               {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node}})
                continue
            if name in self.frozen:
                continue
            state = self.running.get(name)
            if state is None or state["uid"] != pod["metadata"]["uid"]:
                state = {"uid": pod["metadata"]["uid"], "restarts": {}, "last": {},
                         "pull_failures": 0, "played": False}
                self.running[name] = state
            if not state["played"]:
                err = self._play(pod)
                if err:
                    state["pull_failures"] += 1
                    self._report(pod, state, waiting=("ImagePullBackOff" if state["pull_failures"] > 1
                                                      else "ErrImagePull", err))
                    continue
                state["played"] = True
            else:
                ended = self._ended(name)
                if ended:
                    for c, (reason, code_) in ended.items():
                        state["restarts"][c] = state["restarts"].get(c, 0) + 1
                        state["last"][c] = {"terminated": {"reason": reason, "exitCode": code_,
                                                           "finishedAt": _now(), "startedAt": _now()}}
                    self._remove(name)
                    state["played"] = False
                    continue
            self._report(pod, state)
        for name in list(self.running):
            if name not in listed:
                self._remove(name)
                del self.running[name]

    def _ended(self, name):
        r = self._podman("inspect", "--format", "json", name + "-user", name + "-runner")
        out = {}
        try:
            for c in json.loads(r.stdout or "[]"):
                st = c.get("State", {})
                if st.get("Status") in ("exited", "stopped"):
                    cname = c["Name"][len(name) + 1:]
                    reason = "OOMKilled" if st.get("OOMKilled") else (
                        "Completed" if st.get("ExitCode") == 0 else "Error")
                    out[cname] = (reason, st.get("ExitCode", 1))
        except ValueError:
            pass
        if r.returncode != 0 and not out:
            out["runner"] = ("Error", 137)  # its containers are gone
        return out

    def _remove(self, name):
        self._podman("pod", "rm", "--force", "--time", "0", name)
        prefix = self._prefix(name)
        self._podman("volume", "rm", "--force", *[prefix + v for v in self._volumes.get(name, [])])

    _volumes = {}

    @staticmethod
    def _prefix(name):
        # podman 4.3 shares an emptyDir between pods that name it alike.
        return "k" + hashlib.sha1(name.encode()).hexdigest()[:10] + "-"

    def _secret(self, name, key):
        code, s = self.c.request("GET", "/api/v1/namespaces/%s/secrets/%s" % (self.ns, name))
        if code != 200 or key not in s.get("data", {}):
            return None
        return base64.b64decode(s["data"][key]).decode()

    def _play(self, pod):
        name = pod["metadata"]["name"]
        spec = json.loads(json.dumps(pod["spec"]))
        for k in ("nodeName", "serviceAccountName", "serviceAccount", "imagePullSecrets",
                  "priorityClassName", "tolerations", "nodeSelector", "schedulerName",
                  "enableServiceLinks", "automountServiceAccountToken", "dnsPolicy", "priority",
                  "preemptionPolicy"):
            spec.pop(k, None)
        spec["hostNetwork"] = True
        spec["restartPolicy"] = "Never"
        spec.get("securityContext", {}).pop("seccompProfile", None)
        prefix = self._prefix(name)
        renames = {}
        volumes = []
        for v in spec.get("volumes", []):
            new = prefix + v["name"]
            renames[v["name"]] = new
            v["name"] = new
            if "secret" in v:
                d = os.path.join(self.dir, name, new)
                os.makedirs(d, exist_ok=True)
                code, s = self.c.request("GET", "/api/v1/namespaces/%s/secrets/%s" %
                                         (self.ns, v["secret"]["secretName"]))
                data = s.get("data", {}) if code == 200 else {}
                # items: only those keys, at their paths (else every key).
                items = v["secret"].get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    if item["key"] in data:
                        with open(os.path.join(d, item["path"]), "wb") as f:
                            f.write(base64.b64decode(data[item["key"]]))
                os.chmod(d, 0o755)
                v.pop("secret")
                v["hostPath"] = {"path": d, "type": "Directory"}
            elif "emptyDir" in v:
                volumes.append(v["name"][len(prefix):])
        self._volumes[name] = volumes
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            for m in c.get("volumeMounts", []):
                m["name"] = renames.get(m["name"], m["name"])
            env = {}
            for e in c.get("env", []):
                vf = e.pop("valueFrom", None)
                if vf and "secretKeyRef" in vf:
                    value = self._secret(vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"])
                    if value is None:
                        return "CreateContainerConfigError: secret %s not found" % vf["secretKeyRef"]["name"]
                    e["value"] = value
                elif vf and "fieldRef" in vf:
                    e["value"] = {"metadata.name": name, "metadata.namespace": self.ns}.get(
                        vf["fieldRef"]["fieldPath"], "")
                env[e["name"]] = e.get("value", "")
            for key in ("command", "args"):
                if key in c:
                    out = []
                    for a in c[key]:
                        for k, v in env.items():
                            a = a.replace("$(%s)" % k, v)
                        out.append(a)
                    c[key] = out
        doc = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "labels": pod["metadata"].get("labels", {})},
               "spec": spec}
        path = os.path.join(self.dir, name + ".json")
        with open(path, "w") as f:
            json.dump(doc, f)
        r = self._podman("kube", "play", path)
        if r.returncode != 0:
            self._remove(name)
            lines = [l for l in r.stderr.splitlines() if l.startswith("Error: ")]
            return (lines[-1] if lines else r.stderr[-300:])
        return None

    def _report(self, pod, state, waiting=None):
        name = pod["metadata"]["name"]
        statuses = []
        for c in pod["spec"]["containers"]:
            cs = {"name": c["name"], "image": c["image"], "imageID": "",
                  "restartCount": state["restarts"].get(c["name"], 0),
                  "ready": waiting is None, "started": waiting is None}
            cs["state"] = ({"waiting": {"reason": waiting[0], "message": waiting[1]}} if waiting
                           else {"running": {"startedAt": _now()}})
            if c["name"] in state["last"]:
                cs["lastState"] = state["last"][c["name"]]
            statuses.append(cs)
        ready = "True" if waiting is None else "False"
        status = {"phase": "Running" if waiting is None else "Pending",
                  "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                  "conditions": [{"type": "PodScheduled", "status": "True"},
                                 {"type": "Initialized", "status": "True"},
                                 {"type": "ContainersReady", "status": ready},
                                 {"type": "Ready", "status": ready}],
                  "containerStatuses": statuses}
        old = pod.get("status", {})
        if ({k: old.get(k) for k in ("phase",)} == {"phase": status["phase"]} and
                [(s.get("restartCount"), list(s.get("state", {}))) for s in old.get("containerStatuses", [])] ==
                [(s["restartCount"], list(s["state"])) for s in statuses]):
            return  # nothing new
        pod = dict(pod)
        pod["status"] = status
        self.c.request("PUT", "/api/v1/namespaces/%s/pods/%s/status" % (self.ns, name), pod)
