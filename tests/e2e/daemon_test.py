"""The daemons' command lines (gflags) and logs (glog): flag spellings, flag
files, bad usage, a taken port, and a stack trace when one crashes."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import BIN_DIR, DEV_KAFKA, INGEST, TUSKD, Tuskd

RUNNER = os.path.join(BIN_DIR, "tusk-runner")


def run(*cmd, timeout=30):
    return subprocess.run([str(c) for c in cmd], capture_output=True, timeout=timeout)


class DaemonFlagsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tusk-daemon-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_bad_usage_exits_2_naming_the_flag(self):
        for binary, args, says in [
            (TUSKD, ["--data-dir", self.tmp, "--bogus"], "unknown flag '--bogus'"),
            (TUSKD, ["--data-dir"], "--data-dir needs a value"),
            (TUSKD, [], "--data-dir is required"),
            (TUSKD, ["--data-dir", self.tmp, "--gc-grace", "soon"], "--gc-grace must be a duration"),
            (TUSKD, ["--data-dir", self.tmp, "extra"], "unexpected argument 'extra'"),
            (TUSKD, ["--data-dir", self.tmp, "--log-level", "loud"], "--log-level must be"),
            (TUSKD, ["--data-dir", self.tmp, "--rebuild-index=maybe"], "rebuild_index"),
            (TUSKD, ["--data-dir", self.tmp, "--listen", "0.0.0.0:0"], "--insecure-allow-remote"),
            (TUSKD, ["--data-dir", self.tmp, "--listen", "[::]:0"], "without --auth"),
            (INGEST, ["--source"], "--source needs a value"),
            (INGEST, ["--source", "s", "--kafka-config", "novalue"], "KEY=VALUE"),
            (RUNNER, ["--pipeline", "p"], "--tuskd is required"),
            (RUNNER, ["--tuskd", "x:1", "--pipeline", "p", "--sandbox", "maybe"],
             "--sandbox must be auto, bwrap or none"),
            (DEV_KAFKA, ["--count", "3"], "--count/--size are for produce"),
            (DEV_KAFKA, ["serve", "--bogus"], "unknown flag '--bogus'"),
        ]:
            r = run(binary, *args)
            self.assertEqual(r.returncode, 2, (binary, args, r.stderr))
            self.assertIn(says, r.stderr.decode(), (binary, args))

    def test_help_and_version_exit_0(self):
        for binary in (TUSKD, INGEST, RUNNER, DEV_KAFKA):
            r = run(binary, "--help")
            self.assertEqual(r.returncode, 0, binary)
            self.assertIn("Usage", r.stdout.decode())
        r = run(TUSKD, "--version")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.decode().startswith("tuskd "))
        # gflags' own listing of the flags.
        r = run(TUSKD, "--helpon=main")
        self.assertEqual(r.returncode, 0)
        self.assertIn("data_dir", r.stdout.decode() + r.stderr.decode())

    def start(self, args, name="tuskd.log"):
        log = os.path.join(self.tmp, name)
        port_file = os.path.join(self.tmp, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        out = open(log, "ab")
        proc = subprocess.Popen([TUSKD, "--port-file", port_file] + args, stdout=out, stderr=out)
        deadline = time.time() + 20
        while time.time() < deadline and proc.poll() is None and not os.path.exists(port_file):
            time.sleep(0.05)
        return proc, log, port_file

    def test_flag_file_underscores_and_negated_bools(self):
        flags = os.path.join(self.tmp, "tuskd.flags")
        with open(flags, "w") as f:
            f.write("--data_dir=%s\n--listen=127.0.0.1:0\n" % os.path.join(self.tmp, "data"))
        proc, log, port_file = self.start(["--flagfile=" + flags, "--no-local-runners",
                                           "--gc_interval=0"])
        try:
            self.assertTrue(os.path.exists(port_file), open(log).read())
            self.assertTrue(os.path.isdir(os.path.join(self.tmp, "data", "index")))
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=20), 0)
        text = open(log).read()
        # One line per message: time, severity, file:line, message.
        self.assertRegex(text, r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z I tuskd\.cc:\d+\] tuskd ")
        self.assertIn("tuskd stopped", text)

    def test_a_taken_port_is_refused(self):
        first = Tuskd(os.path.join(self.tmp, "a"), os.path.join(self.tmp, "a.log"),
                      ["--no-local-runners"])
        first.start()
        try:
            r = run(TUSKD, "--data-dir", os.path.join(self.tmp, "b"), "--listen", first.address,
                    "--no-local-runners")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("cannot listen on", r.stderr.decode())
        finally:
            first.stop()

    def test_a_remote_address_is_served_only_when_asked(self):
        proc, log, port_file = self.start(["--data-dir", os.path.join(self.tmp, "data"),
                                           "--listen", "0.0.0.0:0", "--no-local-runners",
                                           "--insecure-allow-remote"])
        try:
            self.assertTrue(os.path.exists(port_file), open(log).read())
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=20), 0)

    def test_a_crash_prints_a_stack_trace(self):
        proc, log, port_file = self.start(["--data-dir", os.path.join(self.tmp, "data"),
                                           "--listen", "127.0.0.1:0", "--no-local-runners"])
        self.assertTrue(os.path.exists(port_file), open(log).read())
        proc.send_signal(signal.SIGSEGV)
        proc.wait(timeout=20)
        self.assertEqual(proc.returncode, -signal.SIGSEGV)
        text = open(log).read()
        self.assertIn("*** SIGSEGV", text)
        self.assertIn("stack trace", text)
        self.assertIn("main", text)


if __name__ == "__main__":
    unittest.main()
