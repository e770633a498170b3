"""Ingest sources through the CLI: create, list, inspect, update, delete, bad specs."""

import json
import unittest

from harness import TuskTestCase


class SourceCli(TuskTestCase):
    def test_lifecycle(self):
        r = self.tusk("create", "source", "orders", "--kafka", "127.0.0.1:9", "--topic", "orders",
                      "--topic", "refunds", "--repo", "orders", "--max-latency", "50ms",
                      "--max-bytes", "4MiB", "--start", "latest", "--layout", "hour", "--json")
        spec = r.json()["spec"]
        self.assertEqual(spec["kafka"]["topics"], ["orders", "refunds"])
        self.assertEqual(spec["max_latency_ms"], "50")
        self.assertEqual(spec["max_bytes"], str(4 << 20))
        self.assertEqual(spec["max_records"], "100000")  # default filled in
        self.assertEqual(spec["kafka"]["start"], "LATEST")
        self.assertEqual(spec["layout"], "HOUR")
        self.assertEqual(spec["branch"], "master")
        # The repo was created for it.
        self.assertIn("orders", [x["name"] for x in self.tusk("list", "repo", "--json").json_lines()])
        names = [s["spec"]["name"] for s in self.tusk("list", "source", "--json").json_lines()]
        self.assertIn("orders", names)
        info = self.tusk("inspect", "source", "orders", "--json").json()
        self.assertEqual(info["partitions"], [])  # nothing ingested, no member reported
        self.assertIn("Commit policy", self.tusk("inspect", "source", "orders").out)
        # Creating it again needs --update; --update replaces the spec.
        self.tusk_fails(4, "create", "source", "orders", "--kafka", "x", "--topic", "orders",
                        "--repo", "orders", mentions="already exists")
        r = self.tusk("create", "source", "orders", "--kafka", "127.0.0.1:9", "--topic", "orders",
                      "--repo", "orders", "--update", "--json")
        self.assertEqual(r.json()["spec"]["kafka"]["topics"], ["orders"])
        self.tusk("delete", "source", "orders")
        self.tusk_fails(3, "inspect", "source", "orders", mentions="not found")
        self.tusk_fails(3, "delete", "source", "orders", mentions="not found")
        # The data stays.
        self.assertIn("orders", [x["name"] for x in self.tusk("list", "repo", "--json").json_lines()])

    def test_spec_file(self):
        spec = {"name": "clicks", "kafka": {"brokers": "127.0.0.1:9", "topics": ["clicks"]},
                "repo": "clicks", "max_records": 500}
        path = self.write("clicks.json", json.dumps(spec).encode())
        info = self.tusk("create", "source", "-f", path, "--json").json()
        self.assertEqual(info["spec"]["max_records"], "500")
        self.assertEqual(info["spec"]["kafka"]["start"], "EARLIEST")
        bad = self.write("bad.json", b'{"name": "x", "kafka": {"brokers": "b", "topicz": ["t"]}}')
        self.tusk_fails(1, "create", "source", "-f", bad, mentions="topicz")
        self.tusk_fails(3, "create", "source", "-f", self.path("missing.json"), mentions="missing.json")

    def test_yaml_spec_file(self):
        path = self.write("views.yaml", b"""# page views
name: views
kafka:
  brokers: 127.0.0.1:9
  topics: [views, views-eu]
  start: LATEST
  config: {client.rack: "eu-1"}
repo: views
max_records: 2000
max_latency_ms: 50
layout: HOUR
""")
        info = self.tusk("create", "source", "-f", path, "--json").json()
        self.assertEqual(info["spec"]["kafka"]["topics"], ["views", "views-eu"])
        self.assertEqual(info["spec"]["kafka"]["config"], {"client.rack": "eu-1"})
        self.assertEqual(info["spec"]["max_records"], "2000")
        self.assertEqual(info["spec"]["layout"], "HOUR")
        # Flags override the file.
        info = self.tusk("create", "source", "-f", path, "--update", "--max-records", "7",
                         "--json").json()
        self.assertEqual(info["spec"]["max_records"], "7")
        bad = self.write("bad.yaml", b"name: v2\nkafka:\n  brokers: b\n  topicz: [t]\n")
        self.tusk_fails(1, "create", "source", "-f", bad, mentions="topicz")
        broken = self.write("broken.yaml", b"name: v2\nkafka: [unclosed\n")
        self.tusk_fails(1, "create", "source", "-f", broken, mentions="broken.yaml: line")
        two = self.write("two.yaml", b"name: a\n---\nname: b\n")
        self.tusk_fails(1, "create", "source", "-f", two, mentions="2 documents")

    def test_bad_specs(self):
        self.tusk_fails(1, "create", "source", "bad name", "--kafka", "x", "--topic", "t",
                        "--repo", "r", mentions="bad name")
        self.tusk_fails(1, "create", "source", "s1", "--kafka", "x", "--topic", "a/b",
                        "--repo", "r", mentions="a/b")
        self.tusk_fails(1, "create", "source", "s1", "--topic", "t", "--repo", "r",
                        mentions="--kafka")
        self.tusk_fails(1, "create", "source", "s1", "--kafka", "x", "--repo", "r",
                        mentions="--topic")
        self.tusk_fails(1, "create", "source", "s1", "--kafka", "x", "--topic", "t", "--repo", "r",
                        "--max-latency", "soon", mentions="soon")
        self.tusk_fails(1, "create", "source", "s1", "--kafka", "x", "--topic", "t", "--repo", "r",
                        "--max-bytes", "lots", mentions="lots")
        self.tusk_fails(1, "create", "source", "s1", "--kafka", "x", "--topic", "t", "--repo", "r",
                        "--start", "middle", mentions="middle")
        self.tusk_fails(1, "create", "source", "s1", "--kafka", "x", "--topic", "t", "--topic", "t",
                        "--repo", "r", mentions="twice")
        # Two sources may not feed one topic into one branch.
        self.tusk("create", "source", "s2", "--kafka", "x", "--topic", "shared", "--repo", "sh")
        self.tusk_fails(4, "create", "source", "s3", "--kafka", "x", "--topic", "shared",
                        "--repo", "sh", mentions="s2")
        self.tusk("create", "source", "s4", "--kafka", "x", "--topic", "shared", "--repo", "sh",
                  "--branch", "other")
        self.tusk_fails(2, "create", "source", mentions="missing source name")


if __name__ == "__main__":
    unittest.main()
