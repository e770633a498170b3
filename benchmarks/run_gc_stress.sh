#!/usr/bin/env bash
# The long mode of pfs/gc_stress_test: GC, checkpoints, retention and the
# packer in a loop against writers that reuse garbage content, uploads held
# open across collections and explicit commits, for SECONDS_TO_RUN seconds
# (default 600); then every acknowledged file is read back and fsck runs.
# Prints the counts; exits non-zero if anything was lost.
#   SECONDS_TO_RUN=1800 benchmarks/run_gc_stress.sh
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${TUSK_BUILD_DIR:-build}"
scripts/build.sh >/dev/null || exit 1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
TUSK_GC_STRESS_SECONDS="${SECONDS_TO_RUN:-600}" "$BUILD_DIR/pfs/gc_stress_test" >"$out" 2>&1
status=$?
grep -v "^20..-..-..T" "$out" | grep -E -A3 "gc stress:|Failure|FAILED" | head -60
exit $status
