"""The README's examples run as written: every ```sh block of README.md, in
a copy of examples/, against a test tuskd (the block's own `tuskd` and
`export TUSK_ADDRESS` lines are what the harness does instead)."""

import os
import re
import shutil
import subprocess

from harness import BIN_DIR, TuskTestCase

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def sh_blocks(text):
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


class ReadmeTest(TuskTestCase):
    def test_every_sh_block_runs(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            blocks = sh_blocks(f.read())
        self.assertGreaterEqual(len(blocks), 2, "no sh blocks in README.md")
        work = self.path("examples")
        shutil.copytree(os.path.join(ROOT, "examples"), work)
        env = dict(os.environ, PATH=BIN_DIR + os.pathsep + os.environ["PATH"],
                   TUSK_ADDRESS=self.server.address)
        for block in blocks:
            lines = [l for l in block.splitlines()
                     if not re.match(r"\s*(tuskd |export TUSK_ADDRESS=)", l)]
            script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
            r = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                               timeout=300)
            self.assertEqual(r.returncode, 0, "README block failed:\n%s\nstdout:\n%s\nstderr:\n%s"
                             % (block, r.stdout.decode()[-3000:], r.stderr.decode()[-3000:]))
        # What the examples made.
        self.assertTrue(os.path.exists(os.path.join(work, "old-photos", "one.raw")))
        counts = self.tusk("get", "file", "wc-reduce@master:/counts").out
        self.assertRegex(counts, r"\b2 the\b")
        files = self.tusk("list", "file", "images@master:/raw", "--json").json_lines()
        self.assertEqual(sorted(os.path.basename(f["path"]) for f in files), ["one.raw", "two.raw"])
