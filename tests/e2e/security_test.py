"""tuskd --auth and TLS end to end with the real CLI, runners and tusk-ingest:
the root token shown once; tokens made, used, listed and revoked from the
command line with the exit codes they promise; a pipeline whose runners
use their own token; no secret in tuskd's log or in --json listings; TLS and
mutual TLS round trips with a CA made here with openssl."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import (INGEST, TuskTestCase, MockKafka, Tuskd, start_tuskd, stop_process)

PIPELINE = """pipeline: {name: upper}
transform: {cmd: [sh, -c, "for f in /pfs/text/*; do tr a-z A-Z < $f > /pfs/out/$(basename $f); done"]}
input: {pfs: {repo: text, glob: "/*"}}
"""


def run_upper(test, text):
    """Puts `text` into text@master, runs the pipeline `upper` over it and
    returns its output."""
    test.tusk("create", "repo", "text")
    test.tusk("put", "file", "text@master:/a", "-f", "-", input=text)
    test.tusk("create", "pipeline", "-f", test.write("p.yaml", PIPELINE.encode()))
    head = test.tusk("inspect", "commit", "text@master", "--json").json()
    test.tusk("wait", "commitset", head["commit_set"], timeout=120)
    return test.tusk("get", "file", "upper@master:/a").out


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d):
    """A CA, a server certificate for 127.0.0.1/localhost and a client
    certificate, all signed by the CA; and a second CA nobody trusts."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                "-subj", "/CN=tusk test " + ca, cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext + "\n")
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext", cwd=d)


class AuthCliTest(TuskTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        cls.root_file = os.path.join(cls.tmp, "root.token")
        cls.server, cls.s3 = start_tuskd(cls.tmp, args=["--auth", "--root-token-file", cls.root_file])
        with open(cls.root_file) as f:
            cls.root = f.read().strip()
        cls.tusk_env = {"TUSK_TOKEN": cls.root}
        cls.secrets = [cls.root]

    def token(self, *args):
        r = self.tusk("auth", "create-token", *args)
        t = r.out.strip()
        self.assertTrue(t.startswith("tusk_"), r.out)
        self.assertEqual(len(r.out.splitlines()), 1, "only the token goes to stdout")
        self.secrets.append(t)
        return t

    def test_roles_from_the_command_line(self):
        self.tusk_fails(7, "list", "repo", env={"TUSK_TOKEN": ""}, mentions="UNAUTHENTICATED")
        self.tusk_fails(7, "list", "repo", env={"TUSK_TOKEN": "tusk_0123abcd_nothing"},
                        mentions="unknown")
        self.tusk("create", "repo", "sales")
        self.tusk("create", "repo", "hr")
        writer = self.token("--role", "writer", "--repo", "sales*", "--name", "etl")
        reader = self.token("--role", "reader", "--repo", "sales", "--ttl", "1h")
        self.tusk("put", "file", "sales@master:/q1.csv", "-f", "-", input=b"a,b\n",
                  env={"TUSK_TOKEN": writer})
        r = self.tusk_fails(7, "put", "file", "hr@master:/pay.csv", "-f", "-", input=b"x",
                            env={"TUSK_TOKEN": writer}, mentions="PERMISSION_DENIED")
        self.assertIn('on "hr"', r.err)
        self.assertEqual(self.tusk("get", "file", "sales@master:/q1.csv",
                                   env={"TUSK_TOKEN": reader}).out, "a,b\n")
        self.tusk_fails(7, "put", "file", "sales@master:/x", "-f", "-", input=b"x",
                        env={"TUSK_TOKEN": reader})
        names = [r["name"] for r in self.tusk("list", "repo", "--json",
                                               env={"TUSK_TOKEN": reader}).json_lines()]
        self.assertEqual(names, ["sales"])
        self.tusk_fails(7, "gc", env={"TUSK_TOKEN": writer}, mentions="needs admin")
        self.tusk_fails(7, "auth", "list-tokens", env={"TUSK_TOKEN": writer})

        who = self.tusk("auth", "whoami", "--json", env={"TUSK_TOKEN": reader}).json()
        self.assertEqual(who["token"]["role"], "READER")
        self.assertTrue(who["token"]["expires"])
        listed = self.tusk("auth", "list-tokens", "--json").json()
        ids = {t["id"]: t for t in listed["tokens"]}
        self.assertIn(who["token"]["id"], ids)
        self.tusk("auth", "revoke-token", who["token"]["id"])
        self.tusk_fails(7, "get", "file", "sales@master:/q1.csv", env={"TUSK_TOKEN": reader},
                        mentions="revoked")
        self.tusk_fails(3, "auth", "revoke-token", "nosuchid")
        self.tusk_fails(2, "auth", "create-token", "--role", "boss")
        self.tusk_fails(1, "auth", "create-token", "--role", "writer")  # no --repo

    def test_a_pipeline_runs_with_its_own_runner_token(self):
        self.assertEqual(run_upper(self, b"hello\n"), "HELLO\n")
        runners = [t for t in self.tusk("auth", "list-tokens", "--json").json()["tokens"]
                   if t["role"] == "RUNNER"]
        self.assertEqual([t["pipeline"] for t in runners], ["upper"])

    def test_secrets_stay_out_of_logs_and_listings(self):
        self.token("--role", "admin", "--name", "ops")
        listing = self.tusk("auth", "list-tokens", "--json").out
        with open(self.server.log_path, errors="replace") as f:
            log = f.read()
        for secret in self.secrets:
            tail = secret.split("_")[-1]
            self.assertNotIn(tail, listing)
            self.assertNotIn(tail, log)
        self.assertNotIn("hash", listing)


class ContextTest(TuskTestCase):
    """Contexts and login against a tuskd with --auth (a tuskd of its own)."""

    setUpClass = classmethod(AuthCliTest.setUpClass.__func__)

    def cli(self, *args, input=None, env=None):
        """tusk with nothing but the config file: no --address, no TUSK_TOKEN."""
        full = {k: v for k, v in os.environ.items() if not k.startswith("TUSK_")}
        full.update({"TUSK_CONFIG": self.path("config.yaml")}, **(env or {}))
        return subprocess.run([os.path.join(os.path.dirname(INGEST), "tusk")] + list(args),
                              input=input, capture_output=True, env=full, timeout=60)

    def test_contexts_and_login(self):
        self.tusk("create", "repo", "ctx")
        r = self.cli("config", "set-context", "here", "--address", self.server.address)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.cli("list", "repo").returncode, 7)  # no token yet
        self.assertEqual(self.cli("auth", "login", input=b"tusk_nope_0000\n").returncode, 7)
        r = self.cli("auth", "login", input=(self.root + "\n").encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.stat(self.path("config.yaml")).st_mode & 0o777, 0o600)
        r = self.cli("list", "repo", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ctx", [json.loads(l)["name"] for l in r.stdout.decode().splitlines()])
        listed = self.cli("config", "get-contexts", "--json").stdout.decode()
        self.assertEqual(json.loads(listed)["has_token"], True)
        self.assertNotIn(self.root.split("_")[-1], listed)
        # Another address does not get the context's token.
        other = self.cli("list", "repo", env={"TUSK_ADDRESS": "localhost:" + self.server.address.split(":")[1]})
        self.assertEqual(other.returncode, 7, other.stderr)
        self.assertEqual(self.cli("config", "use-context", "nowhere").returncode, 3)
        self.assertEqual(self.cli("auth", "logout").returncode, 0)
        self.assertEqual(self.cli("list", "repo").returncode, 7)


class RootTokenTest(unittest.TestCase):
    def test_root_token_is_shown_once_and_can_be_rotated(self):
        tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        try:
            log = os.path.join(tmp, "tuskd.log")
            server = Tuskd(os.path.join(tmp, "data"), log, ["--auth"])
            server.start()
            server.stop()
            with open(log) as f:
                first = f.read()
            self.assertEqual(first.count("Root token (shown once"), 1, first)
            root = first.split("Root token (shown once; keep it safe):\n")[1].split()[0]
            self.assertTrue(root.startswith("tusk_root_"))
            self.assertEqual(sum(1 for line in first.splitlines() if root in line), 1)
            server.start()
            server.stop()
            with open(log) as f:
                self.assertEqual(f.read().count("Root token (shown once"), 1)
            server.start(once=["--rotate-root-token"])
            env = dict(os.environ, TUSK_TOKEN=root)
            r = subprocess.run([os.path.join(os.path.dirname(INGEST), "tusk"), "--address",
                                server.address, "list", "repo"], env=env, capture_output=True)
            self.assertEqual(r.returncode, 7, r.stderr)
            server.stop()
            with open(log) as f:
                self.assertEqual(f.read().count("Root token (shown once"), 2)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class TlsTest(TuskTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        make_ca(cls.tmp)
        p = lambda f: os.path.join(cls.tmp, f)
        cls.server, cls.s3 = start_tuskd(cls.tmp, args=[
            "--tls-cert", p("server.pem"), "--tls-key", p("server.key")])
        cls.tusk_env = {"TUSK_TLS_CA": p("ca.pem")}

    def test_round_trip_over_tls(self):
        self.tusk("create", "repo", "t")
        self.tusk("put", "file", "t@master:/x", "-f", "-", input=b"over tls")
        self.assertEqual(self.tusk("get", "file", "t@master:/x").out, "over tls")
        # Plaintext, or a CA that did not sign tuskd's certificate, does not connect.
        self.tusk_fails(5, "list", "repo", env={"TUSK_TLS_CA": ""})
        self.tusk_fails(5, "list", "repo", env={"TUSK_TLS_CA": self.path("other-ca.pem")})
        self.tusk_fails(2, "list", "repo", env={"TUSK_TLS_CA": self.path("nothing.pem")},
                        mentions="cannot read TLS CA bundle")
        # The flag does what the variable does.
        self.tusk("list", "repo", "--tls-ca", self.path("ca.pem"), env={"TUSK_TLS_CA": ""})

    def test_pipeline_under_tls(self):
        self.assertEqual(run_upper(self, b"abc\n"), "ABC\n")


class MutualTlsTest(TuskTestCase):
    """Mutual TLS and tokens together, and tusk-ingest through both."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tusk-e2e-")
        make_ca(cls.tmp)
        p = lambda f: os.path.join(cls.tmp, f)
        cls.server, cls.s3 = start_tuskd(cls.tmp, args=[
            "--tls-cert", p("server.pem"), "--tls-key", p("server.key"),
            "--tls-client-ca", p("ca.pem"), "--auth", "--root-token-file", p("root.token")])
        with open(p("root.token")) as f:
            cls.root = f.read().strip()
        cls.tusk_env = {"TUSK_TLS_CA": p("ca.pem"), "TUSK_TLS_CERT": p("client.pem"),
                        "TUSK_TLS_KEY": p("client.key"), "TUSK_TOKEN": cls.root}

    def test_client_certificate_required(self):
        self.tusk("create", "repo", "m")
        self.assertEqual(self.tusk("list", "repo", "--json").json_lines()[0]["name"], "m")
        self.tusk_fails(5, "list", "repo", env={"TUSK_TLS_CERT": "", "TUSK_TLS_KEY": ""})
        self.tusk_fails(2, "list", "repo", env={"TUSK_TLS_KEY": ""}, mentions="needs its key")

    def test_ingest_over_mutual_tls_with_a_writer_token(self):
        writer = self.tusk("auth", "create-token", "--role", "writer", "--repo", "clicks").out.strip()
        token_file = self.write("writer.token", writer.encode())
        kafka = MockKafka(self.path("kafka.log"), ["clicks"], partitions=1)
        member = None
        try:
            spec = {"name": "clicks", "repo": "clicks", "max_latency_ms": 50,
                    "kafka": {"brokers": kafka.bootstrap, "topics": ["clicks"],
                              "config": {"session.timeout.ms": "3000",
                                         "heartbeat.interval.ms": "500"}}}
            self.tusk("create", "source", "-f", self.write("clicks.json", json.dumps(spec).encode()))
            subprocess.run(["kcat", "-P", "-b", kafka.bootstrap, "-t", "clicks"],
                           input=b"one\ntwo\nthree\n", check=True, timeout=30)
            with open(self.path("ingest.log"), "ab") as log:
                member = subprocess.Popen(
                    [INGEST, "--source", "clicks", "--address", self.server.address,
                     "--token-file", token_file, "--tls-ca", self.path("ca.pem"),
                     "--tls-cert", self.path("client.pem"), "--tls-key", self.path("client.key")],
                    stdout=log, stderr=log)
            deadline = time.time() + 60
            records = 0
            while time.time() < deadline and records < 3:
                r = self.tusk("list", "commit", "clicks@master", "--json", check=False)
                records = sum(int(c.get("metadata", {}).get("ingest/records", "0") or 0)
                              for c in r.json_lines()) if r.returncode == 0 else 0
                time.sleep(0.2)
            with open(self.path("ingest.log"), errors="replace") as f:
                ingest_log = f.read()
            self.assertEqual(records, 3, ingest_log[-3000:])
            self.assertNotIn(writer.split("_")[-1], ingest_log)
        finally:
            if member:
                stop_process(member)
            kafka.stop()


if __name__ == "__main__":
    unittest.main()
