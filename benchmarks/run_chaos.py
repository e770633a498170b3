#!/usr/bin/env python3
"""A bounded crash-and-fault run: concurrent writers (single-file puts, some
reusing the content of deleted repos), a Kafka source ingested by tusk-ingest,
and a pipeline with local runners, while the fault loop kills tuskd (-9),
kills and restarts it then rebuilds its index from the object store, kills
runners and the ingest member (-9), and runs gc with no grace. Afterwards
every acknowledged write is read back, every Kafka record must be in the repo
exactly once, the pipeline's output must match its input, every job seen
ended must still be listed as it ended (rebuilds included), and fsck must
find nothing. Prints the counts; exits 1 if anything was lost.

  DURATION=300 SEED=5 benchmarks/run_chaos.py   (default 120 seconds)

tests/CMakeLists.txt runs it for 40 seconds as chaos_test.

Needs a build (scripts/build.sh); everything listens on 127.0.0.1.
"""

import collections
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from harness import DEV_KAFKA, TUSK, IngestMember, MockKafka, Tuskd  # noqa: E402

DURATION = float(os.environ.get("DURATION", "120"))
RATE = 500  # Kafka records per second


class Chaos:
    def __init__(self, tmp):
        self.tmp = tmp
        self.server = Tuskd(os.path.join(tmp, "data"), os.path.join(tmp, "tuskd.log"),
                            ["--gc-interval", "0", "--put-idle-timeout", "20s"])
        self.server.start()
        self.lock = threading.Lock()
        self.acked = {}  # (repo, path) -> sha256
        self.failed_writes = 0
        self.faults = collections.Counter()
        self.ended_jobs = {}  # job id -> state, as `list job` showed it ended
        self.stop = threading.Event()
        rng = random.Random(1)
        sizes = [100, 5000, 60000, 400000, 1500000]
        self.pool = [rng.randbytes(sizes[i % len(sizes)] + i) for i in range(30)]

    def tusk(self, *args, input=None, timeout=120):
        return subprocess.run([TUSK, "--address", self.server.address] + [str(a) for a in args],
                              input=input, capture_output=True, timeout=timeout)

    def must(self, *args, **kw):
        r = self.tusk(*args, **kw)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(map(str, args)), r.stderr.decode(errors="replace")))
        return r

    def put(self, repo, path, data):
        r = self.tusk("put", "file", "%s@master:%s" % (repo, path), "-f", "-", input=data)
        with self.lock:
            if r.returncode == 0:
                self.acked[(repo, path)] = hashlib.sha256(data).hexdigest()
            else:
                self.failed_writes += 1
        return r.returncode == 0

    # ---- load ----

    def writer(self, n):
        rng = random.Random(100 + n)
        i = 0
        while not self.stop.is_set():
            if not self.put("w", "/t%d/%d" % (n, i), rng.choice(self.pool)):
                time.sleep(0.1)
            i += 1

    def pipeline_input(self):
        i = 0
        while not self.stop.is_set():
            if not self.put("src", "/f%d" % i, b"input %d\n" % i):
                time.sleep(0.1)
            i += 1
            time.sleep(0.05)

    def job_watcher(self):
        """Notes the pipeline's ended jobs: an ended job is durable."""
        while not self.stop.is_set():
            r = self.tusk("list", "job", "-p", "copy", "--json", timeout=30)
            if r.returncode == 0:
                for line in r.stdout.decode().splitlines():
                    j = json.loads(line)
                    if j["state"] not in ("JOB_CREATED", "JOB_RUNNING", "JOB_EGRESSING"):
                        with self.lock:
                            self.ended_jobs[j["id"]] = j["state"]
            time.sleep(0.5)

    def garbage(self):
        rng = random.Random(9)
        i = 0
        while not self.stop.is_set():
            repo = "g%d" % i
            i += 1
            if self.tusk("create", "repo", repo).returncode != 0:
                time.sleep(0.2)
                continue
            for f in range(4):
                self.tusk("put", "file", "%s@master:/x%d" % (repo, f), "-f", "-", input=rng.choice(self.pool))
            self.tusk("delete", "repo", repo, "--force")

    # ---- faults ----

    def restart_tuskd(self, kill):
        if kill:
            self.server.kill9()
        else:
            self.server.stop()
        self.server.start(same_address=True)

    def crash_then_rebuild(self):
        self.server.kill9()
        self.server.start(same_address=True)  # the restart voids the rest of the log block
        self.server.stop()
        shutil.rmtree(os.path.join(self.server.data_dir, "index"))
        self.server.start(same_address=True, once=["--rebuild-index"], timeout=120)

    def kill_runners(self):
        r = subprocess.run(["pgrep", "-f", "tusk-runner .*--pipeline copy "], capture_output=True, text=True)
        pids = [int(p) for p in r.stdout.split()]
        for p in pids:
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
        return len(pids)

    def fault_loop(self, ingest, end):
        # Every kind of fault in each round of seven, in a shuffled order and
        # at random moments: a short run has them all.
        rng = random.Random(int(os.environ.get("SEED", "5")))
        kinds = ["kill tuskd", "restart tuskd", "crash then rebuild", "kill runners", "kill ingest",
                 "gc", "kill tuskd"]
        order = []
        while time.time() < end:
            time.sleep(rng.uniform(1.5, 4))
            if not order:
                order = kinds[:]
                rng.shuffle(order)
            what = order.pop()
            if what == "kill tuskd":
                self.restart_tuskd(kill=True)
            elif what == "restart tuskd":
                self.restart_tuskd(kill=False)
            elif what == "crash then rebuild":
                self.crash_then_rebuild()
            elif what == "kill runners":
                if self.kill_runners() == 0:
                    continue
            elif what == "kill ingest":
                ingest.kill9()
                ingest.start()
            elif what == "gc":
                if self.tusk("gc", "--grace", "0s").returncode != 0:
                    continue
            self.faults[what] += 1
            print("  %5.0fs %s" % (end - time.time(), what), flush=True)


def main():
    tmp = tempfile.mkdtemp(prefix="tusk-chaos-")
    kafka = None
    ingest = None
    c = None
    try:
        c = Chaos(tmp)
        kafka = MockKafka(os.path.join(tmp, "kafka.log"), ["chaos"])
        for repo in ("w", "src"):
            c.must("create", "repo", repo)
        spec = {"name": "events", "repo": "events",
                "kafka": {"brokers": kafka.bootstrap, "topics": ["chaos"],
                          "config": {"session.timeout.ms": "3000", "heartbeat.interval.ms": "500"}},
                "max_latency_ms": 50}
        with open(os.path.join(tmp, "source.json"), "w") as f:
            json.dump(spec, f)
        c.must("create", "source", "-f", os.path.join(tmp, "source.json"))
        pipeline = {"pipeline": {"name": "copy"},
                    "transform": {"cmd": ["sh", "-c", "cp /pfs/src/* /pfs/out/"]},
                    "input": {"pfs": {"repo": "src", "glob": "/*"}},
                    "parallelism_spec": {"constant": 2}}
        with open(os.path.join(tmp, "copy.json"), "w") as f:
            json.dump(pipeline, f)
        c.must("create", "pipeline", "-f", os.path.join(tmp, "copy.json"))
        count = int(RATE * DURATION)
        producer = subprocess.Popen([DEV_KAFKA, "produce", "--brokers", kafka.bootstrap, "--topic", "chaos",
                                     "--count", str(count), "--size", "40", "--rate", str(RATE)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ingest = IngestMember(c.server.address, "events", os.path.join(tmp, "ingest.log"), "m1")
        ingest.start()
        threads = [threading.Thread(target=c.writer, args=(n,)) for n in range(3)]
        threads += [threading.Thread(target=c.pipeline_input), threading.Thread(target=c.garbage),
                    threading.Thread(target=c.job_watcher)]
        for t in threads:
            t.start()
        print("chaos for %.0f s (tmp %s)" % (DURATION, tmp), flush=True)
        c.fault_loop(ingest, time.time() + DURATION)
        c.stop.set()
        for t in threads:
            t.join()
        _, err = producer.communicate(timeout=600)
        if producer.returncode != 0:
            raise RuntimeError("producer failed: " + err.decode(errors="replace"))
        return verify(c, ingest, count)
    finally:
        if ingest:
            ingest.kill9()
        if c:
            c.server.stop()
        if kafka:
            kafka.stop()
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)


def export(c, where, out):
    shutil.rmtree(out, ignore_errors=True)
    c.must("get", "file", where, "-o", out, timeout=600)
    files = {}
    for dirpath, _, names in os.walk(out):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                files["/" + os.path.relpath(p, out)] = f.read()
    return files


def verify(c, ingest, produced):
    lost = 0
    # Acknowledged puts.
    for repo in ("w", "src"):
        got = export(c, "%s@master:/" % repo, os.path.join(c.tmp, "export-" + repo))
        for (r, path), sha in c.acked.items():
            if r == repo and (path not in got or hashlib.sha256(got[path]).hexdigest() != sha):
                lost += 1
                if lost <= 10:
                    print("LOST: %s@master:%s" % (r, path))
    # Kafka: every record produced, once, in the repo. The mock cluster's
    # offsets run from 0 without gaps, so the branch head's offsets must add
    # up to what was produced, and every offset below them must be there.
    deadline = time.time() + 600
    ends = {}
    while time.time() < deadline:
        info = json.loads(c.must("inspect", "source", "events", "--json").stdout)
        ends = {ps["partition"]: int(ps.get("committed_offset", 0)) for ps in info.get("partitions", [])}
        if sum(ends.values()) >= produced:
            break
        time.sleep(0.5)
    ingest.stop()
    records = collections.Counter()
    for path, data in export(c, "events@master:/chaos", os.path.join(c.tmp, "export-events")).items():
        for line in data.decode().splitlines():
            r = json.loads(line)
            records[(r["partition"], r["offset"])] += 1
    want = sum(ends.values())
    dup = sum(1 for n in records.values() if n > 1)
    missing = sum(1 for p, n in ends.items() for o in range(n) if (p, o) not in records)
    missing += max(0, produced - want)
    extra = sum(1 for (p, o) in records if o >= ends.get(p, 0))
    # The pipeline: a job over the last input commit, output equal to input.
    head = json.loads(c.must("inspect", "commit", "src@master", "--json").stdout)
    c.must("wait", "commitset", head["commit_set"], timeout=600)
    src = export(c, "src@master:/", os.path.join(c.tmp, "export-src2"))
    out = export(c, "copy@master:/", os.path.join(c.tmp, "export-copy"))
    pipeline_bad = sum(1 for p, d in src.items() if out.get(p) != d) + len(set(out) - set(src))
    listed = {}
    for line in c.must("list", "job", "-p", "copy", "--json").stdout.decode().splitlines():
        j = json.loads(line)
        listed[j["id"]] = j["state"]
    jobs_lost = sum(1 for i, st in c.ended_jobs.items() if listed.get(i) != st)
    for i, st in list(c.ended_jobs.items())[:10]:
        if listed.get(i) != st:
            print("JOB LOST: copy@%s was %s, now %s" % (i, st, listed.get(i)))
    fsck = c.tusk("fsck")
    clean = fsck.returncode == 0 and b"no problems" in fsck.stdout
    print()
    print("faults injected: %d (%s)" % (sum(c.faults.values()),
                                        ", ".join("%s %d" % kv for kv in sorted(c.faults.items()))))
    print("writes acknowledged: %d puts (%d refused while tuskd was down or busy), %d Kafka records "
          "of %d produced, %d pipeline outputs, %d jobs seen ended"
          % (len(c.acked), c.failed_writes, want, produced, len(src), len(c.ended_jobs)))
    print("writes lost: %d puts, %d Kafka records missing, %d duplicated, %d beyond the head's offsets, "
          "%d pipeline outputs wrong, %d ended jobs lost or changed"
          % (lost, missing, dup, extra, pipeline_bad, jobs_lost))
    print("fsck: %s" % ("no problems" if clean else fsck.stdout.decode(errors="replace")[-2000:]))
    ok = (lost == 0 and missing == 0 and dup == 0 and extra == 0 and pipeline_bad == 0 and
          jobs_lost == 0 and clean)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
