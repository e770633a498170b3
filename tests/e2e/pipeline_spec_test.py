"""Pipeline specs through the CLI: Pachyderm-style YAML and JSON, several
pipelines in one file, and bad specs that must be refused with an error that
names what is wrong (unsupported field, bad glob, unknown repo, cycle)."""

import json

from harness import TuskTestCase

WORDCOUNT = b"""# two stages, in one file
pipeline:
  name: wc-map
description: counts words per file
transform:
  cmd: [sh, -c, "cat /pfs/text/* | tr -s ' ' '\\\\n' > /pfs/out/words"]
  env: {LC_ALL: C}
input:
  pfs:
    repo: text
    glob: /*
parallelism_spec:
  constant: 2
datum_timeout: 60s
---
pipeline: {name: wc-reduce}
transform: {cmd: [sh, -c, "sort /pfs/wc-map/* | uniq -c > /pfs/out/counts"]}
input: {pfs: {repo: wc-map, glob: /}}
"""


class PipelineSpecTest(TuskTestCase):
    def test_create_list_inspect_update_delete(self):
        self.tusk("create", "repo", "text")
        spec = self.write("wc.yaml", WORDCOUNT)
        r = self.tusk("create", "pipeline", "-f", spec)
        self.assertIn("created pipeline wc-map (version 1)", r.out)
        self.assertIn("created pipeline wc-reduce (version 1)", r.out)
        pipes = {p["spec"]["pipeline"]["name"]: p for p in
                 self.tusk("list", "pipeline", "--json").json_lines()}
        self.assertLessEqual({"wc-map", "wc-reduce"}, set(pipes))
        m = pipes["wc-map"]
        self.assertEqual(m["spec"]["parallelism_spec"]["constant"], "2")
        self.assertEqual(m["spec"]["input"]["pfs"]["branch"], "master")
        self.assertEqual(m["spec"]["datum_tries"], "3")
        self.assertEqual(m["spec"]["transform"]["env"], {"LC_ALL": "C"})
        self.assertEqual(m["state"], "RUNNING")
        # Output repos exist, named after the pipelines.
        repos = [x["name"] for x in self.tusk("list", "repo", "--json").json_lines()]
        self.assertIn("wc-map", repos)
        self.assertIn("wc-reduce", repos)
        self.assertIn("Input: text@master:/*", self.tusk("inspect", "pipeline", "wc-map").out)
        self.assertIn("wc-map", self.tusk("list", "pipeline").out)
        # Update from JSON (Pachyderm's JSON form): a new version.
        js = self.write("map.json", json.dumps({
            "pipeline": {"name": "wc-map"}, "transform": {"cmd": ["true"]},
            "input": {"pfs": {"repo": "text", "glob": "/*"}}}).encode())
        self.tusk_fails(4, "create", "pipeline", "-f", js, mentions="exists")
        self.assertIn("version 2", self.tusk("update", "pipeline", "-f", js).out)
        self.assertEqual(self.tusk("stop", "pipeline", "wc-map", "--json").json()["state"], "PAUSED")
        self.assertEqual(self.tusk("start", "pipeline", "wc-map", "--json").json()["state"], "RUNNING")
        # Deleting a pipeline another one reads is refused.
        self.tusk_fails(4, "delete", "pipeline", "wc-map", mentions="wc-reduce")
        self.tusk("delete", "pipeline", "wc-reduce")
        self.tusk("delete", "pipeline", "wc-map", "--keep-repo")
        repos = [x["name"] for x in self.tusk("list", "repo", "--json").json_lines()]
        self.assertIn("wc-map", repos)
        self.assertNotIn("wc-reduce", repos)
        self.tusk_fails(3, "inspect", "pipeline", "wc-map", mentions="not found")

    def test_bad_specs(self):
        self.tusk("create", "repo", "raw")
        cases = [
            (b"pipeline: {name: p}\ntransform: {cmd: [x]}\ninput: {pfs: {repo: raw, glob: /*}}\n"
             b"egress: {URL: 'gs://bucket/dir'}\n", 1, "egress.URL: 'gs://bucket/dir': tusk egresses to S3"),
            (b"pipeline: {name: p}\ntransform: {cmd: [x]}\ninput: {pfs: {repo: raw, glob: '/[ab'}}\n",
             1, "input.pfs.glob"),
            (b"pipeline: {name: p}\ntransform: {cmd: [x]}\ninput: {pfs: {repo: nosuch, glob: /*}}\n",
             3, "input repo nosuch"),
            (b"pipeline: {name: p}\ninput: {pfs: {repo: raw, glob: /*}}\n", 1, "transform.cmd"),
            (b"pipeline: {name: p}\ntransform: {cmd: [x]}\ninput: {pfs: {repo: p, glob: /*}}\n",
             1, "cycle"),
            (b"pipeline: {name: p}\ntransform: {cmd: [x]}\ninput:\n  join:\n"
             b"  - pfs: {repo: raw, glob: '/(*)', join_on: $2}\n", 1, "refers to group 2"),
            (b"pipeline: {name: p}\ntransform: {cmd: [x]\n", 1, "line "),
            (b"pipeline: {name: raw}\ntransform: {cmd: [x]}\ninput: {pfs: {repo: raw, glob: /*}}\n",
             1, "cycle"),
        ]
        for i, (text, code, mention) in enumerate(cases):
            path = self.write("bad%d.yaml" % i, text)
            self.tusk_fails(code, "create", "pipeline", "-f", path, mentions=mention)
        # A cycle through two pipelines.
        a = self.write("a.yaml", b"pipeline: {name: a}\ntransform: {cmd: [x]}\ninput: {pfs: {repo: raw, glob: /}}\n")
        b = self.write("b.yaml", b"pipeline: {name: b}\ntransform: {cmd: [x]}\ninput: {pfs: {repo: a, glob: /}}\n")
        self.tusk("create", "pipeline", "-f", a)
        self.tusk("create", "pipeline", "-f", b)
        loop = self.write("a2.yaml", b"pipeline: {name: a}\ntransform: {cmd: [x]}\ninput: {pfs: {repo: b, glob: /}}\n")
        self.tusk_fails(1, "update", "pipeline", "-f", loop, mentions="a <- b <- a")
        # A plain repo's name cannot become a pipeline.
        self.tusk("create", "repo", "taken")
        t = self.write("t.yaml", b"pipeline: {name: taken}\ntransform: {cmd: [x]}\ninput: {pfs: {repo: raw, glob: /}}\n")
        self.tusk_fails(4, "create", "pipeline", "-f", t, mentions="not a pipeline's output")
        self.tusk_fails(2, "create", "pipeline")


if __name__ == "__main__":
    import unittest
    unittest.main()
