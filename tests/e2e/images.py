"""Container images and podman settings for the pod tests (podman_test,
kube_test). Everything is built here from Debian's packages (mmdebstrap,
podman import): no image registry is reachable.

- podman_env(): the environment podman runs with on these machines (runc and
  the cgroupfs manager; crun fails on hybrid cgroups; ulimits no higher than
  the host's).
- tusk_image(): the tusk image of the current build (scripts/build-image.sh),
  tagged with a hash of the binaries, built once per build.
- python_image(): a user image with python3-minimal and a script baked in at
  /count.py, and nothing of tusk.
- busybox_image(): an image holding one static busybox and nothing else: no
  libc, no loader, no /lib (Debian's busybox-static, unpacked).
"""

import hashlib
import os
import shutil
import subprocess
import tempfile

from harness import BIN_DIR

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

# Baked into the user image: counts the words of each input file into
# /pfs/out/<name>, with the user it ran as and its working directory.
COUNT_PY = """import os, sys
src = sys.argv[1]
for name in sorted(os.listdir(src)):
    with open(os.path.join(src, name)) as f:
        n = len(f.read().split())
    with open(os.path.join("/pfs/out", name), "w") as out:
        out.write("%d words uid=%d cwd=%s\\n" % (n, os.getuid(), os.getcwd()))
"""


def podman_env():
    """os.environ with CONTAINERS_CONF pointing at this machine's settings."""
    d = os.path.join(tempfile.gettempdir(), "tusk-e2e-podman")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "containers.conf")
    with open(conf, "w") as f:
        f.write(CONTAINERS_CONF)
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = conf
    return env


def _exists(image, env):
    return subprocess.run(["podman", "image", "exists", image], env=env).returncode == 0


def _digest(paths, extra=b""):
    h = hashlib.sha256(extra)
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:12]


def tusk_image(env):
    """localhost/tusk:e2e-<hash of the binaries>, built if missing."""
    bins = [os.path.join(BIN_DIR, b) for b in
            ("tuskd", "tusk", "tusk-ingest", "tusk-runner", "tusk-exec-agent")]
    image = "localhost/tusk:e2e-" + _digest(bins)
    if not _exists(image, env):
        build_env = dict(env)
        build_env["TUSK_BUILD_DIR"] = os.path.dirname(os.path.abspath(BIN_DIR))
        subprocess.run([os.path.join(ROOT, "scripts", "build-image.sh"), image], env=build_env,
                       check=True, timeout=900)
    return image


def python_image(env):
    """A Debian 12 image with python3-minimal and /count.py, built if missing."""
    image = "localhost/tusk-e2e-python:" + _digest([], COUNT_PY.encode())
    if _exists(image, env):
        return image
    work = tempfile.mkdtemp(prefix="tusk-e2e-image-")
    try:
        script = os.path.join(work, "count.py")
        with open(script, "w") as f:
            f.write(COUNT_PY)
        rootfs = os.path.join(work, "rootfs.tar")
        subprocess.run(["mmdebstrap", "--quiet", "--variant=essential",
                        "--include=python3-minimal",
                        "--customize-hook=copy-in %s /" % script,
                        "bookworm", rootfs], env=env, check=True, timeout=900,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["podman", "import", "--quiet",
                        "--change", "ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        rootfs, image], env=env, check=True, timeout=300,
                       stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return image


def busybox_image(env):
    """localhost/tusk-e2e-busybox:1: /bin/busybox (static) alone."""
    image = "localhost/tusk-e2e-busybox:1"
    if _exists(image, env):
        return image
    work = tempfile.mkdtemp(prefix="tusk-e2e-image-")
    try:
        subprocess.run(["apt-get", "download", "-qq", "busybox-static"], cwd=work, check=True,
                       timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deb = [f for f in os.listdir(work) if f.endswith(".deb")][0]
        root = os.path.join(work, "root")
        subprocess.run(["dpkg-deb", "-x", os.path.join(work, deb), root], check=True, timeout=120)
        keep = os.path.join(root, "bin", "busybox")
        for entry in os.listdir(root):
            if entry != "bin":
                shutil.rmtree(os.path.join(root, entry))
        for entry in os.listdir(os.path.join(root, "bin")):
            if os.path.join(root, "bin", entry) != keep:
                os.unlink(os.path.join(root, "bin", entry))
        rootfs = os.path.join(work, "rootfs.tar")
        subprocess.run(["tar", "-C", root, "-cf", rootfs, "."], check=True, timeout=120)
        subprocess.run(["podman", "import", "--quiet", "--change", "ENV=PATH=/bin", rootfs, image],
                       env=env, check=True, timeout=300, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return image

