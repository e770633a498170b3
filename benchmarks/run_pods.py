#!/usr/bin/env python3
"""Runner backends side by side (issue 17): local runners (bubblewrap on
tuskd's host) against podman pods from the pipeline's image, in one run, on
the same disk. Prints the markdown table of benchmarks/README.md.

  benchmarks/run_pods.py                 # DATUMS=2000, RUNS=3
  DATUMS=200 RUNS=1 benchmarks/run_pods.py

1. Per-datum overhead: DATUMS one-file datums, `cp` as the command,
   parallelism 2, on each backend; the job's wall time per datum, and the
   podman/local ratio.
2. From `create pipeline` to its first datum done (the pods start cold:
   kube play, the init container, the agent), RUNS times.
3. From a runner's death mid-datum (local: kill -9 of tusk-runner; podman:
   `podman pod rm --force` of its pod) to its datum being leased again (the
   "ended while running datum" line of tuskd's log), RUNS times.

Needs what the pod tests need: podman with runc, mmdebstrap (the images are
built as tests/e2e/images.py builds them) and a build in build/.
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
sys.path.insert(0, HERE)
os.environ.setdefault("TUSK_BIN_DIR", os.path.join(HERE, "..", "build", "bin"))

import images  # noqa: E402
from harness import TUSK, Tuskd  # noqa: E402
from benchlib import ts  # noqa: E402

DATUMS = int(os.environ.get("DATUMS", "2000"))
RUNS = int(os.environ.get("RUNS", "3"))


class Backend:
    def __init__(self, name, tmp, args, env):
        self.name = name
        self.env = env
        self.server = Tuskd(os.path.join(tmp, name), os.path.join(tmp, name + ".log"), args, env)
        self.server.start()

    def tusk(self, *args, input=None):
        r = subprocess.run([TUSK, "--address", self.server.address] + list(args), input=input,
                           capture_output=True, env=self.env, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("tusk %s: %s\n%s" % (args, r.stderr.decode(), self.server.log()))
        return r.stdout.decode()

    def jobs(self, pipeline):
        out = self.tusk("list", "job", "-p", pipeline, "--json")
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def wait_job(self, pipeline, n=1, timeout=1800):
        deadline = time.time() + timeout
        while time.time() < deadline:
            jobs = self.jobs(pipeline)
            if len(jobs) >= n and jobs[0]["state"] in ("JOB_SUCCESS", "JOB_FAILURE"):
                return jobs[0]
            time.sleep(0.1)
        raise RuntimeError("job of %s did not end; log:\n%s" % (pipeline, self.server.log()))

    def stop(self):
        self.server.stop()


def full_log(b):
    with open(b.server.log_path, errors="replace") as f:
        return f.read()


def spec(name, repo, cmd, image, parallelism=2):
    s = {"pipeline": {"name": name}, "transform": {"cmd": cmd},
         "input": {"pfs": {"repo": repo, "glob": "/*"}},
         "parallelism_spec": {"constant": parallelism}}
    if image:
        s["transform"]["image"] = image
    return json.dumps(s).encode()


def overhead(b, image, src_dir):
    b.tusk("create", "repo", "src")
    b.tusk("put", "file", "src@master:/", "-f", src_dir, "-r")
    t0 = time.time()
    b.tusk("create", "pipeline", "-f", "-", input=spec("copy", "src",
                                                       ["cp", "-r", "/pfs/src/.", "/pfs/out/"], image))
    job = b.wait_job("copy")
    wall = time.time() - t0
    assert job["state"] == "JOB_SUCCESS", job
    assert int(job["datums_processed"]) == DATUMS, job
    return wall, ts(job["finished"]) - ts(job["started"])


def first_datum(b, image, i):
    repo, name = "fd%d" % i, "first%d" % i
    b.tusk("create", "repo", repo)
    b.tusk("put", "file", "%s@master:/x" % repo, "-f", "-", input=b"x")
    t0 = time.time()
    b.tusk("create", "pipeline", "-f", "-", input=spec(name, repo, ["cp", "/pfs/%s/x" % repo,
                                                                   "/pfs/out/x"], image, 1))
    job = b.wait_job(name, timeout=600)
    assert job["state"] == "JOB_SUCCESS", job
    return time.time() - t0


def relead(b, image, i, kill):
    """Seconds from kill() to the datum's lease being handed back."""
    repo, name = "rl%d" % i, "relead%d" % i
    b.tusk("create", "repo", repo)
    b.tusk("create", "pipeline", "-f", "-", input=spec(name, repo, ["sh", "-c", "sleep 5"], image, 1))
    b.tusk("put", "file", "%s@master:/x" % repo, "-f", "-", input=b"x")
    deadline = time.time() + 300
    while time.time() < deadline:
        jobs = b.jobs(name)
        if jobs:
            out = b.tusk("list", "datum", "%s@%s" % (name, jobs[0]["id"]), "--json")
            if any(json.loads(l)["state"] == "DATUM_RUNNING" for l in out.splitlines() if l):
                break
        time.sleep(0.1)
    time.sleep(0.5)
    before = full_log(b).count("ended while running datum")
    t0 = time.time()
    kill(name)
    while time.time() - t0 < 120:
        if full_log(b).count("ended while running datum") > before:
            return time.time() - t0
        time.sleep(0.02)
    raise RuntimeError("no hand-back after the kill")


def main():
    env = images.podman_env()
    tusk_image = images.tusk_image(env)
    user_image = images.python_image(env)
    tmp = tempfile.mkdtemp(prefix="tusk-bench-pods-")
    src = os.path.join(tmp, "src")
    os.makedirs(src)
    for i in range(DATUMS):
        with open(os.path.join(src, "f%06d" % i), "wb") as f:
            f.write(os.urandom(1024))
    rows = []
    results = {}
    try:
        for name, args, image in [
                ("local", ["--runners", "local", "--sandbox", "bwrap"], None),
                ("podman", ["--runners", "podman", "--runner-image", tusk_image,
                            "--runner-idle-grace", "10m"], user_image)]:
            b = Backend(name, tmp, args, env)
            r = results[name] = {}
            r["wall"], r["job"] = overhead(b, image, src)
            r["first"] = [first_datum(b, image, i) for i in range(RUNS)]

            def kill_local(pipeline):
                pids = subprocess.run(["pgrep", "-f", "tusk-runner .*--pipeline %s " % pipeline],
                                      capture_output=True, text=True).stdout.split()
                for p in pids:
                    os.kill(int(p), signal.SIGKILL)

            def kill_pod(pipeline):
                pods = subprocess.run(["podman", "pod", "ps", "--format", "{{.Name}}"], env=env,
                                      capture_output=True, text=True).stdout.split()
                for p in pods:
                    if "-%s-v" % pipeline in p:
                        subprocess.run(["podman", "pod", "rm", "--force", "--time", "0", p],
                                       env=env, capture_output=True)

            r["relead"] = [relead(b, image, i, kill_local if name == "local" else kill_pod)
                           for i in range(RUNS)]
            b.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    loc, pod = results["local"], results["podman"]
    med = statistics.median
    print("| benchmark | local (bwrap) | podman pods | ratio podman/local |")
    print("|---|---|---|---|")
    print("| %d one-file datums, cp, parallelism 2: job time | %.1f s (%.1f ms/datum) | "
          "%.1f s (%.1f ms/datum) | %.2f |" % (
              DATUMS, loc["job"], 1000 * loc["job"] / DATUMS, pod["job"],
              1000 * pod["job"] / DATUMS, pod["job"] / loc["job"]))
    print("| create pipeline -> first datum done (median of %d) | %.2f s | %.2f s | %.2f |" % (
        RUNS, med(loc["first"]), med(pod["first"]), med(pod["first"]) / med(loc["first"])))
    print("| runner killed mid-datum -> datum handed back (median of %d) | %.2f s | %.2f s | %.2f |"
          % (RUNS, med(loc["relead"]), med(pod["relead"]), med(pod["relead"]) / med(loc["relead"])))


if __name__ == "__main__":
    main()
