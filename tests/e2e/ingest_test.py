"""Kafka ingest end to end: tusk-dev-kafka (a real Kafka-protocol server on
loopback), producers kcat (Debian's, independent of us) and tusk-dev-kafka
produce, tusk-ingest members that are killed, restarted, joined and left, and a
tuskd that is killed in the middle. Afterwards every (partition, offset) the
broker holds must be in the repo exactly once, in order, with its value.
"""

import json
import os
import random
import shutil
import subprocess
import threading
import time
import unittest

from harness import DEV_KAFKA, IngestMember, MockKafka, TuskTestCase

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
# Fast failure detection, so a killed member's partitions move on quickly.
FAST_GROUP = {"session.timeout.ms": "3000", "heartbeat.interval.ms": "500"}


class KcatFeeder(threading.Thread):
    """Feeds `count` keyed records to `kcat -P` at about `rate` records/s."""

    def __init__(self, bootstrap, topic, count, rate, prefix):
        super().__init__(daemon=True)
        self.proc = subprocess.Popen(
            [KCAT, "-P", "-b", bootstrap, "-t", topic, "-K", ":", "-X", "linger.ms=5"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.count, self.rate, self.prefix = count, rate, prefix

    def run(self):
        start = time.time()
        step = max(1, self.rate // 20)
        for i in range(0, self.count, step):
            n = min(step, self.count - i)
            lines = "".join("%s%d:kcat-%d\n" % (self.prefix, j, j) for j in range(i, i + n))
            self.proc.stdin.write(lines.encode())
            self.proc.stdin.flush()
            delay = start + (i + n) / self.rate - time.time()
            if delay > 0:
                time.sleep(delay)
        self.proc.stdin.close()

    def finish(self, test):
        self.join(timeout=120)
        self.proc.wait(timeout=60)
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        test.assertEqual(self.proc.returncode, 0, "kcat -P failed: %s" % err.decode(errors="replace"))


class IngestTest(TuskTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not KCAT:
            raise unittest.SkipTest("kcat is not installed (scripts/install-deps.sh installs it)")
        cls.kafka = MockKafka(os.path.join(cls.tmp, "kafka.log"),
                              ["kill", "members", "restart", "lossy", "letters"])
        cls.members = []

    @classmethod
    def tearDownClass(cls):
        for m in cls.members:
            m.kill9()
        cls.kafka.stop()
        super().tearDownClass()

    # ---- helpers ----

    def create_source(self, name, topic, repo, **fields):
        spec = {"name": name, "repo": repo,
                "kafka": {"brokers": self.kafka.bootstrap, "topics": [topic], "config": FAST_GROUP},
                "max_latency_ms": 50}
        spec.update(fields)
        spec_file = self.write("%s.json" % name, json.dumps(spec).encode())
        self.tusk("create", "source", "-f", spec_file)

    def member(self, source, member_id):
        m = IngestMember(self.server.address, source, self.path("%s-%s.log" % (source, member_id)),
                         member_id)
        self.members.append(m)
        return m

    def produce_ours(self, topic, count, rate, partition=None, size=20, prefix="o"):
        args = [DEV_KAFKA, "produce", "--brokers", self.kafka.bootstrap, "--topic", topic,
                "--count", str(count), "--size", str(size), "--key-prefix", prefix]
        if rate:
            args += ["--rate", str(rate)]
        if partition is not None:
            args += ["--partition", str(partition)]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish_producer(self, proc):
        _, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, "tusk-dev-kafka produce failed: %s" % err.decode())

    def wait_log(self, member, text, count, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if member.log().count(text) >= count:
                return
            time.sleep(0.05)
        try:
            with open(self.kafka.log_path, errors="replace") as f:
                kafka_log = f.read()[-2000:]
        except OSError:
            kafka_log = ""
        self.fail("no %r in the log of %s:\n%s\ntusk-dev-kafka log:\n%s"
                  % (text, member.log_path, member.log()[-3000:], kafka_log))

    def broker_records(self, topic):
        """Every record the broker holds: {partition: [(offset, key, value)]}, by kcat -C."""
        r = subprocess.run([KCAT, "-C", "-b", self.kafka.bootstrap, "-t", topic, "-e", "-q",
                            "-f", "%p %o %k %s\n"], capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        parts = {}
        for line in r.stdout.decode().splitlines():
            p, o, k, v = line.split(" ", 3)
            parts.setdefault(int(p), []).append((int(o), k, v))
        for recs in parts.values():
            recs.sort()
        return parts

    def wait_ingested(self, source, expected, timeout=120, member=None):
        """Until the branch head records every partition's end offset."""
        want = {p: recs[-1][0] + 1 for p, recs in expected.items()}
        deadline = time.time() + timeout
        got = {}
        while time.time() < deadline:
            info = self.tusk("inspect", "source", source, "--json").json()
            got = {ps["partition"]: int(ps.get("committed_offset", -1))
                   for ps in info.get("partitions", [])}
            if all(got.get(p, -1) >= n for p, n in want.items()):
                return info
            time.sleep(0.2)
        logs = ""
        if member is not None:
            logs = "\nmember log:\n%s\ntuskd log:\n%s" % (member.log()[-4000:],
                                                            self.server.log()[-4000:])
        self.fail("source %s did not catch up: head %s, broker %s%s" % (source, got, want, logs))

    def check_exactly_once(self, repo, topic, expected):
        """Each broker record appears once, in offset order, with its key and value."""
        out = self.path("export-" + repo)
        shutil.rmtree(out, ignore_errors=True)
        self.tusk("get", "file", "%s@master:/%s" % (repo, topic), "-o", out)
        for p, recs in expected.items():
            pdir = os.path.join(out, str(p))
            files = sorted(os.listdir(pdir), key=lambda n: int(n.split("-")[0]))
            lines = []
            prev_last = None
            for name in files:
                first, last = (int(x) for x in name.split("-"))
                if prev_last is not None:
                    self.assertEqual(first, prev_last + 1, "partition %d: files %s" % (p, files[:50]))
                prev_last = last
                with open(os.path.join(pdir, name)) as f:
                    file_lines = [json.loads(l) for l in f]
                self.assertEqual(file_lines[0]["offset"], first, name)
                self.assertEqual(file_lines[-1]["offset"], last, name)
                lines.extend(file_lines)
            got = [(r["offset"], r.get("key"), r.get("value")) for r in lines]
            self.assertEqual(len(got), len(recs), "partition %d: %d records in the repo, broker has %d"
                             % (p, len(got), len(recs)))
            self.assertEqual(got, recs, "partition %d differs from the broker" % p)
            for r in lines:
                self.assertEqual(r["partition"], p)

    def export_lines(self, where):
        """The JSON lines of every file under a directory, in offset order."""
        out = self.path("export-" + where.replace("/", "_").replace("@", "_").replace(":", "_"))
        shutil.rmtree(out, ignore_errors=True)
        self.tusk("get", "file", where, "-o", out)
        lines = []
        for name in os.listdir(out):
            with open(os.path.join(out, name)) as f:
                lines.extend(json.loads(l) for l in f)
        return sorted(lines, key=lambda r: r["offset"])

    def commits(self, repo):
        return self.tusk("list", "commit", "%s@master" % repo, "--json").json_lines()

    # ---- tests ----

    def test_exactly_once_while_kill9_ten_times(self):
        self.create_source("kill", "kill", "kill")
        feeder = KcatFeeder(self.kafka.bootstrap, "kill", 100000, 2500, "c")
        ours = self.produce_ours("kill", 100000, 2500)
        feeder.start()
        rng = random.Random(7)
        m = self.member("kill", "m1")
        m.start()
        for i in range(10):
            # Kill while it consumes: after it got its partitions, at a random moment.
            self.wait_log(m, "assigned", i + 1)
            time.sleep(rng.uniform(0.1, 1.5))
            self.assertTrue(m.running(), "tusk-ingest exited:\n" + m.log()[-3000:])
            m.kill9()
            m.start()
        feeder.finish(self)
        self.finish_producer(ours)
        expected = self.broker_records("kill")
        self.assertEqual(sum(len(r) for r in expected.values()), 200000)
        self.assertEqual(len(expected), 4)
        self.wait_ingested("kill", expected)
        self.assertEqual(m.stop(), 0)
        self.check_exactly_once("kill", "kill", expected)
        commits = self.commits("kill")
        self.assertGreater(len(commits), 10)
        self.assertTrue(all(c["origin"] == "INGEST" for c in commits))
        self.tusk("fsck")

    def test_exactly_once_while_members_join_and_leave(self):
        self.create_source("members", "members", "members")
        feeder = KcatFeeder(self.kafka.bootstrap, "members", 100000, 7000, "c")
        ours = self.produce_ours("members", 100000, 7000)
        feeder.start()
        a, b = self.member("members", "a"), self.member("members", "b")
        a.start()
        time.sleep(4)
        b.start()          # join: the partitions are split
        time.sleep(5)
        self.assertEqual(b.stop(), 0)  # leave cleanly: a takes everything
        time.sleep(3)
        b.start()          # join again
        time.sleep(4)
        a.kill9()          # a dies: b takes everything after a's session times out
        time.sleep(2)
        a.start()
        feeder.finish(self)
        self.finish_producer(ours)
        expected = self.broker_records("members")
        self.assertEqual(sum(len(r) for r in expected.values()), 200000)
        self.wait_ingested("members", expected)
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)
        self.check_exactly_once("members", "members", expected)
        writers = {c["metadata"]["ingest/member"] for c in self.commits("members")}
        self.assertEqual(writers, {"a", "b"})

    def test_tuskd_restart_loses_nothing(self):
        self.create_source("restart", "restart", "restart")
        ours = self.produce_ours("restart", 60000, 6000)
        m = self.member("restart", "m1")
        m.start()
        time.sleep(5)
        self.server.kill9()
        time.sleep(2)
        self.server.start(same_address=True)
        self.finish_producer(ours)
        expected = self.broker_records("restart")
        self.wait_ingested("restart", expected, member=m)
        self.assertEqual(m.stop(), 0)
        self.check_exactly_once("restart", "restart", expected)
        self.assertIn("retrying", m.log())

    def test_gap_is_recorded_not_skipped(self):
        self.create_source("lossy", "lossy", "lossy", max_records=100)
        self.finish_producer(self.produce_ours("lossy", 100, 0, partition=0))
        m = self.member("lossy", "m1")
        m.start()
        self.wait_ingested("lossy", {0: [(99, None, None)]})
        self.assertEqual(m.stop(), 0)
        # 7 MiB more: the broker keeps ~5 MB per partition and trims the rest,
        # including offsets the source has not read.
        self.finish_producer(self.produce_ours("lossy", 7000, 0, partition=0, size=1024))
        expected = self.broker_records("lossy")
        low = expected[0][0][0]
        self.assertGreater(low, 100, "the broker did not trim")
        m.start()
        self.wait_ingested("lossy", expected)
        self.assertEqual(m.stop(), 0)
        self.assertIn("RECORDS LOST", m.log())
        info = self.tusk("inspect", "source", "lossy", "--json").json()
        p0 = [ps for ps in info["partitions"] if ps["partition"] == 0][0]
        self.assertEqual(int(p0["lost_records"]), low - 100)
        self.assertEqual(p0["last_gap"], "100-%d" % (low - 1))
        gap_commits = [c for c in self.commits("lossy") if "kafka/lossy/0/gap" in c["metadata"]]
        self.assertEqual(len(gap_commits), 1)
        self.assertEqual(gap_commits[0]["metadata"]["kafka/lossy/0/gap"], "100-%d" % (low - 1))
        text = self.tusk("inspect", "source", "lossy").out
        self.assertIn("100-%d" % (low - 1), text)

    def test_dead_letters_and_framing(self):
        self.create_source("letters", "letters", "letters", value_format="JSON",
                           max_record_bytes=2048)
        records = [b'{"n": 1}', b"not json", b'{"big": "' + b"x" * 3000 + b'"}', b'[1, 2]']
        for i, v in enumerate(records):
            r = subprocess.run([KCAT, "-P", "-b", self.kafka.bootstrap, "-t", "letters", "-p", "0",
                                "-k", "key%d" % i, "-H", "trace=t%d" % i],
                               input=v, capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
        m = self.member("letters", "m1")
        m.start()
        self.wait_ingested("letters", {0: [(3, None, None)]})
        self.assertEqual(m.stop(), 0)
        good = self.export_lines("letters@master:/letters/0")
        self.assertEqual([r["offset"] for r in good], [0, 3])
        self.assertEqual(good[0]["value"], {"n": 1})
        self.assertEqual(good[1]["value"], [1, 2])
        self.assertEqual(good[0]["key"], "key0")
        self.assertEqual(good[0]["headers"], [{"name": "trace", "value": "t0"}])
        dead = self.export_lines("letters@master:/_dead_letter/letters/0")
        self.assertEqual([r["offset"] for r in dead], [1, 2])
        self.assertIn("not valid JSON", dead[0]["error"])
        self.assertEqual(dead[0]["value"], "not json")
        self.assertIn("over max_record_bytes", dead[1]["error"])
        self.assertEqual(len(dead[1]["value"]), 3011)
        self.assertIn("dead letter letters/0@1", m.log())
        head = self.tusk("inspect", "commit", "letters@master", "--json").json()
        self.assertEqual(head["metadata"]["ingest/dead_letters"], "2")


if __name__ == "__main__":
    unittest.main()
