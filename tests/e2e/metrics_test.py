"""Prometheus metrics and health on tuskd, tusk-runner and tusk-ingest: each
/metrics passes `promtool check metrics` (Debian's prometheus) and its numbers
move when work happens (a put raises commits and bytes, a job raises datums
and jobs, ingest raises records and commits); /healthz and /readyz answer."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import BIN_DIR, INGEST, MockKafka, TuskTestCase, start_tuskd, stop_process

PROMTOOL = shutil.which("promtool")
RUNNER = os.path.join(BIN_DIR, "tusk-runner")

PIPELINE = """pipeline: {name: count}
transform: {cmd: [sh, -c, "for f in /pfs/text/*; do wc -c < $f > /pfs/out/$(basename $f); done"]}
input: {pfs: {repo: text, glob: "/*"}}
"""


def fetch(port, path):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def parse(text):
    """{'name{labels}': value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def value(samples, name, **labels):
    """The sum of `name`'s samples whose labels include `labels`."""
    total = 0.0
    for key, v in samples.items():
        m = re.match(r"([a-z_:]+)(\{(.*)\})?$", key)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        if all(have.get(k) == v2 for k, v2 in labels.items()):
            total += v
    return total


class MetricsTestBase(TuskTestCase):
    def check_promtool(self, text):
        if PROMTOOL is None:
            self.fail("promtool is not installed (scripts/install-deps.sh installs prometheus)")
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        self.assertEqual(r.stdout.decode().strip() + r.stderr.decode().strip(), "",
                         "promtool has remarks")

    def wait_port(self, log_path, timeout=20):
        """The port a process logged as 'serving /metrics ... port N'."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(log_path, errors="replace") as f:
                m = re.search(r"serving /metrics, /healthz and /readyz on port (\d+)", f.read())
            if m:
                return int(m.group(1))
            time.sleep(0.05)
        self.fail("no HTTP port in " + log_path)


class TuskdMetricsTest(MetricsTestBase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        port_file = os.path.join(cls.tmp, "http.port")
        cls.server, cls.s3 = start_tuskd(cls.tmp, args=[
            "--http-listen", "127.0.0.1:0", "--http-port-file", port_file])
        with open(port_file) as f:
            cls.http = int(f.read())

    def scrape(self):
        status, text = fetch(self.http, "/metrics")
        self.assertEqual(status, 200)
        return text

    def test_metrics_pass_promtool_and_move_with_work(self):
        before = parse(self.scrape())
        self.tusk("create", "repo", "text")
        self.tusk("put", "file", "text@master:/a", "-f", "-", input=b"x" * 5000)
        self.tusk("put", "file", "text@master:/b", "-f", "-", input=b"x" * 5000)  # same content
        text = self.scrape()
        self.check_promtool(text)
        after = parse(text)
        delta = lambda name, **l: value(after, name, **l) - value(before, name, **l)
        self.assertEqual(delta("tusk_pfs_commits_finished_total"), 2)
        self.assertEqual(delta("tusk_pfs_written_bytes_total"), 10000)
        self.assertEqual(delta("tusk_pfs_new_chunk_bytes_total"), 5000)  # the second is a duplicate
        self.assertGreaterEqual(value(after, "tusk_pfs_dedup_ratio"), 2.0)
        self.assertGreaterEqual(delta("tusk_pfs_blobs_written_total", result="deduplicated"), 1)
        self.assertEqual(delta("tusk_grpc_requests_total", method="tusk.pfs.v1.API/PutFile", code="OK"), 2)
        self.assertGreaterEqual(delta("tusk_object_store_operations_total", op="put"), 1)

        self.tusk("create", "pipeline", "-f", self.write("count.yaml", PIPELINE.encode()))
        head = self.tusk("inspect", "commit", "text@master", "--json").json()
        self.tusk("wait", "commitset", head["commit_set"], timeout=120)
        after_job = parse(self.scrape())
        self.assertEqual(value(after_job, "tusk_datums_total", pipeline="count", result="processed"), 2)
        self.assertEqual(value(after_job, "tusk_jobs_total", pipeline="count", state="JOB_SUCCESS"), 1)
        self.assertEqual(value(after_job, "tusk_datum_phase_seconds_count", pipeline="count",
                               phase="command"), 2)
        self.assertIn('tusk_pipeline_queue_depth{pipeline="count"}', "\n".join(after_job))
        self.tusk("gc", "--grace", "0s")
        self.assertEqual(value(parse(self.scrape()), "tusk_gc_runs_total"), 1)

    def test_health(self):
        self.assertEqual(fetch(self.http, "/healthz"), (200, "ok\n"))
        self.assertEqual(fetch(self.http, "/readyz")[0], 200)
        self.assertEqual(fetch(self.http, "/nothing")[0], 404)


class RunnerMetricsTest(MetricsTestBase):
    """A tusk-runner started by hand (tuskd --no-local-runners), as on another machine."""
    tuskd_args = ("--no-local-runners",)

    def test_runner_metrics(self):
        self.tusk("create", "repo", "text")
        self.tusk("put", "file", "text@master:/a", "-f", "-", input=b"hello")
        self.tusk("create", "pipeline", "-f", self.write("count.yaml", PIPELINE.encode()))
        log = self.path("runner.log")
        with open(log, "ab") as f:
            runner = subprocess.Popen([RUNNER, "--tuskd", self.server.address, "--pipeline", "count",
                                       "--work-dir", self.path("work"), "--http-listen",
                                       "127.0.0.1:0"], stdout=f, stderr=f)
        try:
            port = self.wait_port(log)
            head = self.tusk("inspect", "commit", "text@master", "--json").json()
            self.tusk("wait", "commitset", head["commit_set"], timeout=120)
            status, text = fetch(port, "/metrics")
            self.assertEqual(status, 200)
            self.check_promtool(text)
            samples = parse(text)
            self.assertEqual(value(samples, "tusk_runner_datums_total", pipeline="count",
                                   result="success"), 1)
            self.assertEqual(value(samples, "tusk_runner_downloaded_bytes_total"), 5)
            self.assertEqual(fetch(port, "/readyz")[0], 200)
        finally:
            stop_process(runner)


class IngestMetricsTest(MetricsTestBase):
    def test_ingest_metrics(self):
        kafka = MockKafka(self.path("kafka.log"), ["events"], partitions=2)
        member = None
        try:
            spec = {"name": "events", "repo": "events", "max_latency_ms": 50,
                    "kafka": {"brokers": kafka.bootstrap, "topics": ["events"],
                              "config": {"session.timeout.ms": "3000", "heartbeat.interval.ms": "500"}}}
            self.tusk("create", "source", "-f", self.write("events.json", json.dumps(spec).encode()))
            subprocess.run([os.path.join(BIN_DIR, "tusk-dev-kafka"), "produce", "--brokers",
                            kafka.bootstrap, "--topic", "events", "--count", "200", "--size", "50"],
                           check=True, capture_output=True, timeout=60)
            log = self.path("ingest.log")
            with open(log, "ab") as f:
                member = subprocess.Popen([INGEST, "--source", "events", "--address", self.server.address,
                                           "--http-listen", "127.0.0.1:0"], stdout=f, stderr=f)
            port = self.wait_port(log)
            deadline = time.time() + 60
            samples = {}
            while time.time() < deadline:
                samples = parse(fetch(port, "/metrics")[1])
                if value(samples, "tusk_ingest_records_total", source="events") >= 200:
                    break
                time.sleep(0.1)
            self.assertEqual(value(samples, "tusk_ingest_records_total", source="events"), 200)
            self.assertGreaterEqual(value(samples, "tusk_ingest_commits_total", source="events"), 1)
            self.assertGreater(value(samples, "tusk_ingest_bytes_total", source="events"), 200 * 50)
            self.assertGreaterEqual(
                value(samples, "tusk_ingest_commit_latency_seconds_count", source="events"), 1)
            self.check_promtool(fetch(port, "/metrics")[1])
            self.assertEqual(fetch(port, "/readyz")[0], 200)
            # Lag is reported per partition once the member has reported.
            deadline = time.time() + 10
            while time.time() < deadline and "tusk_ingest_partition_lag" not in fetch(port, "/metrics")[1]:
                time.sleep(0.2)
            self.assertEqual(value(parse(fetch(port, "/metrics")[1]), "tusk_ingest_partition_lag",
                                   source="events"), 0)
        finally:
            if member:
                stop_process(member)
            kafka.stop()


if __name__ == "__main__":
    unittest.main()
