"""Helpers for the Python snippets of the benchmark scripts (lib.sh puts this
folder on PYTHONPATH)."""

from datetime import datetime


def ts(s):
    """Seconds since the epoch of an RFC 3339 time as tusk prints it (UTC,
    "Z", up to nanoseconds; Python parses at most microseconds)."""
    head, _, frac = s.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + ("." + frac[:6] if frac else "")).timestamp()
